"""Bad input — settings.ini, environment variables and command-line flags: each mistake a newcomer makes gets a
message naming the file, section, key and value, and what to write instead; nothing runs on a half-read setting."""
import re

import pytest
from lab_helpers import cli
from loyalty_lab import LoyaltyLabError, load_settings
from loyalty_lab.sources import check_sources

ORDERS = ("order_id,line_no,source_system,source_customer_id,ts,channel,product_id,category,quantity,unit_price,Kol\n"
          "A1,1,pos,C1,2024-05-01 10:00,store,P1,dairy,1,2.5,1\n")
POS = "[source.pos]\ntable = order_lines\npath = orders.csv\n"


def settings_file(tmp_path, data):
    f = tmp_path / "settings.ini"
    f.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
    return f


def refused(tmp_path, data, env=None):
    "The message load_settings gives for a settings.ini holding `data` (it must refuse it, naming the file)."
    f = settings_file(tmp_path, data)
    with pytest.raises(LoyaltyLabError) as e:
        load_settings(f, env=env or {})
    assert f.name in str(e.value)
    return str(e.value)


# --- the file itself ---

def test_a_byte_order_mark_from_a_windows_editor_is_read(tmp_path):
    s = load_settings(settings_file(tmp_path, "\ufeff[rfm]\nbins = 4\n"), env={})
    assert s.rfm.bins == 4 and s.origin("rfm.bins") == "settings.ini"


@pytest.mark.parametrize("data, message", [
    ("[report]\ntitle = Kupci Novi Sad ćž\n".encode("cp1250"),
     "not UTF-8 text (byte 0xe6 on line 2: 'title = Kupci Novi Sad \ufffd'); save it as UTF-8"),
    ("[rfm]\nbins = 5\n".encode("utf-16"), "not UTF-8 text (it is UTF-16, 'Unicode' in Windows editors); save it as UTF-8"),
    (b"bins = 5\n", "cannot be read as an INI file: File contains no section headers"),
    (b"[rfm]\nbins = 5\nbins = 4\n", "[line  3]: option 'bins' in section 'rfm' already exists"),
    (b"[rfm]\nbins = 5\n[rfm]\nbins = 4\n", "[line  3]: section 'rfm' already exists"),
    (b"[DEFAULT]\nbins = 5\n", "[DEFAULT]: the lab does not use a DEFAULT section; move its keys into their sections"),
    (b"[Report]\ntitle = x\n", "unknown section [Report] (did you mean [report]?)"),
    (b"[rfm]\nbins = 5\n  bins2 = 4\n", "[rfm] bins = '5\\nbins2 = 4': expected an integer"),
])
def test_a_file_that_is_not_settings_text_is_named_with_the_fix(tmp_path, data, message):
    assert message in refused(tmp_path, data)


def test_a_missing_settings_file_named_by_the_environment(tmp_path):
    with pytest.raises(LoyaltyLabError, match=r"settings file .*nope\.ini does not exist; pass an existing settings.ini"):
        load_settings(env={"LOYALTY_LAB_SETTINGS": str(tmp_path / "nope.ini")})


# --- values ---

@pytest.mark.parametrize("text, message", [
    ('[locale]\ntimezone = "Europe/Belgrade"\n', "expected an IANA time zone, e.g. Europe/Belgrade; write values without quotes"),
    ("[locale]\ntimezone = +02:00\n", "[locale] timezone = '+02:00': expected an IANA time zone"),
    ("[run]\nas_of = 2024-02-30\n", "[run] as_of = '2024-02-30': expected an ISO date or timestamp"),
    ("[run]\nas_of = 30.06.2024\n", "[run] as_of = '30.06.2024': expected an ISO date or timestamp"),
    ("[report]\nn_clusters = 31\n", "[report] n_clusters = '31': expected an integer or 'auto' (>= 2 and <= 30)"),
    ("[profiles]\nmatch_threshold = 1.5\n", "match_threshold = '1.5': expected a number, e.g. 0.1 (>= 0.5 and <= 0.9999)"),
    ("[profiles]\nmatch_threshold = nan\n", "match_threshold = 'nan': expected a number"),
    ("[warehouse]\nlock_timeout_seconds = -1\n", "lock_timeout_seconds = '-1': expected a number, e.g. 0.1 (>= 0)"),
    ("[warehouse]\nmax_reject_rate = 5%\n", "max_reject_rate = '5%': expected a number, e.g. 0.1 (>= 0 and <= 1)"),
    ("[warehouse]\nengine = oracle\n", "engine = 'oracle': expected one of duckdb, spark"),
    ("[profiles]\nsource_priority = crm, sap\n", "source_priority = 'crm, sap': expected a comma-separated list of pos, web, app, crm"),
    ("[clv]\nhorizon_days = 0\n", "horizon_days = '0': expected an integer, e.g. 365 (>= 1)"),
    ("[rfm]\nbins = 1\n", "[rfm] bins = '1': expected an integer, e.g. 365 (>= 2 and <= 10)"),
    ("[report]\ninclude_pii = 2\n", "include_pii = '2': expected true or false"),
    ("[sources]\ndelimiter = ;;\n", "delimiter = ';;': expected one character, e.g. , or ; or | or \\t (tab)"),
    ("[sources]\ndecimal = x\n", "[sources] decimal = 'x': expected one of ., ,"),
    ("[lifecycle]\nat_risk_overdue = 9\nlapsed_overdue = 3\n", "lifecycle.at_risk_overdue = 9.0 (settings.ini) must be smaller than lifecycle.lapsed_overdue = 3.0"),
])
def test_a_value_that_cannot_be_right_names_the_key_and_what_to_write(tmp_path, text, message):
    assert message in refused(tmp_path, text)


@pytest.mark.parametrize("env, message", [
    ({"LOYALTY_LAB_RFM_BINS": "five"}, "environment variable LOYALTY_LAB_RFM_BINS = 'five': expected an integer"),
    ({"LOYALTY_LAB_RFM_BIN": "5"}, "environment variable LOYALTY_LAB_RFM_BIN is not a lab setting (did you mean LOYALTY_LAB_RFM_BINS?)"),
])
def test_an_environment_variable_is_named_when_wrong(tmp_path, env, message):
    with pytest.raises(LoyaltyLabError) as e:
        load_settings(settings_file(tmp_path, ""), env=env)
    assert message in str(e.value)


# --- sources ---

@pytest.mark.parametrize("text, message", [
    ("[source.pos]\npath = orders.csv\n", "[source.pos]: no `table`; write table = one of profiles, order_lines"),
    ("[source.pos]\ntable = order_lines\n", "[source.pos]: no `path`; give a file, a folder or a glob"),
    ("[source.pos]\ntable = orders\npath = orders.csv\n", "unknown table 'orders' (did you mean 'order_lines'?)"),
    (POS + "quantiti = Qty\n", "'quantiti' is neither a source option (table, path, encoding"),
    (POS + "encodng = cp1250\n", "'encodng' is neither a source option (table, path, encoding, delimiter, decimal, "
     "date_format, timezone) nor a column of the order_lines contract (did you mean 'encoding'?)"),
    (POS + "encoding = klingon\n", "[source.pos] encoding = 'klingon': expected a text encoding Python knows"),
    (POS + "timezone = Mars/Base\n", "[source.pos] timezone = 'Mars/Base': expected an IANA time zone"),
    (POS + "quantity = 'many'\n", "[source.pos] quantity: the constant 'many' is not a number"),
])
def test_a_source_section_that_cannot_be_read_says_what_to_write(tmp_path, text, message):
    assert message in refused(tmp_path, text)


@pytest.mark.parametrize("mapping, message", [
    ("quantity = __import__('os').system('id')", "the part `__import__('os').system('id')` is not allowed"),
    ("quantity = Kol.real", "the part `Kol.real` is not allowed"),
    ("quantity = Kol ** 99", "the part `Kol ** 99` is not allowed"),
    ("quantity = " + " + ".join(["Kol"] * 70), "parts, more than 60; a mapping is one short formula"),
    ("quantity = `Kol", "quantity = '`Kol': cannot read it (invalid syntax)"),
    ("date_format = %Q", "date_format = %Q: Invalid Input Error: Failed to parse format specifier %Q"),
])
def test_a_mapping_that_is_code_or_nonsense_is_refused_before_any_load(tmp_path, mapping, message):
    (tmp_path / "orders.csv").write_text(ORDERS, encoding="utf-8")
    s = load_settings(settings_file(tmp_path, POS + mapping + "\n"), env={})
    problems = [p for check in check_sources(s) for p in check.problems]
    assert len(problems) == 1 and message in problems[0], problems


# --- the command line ---

@pytest.mark.parametrize("args, message", [
    (["run", "--as-of", "tomorrow"], "command-line flag run.as_of = 'tomorrow': expected an ISO date or timestamp"),
    (["ingest", "--table", "nope"], "unknown table 'nope'; the contract's tables are profiles, order_lines"),
    (["config", "--set", "clv.discont_rate=0.1"], "command-line flag 'clv.discont_rate' is not a lab setting (did you mean 'clv.discount_rate'?)"),
    (["drop-source", "--table", "order_lines", "--source", "nope"], "order_lines has no source 'nope'"),
    (["report", "-p", "horizon_days"], "argument -p/--parameter: expected 2 arguments"),
])
def test_a_command_line_mistake_exits_2_with_the_message_and_no_traceback(tmp_path, args, message):
    settings_file(tmp_path, "[warehouse]\npath = wh.duckdb\n")
    out = cli(*args, cwd=tmp_path, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr and message in out.stderr, out.stderr
    assert not (tmp_path / "reports").exists()


@pytest.mark.parametrize("as_of", ["01.02.2024", "02/01/2024", "1 Feb 2024", "20240201"])
def test_an_as_of_that_is_not_iso_is_refused_rather_than_guessed(as_of):
    "pandas reads 01.02.2024 as January 2nd: a run dated a month off, silently."
    with pytest.raises(LoyaltyLabError, match=rf"run.as_of = '{re.escape(as_of)}': expected an ISO date or timestamp"):
        load_settings(flags={"run.as_of": as_of}, env={})
    assert load_settings(flags={"run.as_of": "2024-02-01T10:00+01:00"}, env={}).as_of().month == 2


# --- the merge's identifiers and overrides (issue 21) ---

def test_an_identifier_that_is_no_contract_column_is_refused(tmp_path):
    assert ("[profiles] identifiers = 'national_id, jmbg': expected a comma-separated list of national_id, customer_no, "
            "tax_id, passport_no, external_id") in refused(tmp_path, "[profiles]\nidentifiers = national_id, jmbg\n")


@pytest.mark.parametrize("text, message", [
    ("blocking = first_name+; city", "[profiles] blocking = 'first_name+; city': 'first_name+' is not a rule; write rules "
     "separated by ';', each columns joined by '+'"),
    ("blocking = first_name+surname", "'surname' is not a standardised column (did you mean 'last_name'?); columns are first_key, first_given_key, last_key"),
    ("blocking = national_id", "'national_id' is an extra identifier not named in [profiles] identifiers; add it there"),
    ("comparisons = first_name", "[profiles] comparisons = 'first_name': 'first_name' is not 'column:kind'"),
    ("comparisons = first_name:soundex", "kind 'soundex' is not one of name, date, address, place, exact, fuzzy"),
    ("comparisons = phone:date", "kind date compares birth_date, not phone_e164"),
    ("comparisons = city:name, city_key:exact", "city_key is compared twice"),
])
def test_blocking_and_comparisons_that_cannot_be_read_are_refused_before_the_merge(tmp_path, text, message):
    import pandas as pd
    from loyalty_lab.profiles import MergeOptions, merge_profiles
    s = load_settings(settings_file(tmp_path, f"[profiles]\n{text}\n"), env={})
    one = pd.DataFrame({"source_system": ["crm"], "source_customer_id": ["C1"], "first_name": ["Ana"]})
    with pytest.raises(LoyaltyLabError) as e:
        merge_profiles(one, MergeOptions.from_settings(s))  # refused before standardising
    assert message in str(e.value)

"""Sources as a list: [source.*] sections with their own files, encodings, delimiters, decimal marks, date
formats, time zones and column mappings (renamed, constant, derived, defaulted), checked before loading."""
import textwrap

import pandas as pd
import pytest
from loyalty_lab import LoyaltyLabError, Warehouse, ingest_sources, load_settings
from loyalty_lab.sources import check_sources, source_loads

from lab_helpers import cli

SETTINGS = """
[warehouse]
path = data/warehouse.duckdb
lock_timeout_seconds = 0.5
[locale]
timezone = Europe/Belgrade
[run]
as_of = 2024-06-30
[report]
segments_file =

# POS: monthly CSV exports in Windows-1250, semicolons, decimal commas, day-first dates, Serbian names,
# no line number and a line total instead of a unit price
[source.pos_orders]
table = order_lines
path = exports/pos/orders_2024-*.csv
encoding = cp1250
delimiter = ;
decimal = ,
date_format = %d.%m.%Y %H:%M
timezone = Europe/Belgrade
source_system = 'pos'
source_customer_id = KupacID
order_id = Racun
line_no = Stavka
ts = DatumVreme
category = Grupa
product_id = Artikal
quantity = Kolicina
unit_price = Iznos / Kolicina

# a web shop: UTF-8, ISO timestamps in UTC, its own column names, one row per order
[source.web_orders]
table = order_lines
path = exports/web/orders.csv
timezone = UTC
source_system = 'web'
channel = 'web'
source_customer_id = account
order_id = order_number
ts = created_at
unit_price = total
category = `product group`

# a CRM: Parquet profiles
[source.crm_profiles]
table = profiles
path = exports/crm/customers.parquet
source_system = 'crm'
source_customer_id = id
first_name = given
last_name = family
signup_date = created
"""


def write_exports(root, months=("01", "02")):
    pos = root / "exports" / "pos"
    pos.mkdir(parents=True, exist_ok=True)
    rows = {"01": ["R1;1;K1;05.01.2024 23:30;Đački pribor;A1;2;300,50;",
                   "R1;2;K1;05.01.2024 23:30;Čajevi;A2;1;99,90;plastična kesa"],
            "02": ["R2;1;K2;03.02.2024 09:30;Čajevi;A2;3;150,00;"],
            "03": ["R3;1;K1;01.03.2024 12:00;Čajevi;A2;1;50,00;"]}
    for m in months:
        (pos / f"orders_2024-{m}.csv").write_bytes(
            ("Racun;Stavka;KupacID;DatumVreme;Grupa;Artikal;Kolicina;Iznos;Napomena\n"
             + "\n".join(rows[m]) + "\n").encode("cp1250"))
    web = root / "exports" / "web"
    web.mkdir(parents=True, exist_ok=True)
    (web / "orders.csv").write_text("order_number,account,created_at,total,product group\n"
                                    "W1,A-1,2024-03-01T22:30:00Z,1200.5,garden\n"
                                    "W2,A-2,2024-03-02T08:00:00,80,books\n", encoding="utf-8")
    crm = root / "exports" / "crm"
    crm.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"id": ["K1", "K2"], "given": ["Đorđe", "Łucja"], "family": ["Petrović", "Wąsowska"],
                  "created": ["2023-05-01", "2023-06-01"]}).to_parquet(crm / "customers.parquet")


@pytest.fixture
def shop(tmp_path, monkeypatch):
    for var in [v for v in __import__("os").environ if v.startswith("LOYALTY_LAB_")]:
        monkeypatch.delenv(var)
    write_exports(tmp_path)
    (tmp_path / "settings.ini").write_text(SETTINGS, encoding="utf-8")
    return tmp_path


def lines(settings):
    with Warehouse.open(settings, read_only=True) as wh:
        return wh.table("order_lines").order_by(["order_id", "line_no"]).to_pandas()


def test_three_exports_of_different_shapes_load_with_their_own_settings(shop):
    s = load_settings(shop / "settings.ini", env={})
    reports = ingest_sources(s)
    assert sorted((r.source, r.rows_loaded, r.rows_rejected) for r in reports) == [
        ("exports/crm/customers.parquet", 2, 0), ("exports/pos/orders_2024-01.csv", 2, 0),
        ("exports/pos/orders_2024-02.csv", 1, 0), ("exports/web/orders.csv", 2, 0)]
    got = lines(s).set_index(["order_id", "line_no"])
    # a line total divided by the quantity, read with a decimal comma
    assert got.loc[("R1", 1), "unit_price"] == pytest.approx(150.25)
    assert got.loc[("R2", 1), "unit_price"] == pytest.approx(50.0)
    # cp1250 text arrives intact; constants and defaults fill what the file lacks
    assert got.loc[("R1", 1), "category"] == "Đački pribor" and got.loc[("R1", 1), "source_system"] == "pos"
    assert got.loc[("W1", 1), "channel"] == "web" and got.loc[("W1", 1), "quantity"] == 1
    assert got.loc[("R1", 1), "channel"] == "store" and got.loc[("W2", 1), "product_id"] == "all"
    # day-first local time in Belgrade (UTC+1 in January); the web shop's naive times are UTC, offsets as written
    assert got.loc[("R1", 1), "ts"] == pd.Timestamp("2024-01-05 22:30", tz="UTC")
    assert got.loc[("W1", 1), "ts"] == pd.Timestamp("2024-03-01 22:30", tz="UTC")
    assert got.loc[("W2", 1), "ts"] == pd.Timestamp("2024-03-02 08:00", tz="UTC")
    with Warehouse.open(s, read_only=True) as wh:
        profiles = wh.table("profiles").order_by("source_customer_id").to_pandas()
    assert profiles.first_name.tolist() == ["Đorđe", "Łucja"] and set(profiles.source_system) == {"crm"}
    pos_report = next(r for r in reports if r.source.endswith("2024-01.csv"))
    assert pos_report.ignored_columns == ["Napomena"] and pos_report.defaulted == {"channel": "'store'"}


def test_next_months_export_loads_only_that_file(shop):
    s = load_settings(shop / "settings.ini", env={})
    ingest_sources(s)
    write_exports(shop, months=("03",))
    statuses = {r.source: r.status for r in ingest_sources(s)}
    assert statuses == {"exports/crm/customers.parquet": "unchanged", "exports/pos/orders_2024-01.csv": "unchanged",
                        "exports/pos/orders_2024-02.csv": "unchanged", "exports/pos/orders_2024-03.csv": "loaded",
                        "exports/web/orders.csv": "unchanged"}
    assert len(lines(s)) == 6


def test_sources_check_reports_each_mapping_before_loading(shop):
    s = load_settings(shop / "settings.ini", env={})
    checks = {c.source: c for c in check_sources(s)}
    assert all(c.ok for c in checks.values()) and not (shop / "data" / "warehouse.duckdb").exists()
    pos = checks["pos_orders"].columns.set_index("column")
    assert pos.loc["unit_price", ["filled_by", "example"]].tolist() == ["expression", "'50.0'"]  # the newest file: 150,00 / 3
    assert pos.loc["channel", "filled_by"] == "default" and pos.loc["discount", "filled_by"] == "absent"
    assert checks["pos_orders"].left_out == ["Napomena"]
    assert checks["web_orders"].columns.set_index("column").loc["category", "mapping"] == "product group"
    # a wrong date format shows as values that would be rejected, before anything is loaded
    (shop / "settings.ini").write_text(SETTINGS.replace("%d.%m.%Y %H:%M", "%Y-%m-%d"), encoding="utf-8")
    [pos_check] = check_sources(load_settings(shop / "settings.ini", env={}), tables=["order_lines"])[:1]
    assert not pos_check.ok and "ts" in pos_check.problems[0]
    assert "1 of 1 rows not a timestamp (%Y-%m-%d)" in pos_check.columns.set_index("column").problems["ts"]


def test_config_and_sources_commands_show_the_sources(shop):
    out = cli("config", cwd=shop)
    assert out.returncode == 0, out.stderr
    assert "pos_orders" in out.stdout and "unit_price = Iznos / Kolicina" in out.stdout
    out = cli("sources", "--check", cwd=shop)
    assert out.returncode == 0, out.stderr
    assert "pos_orders → order_lines: 2 files" in out.stdout and "(derived)" in out.stdout


def test_one_file_per_table_sources_keep_working_with_a_mapping(tmp_path):
    (tmp_path / "o.csv").write_text("KupacID;Racun;Stavka;Vreme;Kanal;Artikal;Grupa;Kolicina;Cena;Sistem\n"
                                    "K1;R1;1;2024-01-05 10:00;store;A1;tea;2;3,5;pos\n", encoding="utf-8")
    (tmp_path / "settings.ini").write_text(textwrap.dedent("""
        [sources]
        profiles =
        order_lines = o.csv
        interactions =
        loyalty_ledger =
        offers =
        delimiter = ;
        decimal = ,
        [columns.order_lines]
        source_customer_id = KupacID
        order_id = Racun
        line_no = Stavka
        ts = Vreme
        channel = Kanal
        product_id = Artikal
        category = Grupa
        quantity = Kolicina
        unit_price = Cena
        source_system = Sistem
        [warehouse]
        path = wh.duckdb
        [run]
        as_of = 2024-06-30
        """), encoding="utf-8")
    s = load_settings(tmp_path / "settings.ini", env={})
    [report] = ingest_sources(s)
    assert (report.source, report.rows_loaded) == ("o.csv", 1)
    assert lines(s).unit_price.tolist() == [3.5]


BAD_SECTIONS = [
    ("unit_price = Iznoss / Kolicina", "the file has no column 'Iznoss' (did you mean 'Iznos'?); its columns are: "
     "Racun, Stavka, KupacID"),
    ("unit_price = Iznos / Kolicina\npath = exports/pos/narudzbe_*.csv", "matches no file"),
    ("unit_price = Iznos; drop table x", "cannot read it"),
    ("unit_price = __import__('os').system('true')", "is not allowed"),
    ("unit_price = Iznos / Kolicina\nline_no = 'first'", "the constant 'first' is not an integer >= 1"),
    ("unit_price = Iznos / Kolicina\nsource_system = 'shop'", "is not one of pos, web, app, crm"),
    ("unit_price = Iznos / Kolicina\nunit_prise = Iznos", "'unit_prise' is neither a source option"),
    ("unit_price = Iznos / Kolicina\ntable = orders", "unknown table 'orders' (did you mean 'order_lines'?)"),
    ("unit_price = Iznos / Kolicina\ndelimiter = ;;", "expected one character"),
    ("unit_price = Iznos / Kolicina\nencoding = klingon", "expected a text encoding"),
    ("unit_price = Iznos / Kolicina\ntimezone = Mars/Olympus", "expected an IANA time zone"),
    ("unit_price = 'free'", "the constant 'free' is not a number >= 0"),
    ("unit_price = Iznos * 'x'", "text in a number column"),
    ("unit_price = Iznos / Kolicina\nts = DatumVreme * 2", "for text and dates only + (joining text) is allowed"),
]


@pytest.mark.parametrize("lines_, message", BAD_SECTIONS, ids=[m[:30] for _, m in BAD_SECTIONS])
def test_bad_source_sections_fail_before_anything_is_loaded(shop, lines_, message):
    pos = SETTINGS.split("# a web shop")[0].replace("unit_price = Iznos / Kolicina\n", "")
    overrides = dict(line.split(" = ", 1) for line in lines_.splitlines())
    kept = [l for l in pos.splitlines() if l.split(" = ", 1)[0] not in overrides]
    (shop / "settings.ini").write_text("\n".join(kept) + "\n" + lines_ + "\n", encoding="utf-8")
    with pytest.raises(LoyaltyLabError, match=None) as e:
        ingest_sources(load_settings(shop / "settings.ini", env={}))
    assert message in str(e.value)
    assert not (shop / "data" / "warehouse.duckdb").exists()


def test_overlapping_sources_and_differing_headers(shop):
    twice = SETTINGS + SETTINGS.split("[source.pos_orders]")[1].split("# a web shop")[0].join(
        ["[source.pos_again]", ""])
    (shop / "settings.ini").write_text(twice, encoding="utf-8")
    with pytest.raises(LoyaltyLabError, match="orders_2024-01.csv is also a file of .*pos_orders"):
        ingest_sources(load_settings(shop / "settings.ini", env={}))
    (shop / "settings.ini").write_text(SETTINGS, encoding="utf-8")
    (shop / "exports" / "pos" / "orders_2024-05.csv").write_bytes("Racun;Kupac\nR9;K9\n".encode("cp1250"))
    with pytest.raises(LoyaltyLabError, match="orders_2024-05.csv has other columns than "
                                              "exports/pos/orders_2024-01.csv; it adds Kupac"):
        ingest_sources(load_settings(shop / "settings.ini", env={}))
    assert not (shop / "data" / "warehouse.duckdb").exists()


def test_semicolon_and_tab_delimiters_are_read_as_written(tmp_path):
    (tmp_path / "settings.ini").write_text("[sources]\ndelimiter = ;\n", encoding="utf-8")
    assert load_settings(tmp_path / "settings.ini", env={}).sources.delimiter == ";"
    (tmp_path / "settings.ini").write_text("[sources]\ndelimiter = \\t\n", encoding="utf-8")
    assert load_settings(tmp_path / "settings.ini", env={}).sources.delimiter == "\t"


# --- found in review: each reproduced first, then fixed ---

def pos_lab(tmp_path, rows, header="Racun;KupacID;DatumVreme;Grupa;Kolicina;Iznos", **keys):
    "A lab with one cp1250 POS export; `keys` change its source section (None removes a key)."
    (tmp_path / "exports").mkdir(exist_ok=True)
    (tmp_path / "exports" / "pos.csv").write_bytes((header + "\n" + "\n".join(rows) + "\n").encode("cp1250"))
    section = {"table": "order_lines", "path": "exports/pos.csv", "encoding": "cp1250", "delimiter": ";",
               "decimal": ",", "date_format": "%d.%m.%Y %H:%M", "source_system": "'pos'", "source_customer_id": "KupacID",
               "order_id": "Racun", "ts": "DatumVreme", "category": "Grupa", "quantity": "Kolicina",
               "unit_price": "Iznos / Kolicina", **keys}
    (tmp_path / "settings.ini").write_text(
        "[warehouse]\npath = wh.duckdb\nmax_reject_rate = 0.9\n[run]\nas_of = 2024-06-30\n[source.pos]\n"
        + "".join(f"{k} = {v}\n" for k, v in section.items() if v is not None), encoding="utf-8")
    return load_settings(tmp_path / "settings.ini", env={})


def test_lines_of_an_order_without_line_numbers_are_numbered_in_file_order(tmp_path):
    s = pos_lab(tmp_path, ["R1;K1;05.01.2024 10:00;tea;1;2,00", "R1;K1;05.01.2024 10:00;tea;1;2,00",
                           "R2;K2;06.01.2024 10:00;tea;1;3,00", "R1;K1;05.01.2024 10:00;milk;2;4,00"])
    [report] = ingest_sources(s)
    assert (report.rows_loaded, report.rows_rejected) == (4, 0)
    got = lines(s)
    assert list(zip(got.order_id, got.line_no, got.category)) == [("R1", 1, "tea"), ("R1", 2, "tea"), ("R1", 3, "milk"),
                                                                 ("R2", 1, "tea")]


def test_numbers_that_are_not_finite_or_not_numbers_are_rejected_not_loaded(tmp_path):
    s = pos_lab(tmp_path, ["R1;K1;05.01.2024 10:00;tea;0;2,00", "R2;K1;05.01.2024 10:00;tea;1;abc",
                           "R3;K1;05.01.2024 10:00;tea;inf;2,00", "R4;K1;05.01.2024 10:00;tea;1;4,50"],
                line_no="Kolicina * 1e30")
    with pytest.raises(LoyaltyLabError, match=r"line_no: 3 × not an integer — e.g. '1e\+30'"):  # rejected, not a crash
        ingest_sources(s)
    s = pos_lab(tmp_path, ["R1;K1;05.01.2024 10:00;tea;0;2,00", "R2;K1;05.01.2024 10:00;tea;1;abc",
                           "R3;K1;05.01.2024 10:00;tea;inf;2,00", "R4;K1;05.01.2024 10:00;tea;1;4,50"])
    [report] = ingest_sources(s)
    assert report.rows_loaded == 1 and lines(s).unit_price.tolist() == [4.5]
    problems = report.problems.set_index("column")
    assert "'abc'" in problems.loc["unit_price"].examples and "'inf'" in problems.loc["quantity"].examples


def test_timestamps_with_a_zone_name_are_taken_as_written_in_a_source_with_a_timezone(tmp_path):
    s = pos_lab(tmp_path, ["R1;K1;2024-01-15 10:00:00 UTC;tea;1;2", "R2;K1;2024-01-15 10:00:00;tea;1;2",
                           "R3;K1;2024-01-15T10:00:00+01:00;tea;1;2"],
                unit_price="Iznos", timezone="Asia/Tokyo", date_format="ISO8601")
    ingest_sources(s)
    assert lines(s).ts.tolist() == [pd.Timestamp("2024-01-15 10:00", tz="UTC"), pd.Timestamp("2024-01-15 01:00", tz="UTC"),
                                    pd.Timestamp("2024-01-15 09:00", tz="UTC")]


def test_a_renamed_export_is_reported_as_no_longer_configured(tmp_path):
    s = pos_lab(tmp_path, ["R1;K1;05.01.2024 10:00;tea;1;2,00"], order_id=None)  # one order per line, by file and line
    ingest_sources(s)
    (tmp_path / "exports" / "pos.csv").rename(tmp_path / "exports" / "pos_2024-01.csv")
    (tmp_path / "settings.ini").write_text((tmp_path / "settings.ini").read_text().replace("pos.csv", "pos_*.csv"))
    reports = ingest_sources(load_settings(tmp_path / "settings.ini", env={}))
    stale = [r for r in reports if r.status == "not configured"]
    assert [r.source for r in stale] == ["exports/pos.csv"]
    assert "loyalty-lab drop-source --table order_lines --source exports/pos.csv" in stale[0].summary()


@pytest.mark.parametrize("keys, message", [
    (dict(date_format="%d.%m.%Y %K"), "date_format = %d.%m.%Y %K: Invalid Input Error: Failed to parse format specifier %d.%m.%Y %K: Unrecognized format for strftime/strptime: %K"),
    (dict(unit_price="1e999"), "the constant '1e999' is not a number >= 0"),
    (dict(unit_price=" + ".join(["Iznos"] * 61)), "more than 60; a mapping is one short formula"),
    (dict(unit_price="Iznos * 1" + "0" * 400), "a number out of range"),
], ids=["date format", "infinite constant", "long expression", "huge literal"])
def test_more_bad_mappings_are_clear_errors(tmp_path, keys, message):
    with pytest.raises(LoyaltyLabError) as e:
        ingest_sources(pos_lab(tmp_path, ["R1;K1;05.01.2024 10:00;tea;1;2,00"], **keys))
    assert message in str(e.value)


def test_files_a_source_cannot_read_and_headers_in_another_order(tmp_path):
    s = pos_lab(tmp_path, ["R1;K1;05.01.2024 10:00;tea;1;2,00"], unit_price="Iznos", path="exports/*")
    (tmp_path / "exports" / "notes.xlsx").write_bytes(b"PK\x03\x04")
    with pytest.raises(LoyaltyLabError, match="matches files that are neither CSV nor Parquet: 'notes.xlsx'"):
        ingest_sources(s)
    (tmp_path / "exports" / "notes.xlsx").unlink()
    (tmp_path / "exports" / "pos2.csv").write_bytes("Iznos;Kolicina;Grupa;DatumVreme;KupacID;Racun\n"
                                                   "3,00;1;tea;06.01.2024 10:00;K2;R2\n".encode("cp1250"))
    assert sorted(r.rows_loaded for r in ingest_sources(s)) == [1, 1]  # same columns, another order: fine


def test_the_check_of_a_broken_source_is_printed_not_a_traceback(tmp_path):
    pos_lab(tmp_path, ["R1;K1;05.01.2024 10:00;tea;1;2,00"], path="exports/none_*.csv")
    out = cli("sources", "--check", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "pos → order_lines: 0 files" in out.stdout and "matches no file" in out.stdout
    (tmp_path / "settings.ini").write_text("[warehouse]\npath = wh.duckdb\n[sources]\n" + "".join(
        f"{t} =\n" for t in ("profiles", "order_lines", "interactions", "loyalty_ledger", "offers")))
    out = cli("sources", "--check", cwd=tmp_path)
    assert out.returncode == 2 and "no sources configured" in out.stderr


def test_the_api_checks_mappings_like_settings_do(tmp_path):
    frame = pd.DataFrame({"order_id": ["A"], "source_system": ["pos"], "source_customer_id": ["K1"],
                          "ts": ["2024-01-05 10:00"], "unit_price": ["2"], "_line": ["x"]})
    with Warehouse(tmp_path / "wh.duckdb") as wh:
        with pytest.raises(LoyaltyLabError, match="'unitprice' is not a column of the order_lines contract "
                                                  r"\(did you mean 'unit_price'\?\)"):
            wh.ingest("order_lines", frame.drop(columns="_line"), source_name="f", columns={"unitprice": "unit_price"})
        with pytest.raises(LoyaltyLabError, match="the constant 'first' is not an integer"):
            wh.ingest("order_lines", frame.drop(columns="_line"), source_name="f", columns={"line_no": "'first'"})
        with pytest.raises(LoyaltyLabError, match="a column is called '_line'"):
            wh.ingest("order_lines", frame, source_name="f")
        report = wh.ingest("order_lines", frame.drop(columns="_line"), source_name="f",
                           columns={"order_id": "'a `b` c' + order_id"})
        assert report.rows_loaded == 1 and wh.table("order_lines").order_id.to_pandas().tolist() == ["a `b` cA"]


def test_outside_a_lab_the_message_says_how_to_make_one(tmp_path):
    out = cli("ingest", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"no settings.ini in {tmp_path} or above" in out.stderr and "loyalty-lab init DIR" in out.stderr


def test_rows_after_as_of_say_where_as_of_comes_from(tmp_path):
    s = pos_lab(tmp_path, ["R1;K1;05.07.2025 10:00;tea;1;2,00"])
    with pytest.raises(LoyaltyLabError, match=r"dated by \[run\] as_of in settings.ini \(or --as-of\)"):
        ingest_sources(s)


def test_config_does_not_print_the_pseudonym_salt(tmp_path):
    (tmp_path / "settings.ini").write_text("[privacy]\npseudonym_salt = s3cret-of-this-lab\n", encoding="utf-8")
    out = cli("config", cwd=tmp_path)
    assert out.returncode == 0 and "s3cret-of-this-lab" not in out.stdout and "(set, not shown)" in out.stdout


def test_typed_timestamps_of_parquet_and_dataframes_ignore_a_text_date_format(tmp_path):
    "A CRM's Parquet export carries real timestamps; the lab-wide date_format for text dates must not reject them."
    pd.DataFrame({"id": ["K1", "K2"], "created": pd.to_datetime(["2023-05-01 10:00", "2023-06-01 11:30"]),
                  "born": pd.to_datetime(["1980-02-03", "1991-12-24"]).date}).to_parquet(tmp_path / "crm.parquet")
    (tmp_path / "settings.ini").write_text(textwrap.dedent("""
        [sources]
        date_format = %d.%m.%Y
        [warehouse]
        path = wh.duckdb
        [locale]
        timezone = UTC
        [source.crm]
        table = profiles
        path = crm.parquet
        source_system = 'crm'
        source_customer_id = id
        signup_date = created
        birth_date = born
        """), encoding="utf-8")
    s = load_settings(tmp_path / "settings.ini", env={})
    assert all(c.ok for c in check_sources(s))
    [report] = ingest_sources(s)
    assert report.rows_loaded == 2
    with Warehouse.open(s, read_only=True) as wh:
        got = wh.table("profiles").order_by("source_customer_id").to_pandas()
    assert got.signup_date.tolist() == [pd.Timestamp("2023-05-01 10:00", tz="UTC"), pd.Timestamp("2023-06-01 11:30", tz="UTC")]
    assert [pd.Timestamp(d).strftime("%Y-%m-%d") for d in got.birth_date] == ["1980-02-03", "1991-12-24"]

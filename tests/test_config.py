"""Settings: typed values, precedence, and errors that name the file, section, key and expected type."""
from pathlib import Path

import pytest
from loyalty_lab import LoyaltyLabError, load_settings
REPO = Path(__file__).resolve().parents[1]


def write(tmp_path, text):
    f = tmp_path / "settings.ini"
    f.write_text(text, encoding="utf-8")
    return f


def test_project_settings_ini_says_nbdev_config_is_in_pyproject():
    head = "\n".join((REPO / "settings.ini").read_text().splitlines()[:3])
    assert "pyproject.toml" in head and "nbdev" in head


def test_project_settings_ini_matches_built_in_options():
    s = load_settings(REPO / "settings.ini", env={})
    assert s.origin("clv.discount_rate") == "settings.ini"
    assert s.sources.profiles == REPO / "data" / "sample" / "profiles.csv"


def test_values_are_typed(tmp_path):
    s = load_settings(write(tmp_path, "[clv]\nhorizon_days = 180\ndiscount_rate = 0.08\n"
                                      "[report]\ninclude_pii = yes\nn_clusters = 6\n"
                                      "[warehouse]\npath = wh/lab.duckdb\n"), env={})
    assert s.clv.horizon_days == 180 and isinstance(s.clv.horizon_days, int)
    assert s.clv.discount_rate == 0.08
    assert s.report.include_pii is True and s.report.n_clusters == 6
    assert s.warehouse.path == tmp_path / "wh" / "lab.duckdb"  # relative to the settings file
    assert s.rfm.bins == 5 and s.origin("rfm.bins") == "built-in default"


def test_precedence_flag_over_parameter_over_env_over_file_over_default(tmp_path):
    f = write(tmp_path, "[clv]\ndiscount_rate = 0.05\nhorizon_days = 100\npenalizer = 0.1\n[rfm]\nbins = 4\n")
    env = {"LOYALTY_LAB_CLV_DISCOUNT_RATE": "0.06", "LOYALTY_LAB_CLV_HORIZON_DAYS": "200"}
    s = load_settings(f, env=env, params={"discount_rate": 0.07, "horizon_days": 300},
                      flags={"clv.discount_rate": "0.08"})
    assert (s.clv.discount_rate, s.clv.horizon_days, s.clv.penalizer, s.rfm.bins, s.lifecycle.lapsed_days) == \
        (0.08, 300, 0.1, 4, 365)
    assert s.origin("clv.discount_rate").startswith("command-line flag")
    assert s.origin("clv.horizon_days").startswith("papermill parameter")
    assert load_settings(f, env=env).origin("clv.horizon_days") == "environment LOYALTY_LAB_CLV_HORIZON_DAYS"


def test_settings_file_from_environment(tmp_path, monkeypatch):
    f = write(tmp_path, "[rfm]\nbins = 3\n")
    monkeypatch.chdir(Path("/"))
    assert load_settings(env={"LOYALTY_LAB_SETTINGS": str(f)}).rfm.bins == 3


def test_bad_value_names_file_section_key_and_type(tmp_path):
    f = write(tmp_path, "[clv]\ndiscount_rate = abc\n")
    with pytest.raises(LoyaltyLabError) as e:
        load_settings(f, env={})
    assert str(e.value) == f"{f} [clv] discount_rate = 'abc': expected a number, e.g. 0.1 (>= 0 and <= 1)"


@pytest.mark.parametrize("text, message", [
    ("[clv]\ndiscont_rate = 0.1\n", "[clv]: unknown key 'discont_rate' (did you mean 'discount_rate'?)"),
    ("[clvv]\nmodel = bgnbd\n", "unknown section [clvv] (did you mean [clv]?)"),
    ("[clv]\nmodel = gamma\n", "[clv] model = 'gamma': expected one of bgnbd, pareto_nbd, mbgnbd"),
    ("[locale]\ntimezone = Europe/Novi_Sad\n", "[locale] timezone = 'Europe/Novi_Sad': expected an IANA time zone"),
    ("[sources]\nencoding = klingon\n", "[sources] encoding = 'klingon': expected a text encoding"),
    ("[rfm]\nbins = 2.5\n", "[rfm] bins = '2.5': expected an integer"),
    ("[report]\ninclude_pii = maybe\n", "[report] include_pii = 'maybe': expected true or false"),
    ("[run]\nas_of = yesterday\n", "[run] as_of = 'yesterday': expected an ISO date"),
    ("[warehouse]\nmemory_limit = 2 gigs\n", "[warehouse] memory_limit = '2 gigs': expected an amount of memory of at least 64MB, e.g. 2GB"),
    ("[columns.order_lines]\nquantiti = Qty\n", "'quantiti' is not a column of the order_lines contract (did you mean 'quantity'?)"),
    ("[lifecycle]\nnew_days = 400\n", "lifecycle.new_days = 400 (settings.ini) must be smaller than lifecycle.lapsed_days = 365"),
    ("[clv\nmodel = x\n", "cannot be read as an INI file"),
])
def test_bad_settings_file(tmp_path, text, message):
    with pytest.raises(LoyaltyLabError, match=None) as e:
        load_settings(write(tmp_path, text), env={})
    assert message in str(e.value)
    assert str(tmp_path / "settings.ini") in str(e.value) or "settings.ini" in str(e.value)


def test_unknown_environment_variable_and_parameter(tmp_path):
    f = write(tmp_path, "")
    with pytest.raises(LoyaltyLabError, match="environment variable LOYALTY_LAB_CLV_DISCONT_RATE is not a lab setting"):
        load_settings(f, env={"LOYALTY_LAB_CLV_DISCONT_RATE": "0.1"})
    with pytest.raises(LoyaltyLabError, match="papermill parameter 'horizon' is not a lab setting"):
        load_settings(f, env={}, params={"horizon": 10})
    with pytest.raises(LoyaltyLabError, match="papermill parameter discount_rate = 'abc': expected a number"):
        load_settings(f, env={}, params={"discount_rate": "abc"})


def test_column_mapping_is_read(tmp_path):
    s = load_settings(write(tmp_path, "[columns.order_lines]\nquantity = Kolicina\nts = DatumVreme\n"), env={})
    assert s.column_mapping("order_lines") == {"quantity": "Kolicina", "ts": "DatumVreme"}
    assert s.column_mapping("profiles") == {}


def test_missing_settings_file_is_an_error(tmp_path):
    with pytest.raises(LoyaltyLabError, match="does not exist"):
        load_settings(tmp_path / "nope.ini", env={})


def test_report_parameters_that_cannot_be_right_are_refused_up_front(tmp_path):
    "Issue 19: `-p n_clusters 0` was accepted; `-p as_of 2024-13-01` ended in a raw ValueError from YAML."
    from lab_helpers import cli
    with pytest.raises(LoyaltyLabError, match=r"n_clusters = 0: expected an integer or 'auto' \(>= 2 and <= 30\)"):
        load_settings(flags={"report.n_clusters": 0}, env={})
    (tmp_path / "settings.ini").write_text("[warehouse]\npath = wh.duckdb\n", encoding="utf-8")
    out = cli("report", "-p", "as_of", "2024-13-01", cwd=tmp_path)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "as_of = '2024-13-01': expected an ISO date or timestamp" in out.stderr


def test_a_memory_limit_too_small_to_work_is_a_setting_error():
    "Issue 19: memory_limit = 1KB ended in DuckDB's OutOfMemoryException."
    with pytest.raises(LoyaltyLabError, match=r"memory_limit = '1KB': expected an amount of memory of at least 64MB"):
        load_settings(flags={"warehouse.memory_limit": "1KB"}, env={})
    assert load_settings(flags={"warehouse.memory_limit": "512MiB"}, env={}).warehouse.memory_limit == "512MiB"

"""The main job end to end: `loyalty-lab run` builds the warehouse from the sample data and writes the report."""
import json
import re

import nbformat
import pandas as pd
import pytest

from lab_helpers import cli, copy_template


@pytest.fixture
def project(lab):
    "The throw-away lab; its report runs on the template inside the installed package."
    return lab


def sample_revenue(lab):
    o = pd.read_csv(lab / "data" / "sample" / "order_lines.csv")
    return float((o.quantity * o.unit_price - o.discount * o.quantity.map(lambda q: (q > 0) - (q < 0))).sum())


def test_run_builds_warehouse_and_writes_a_self_contained_report(project):
    done = cli("run", "--run-id", "nightly", cwd=project)
    assert done.returncode == 0, done.stderr
    n_lines = len(pd.read_csv(project / "data" / "sample" / "order_lines.csv"))
    n_profiles = len(pd.read_csv(project / "data" / "sample" / "profiles.csv"))
    assert f"order_lines ← data/sample/order_lines.csv: loaded, {n_lines:,} rows loaded, 0 rejected" in done.stdout
    folder = project / "reports" / "nightly"
    assert done.stdout.strip().endswith(f"report: {folder / 'segment_report.html'}")
    assert sorted(p.name for p in folder.iterdir()) == ["customer_360.parquet", "metrics.json", "segment_report.html",
                                                        "segment_report.ipynb", "segments"]
    html = (folder / "segment_report.html").read_text()
    assert f"{n_lines:,}" in html
    assert not re.findall(r'(?:src|href)="https?:', html), "nothing may be fetched from the internet"
    # sales, merging, cohorts, R×F + treemap, migration, backtest tracking, P(alive)/CLV, snake plot
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) == 9, "charts must travel inside the file"
    assert "profiles merged (full): 3,914 records → 2,002 customers" in done.stdout
    assert "load_settings(" not in html and "prepare_report(" not in html  # marketing reads results, not Python
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["as_of"] == "2024-06-30T23:59:59.999999+02:00" and metrics["compare_to"].startswith("2024-04-01")
    assert metrics["tables"]["order_lines"]["rows"] == n_lines and metrics["tables"]["profiles"]["rows"] == n_profiles
    assert metrics["customers (merged profiles)"] == metrics["profile_merge"]["customers"] == 2002
    assert metrics["revenue"] == pytest.approx(sample_revenue(project), abs=0.01)
    assert sum(metrics["rfm_segments"].values()) == metrics["customers"] == sum(metrics["lifecycle_stages"].values())
    assert 0.95 * 2002 < metrics["customers"] <= 2002
    assert 0.5 < metrics["top_20_percent_revenue_share"] < 1 and 0 < metrics["contacts_next_7_days"] < metrics["customers"]
    executed = nbformat.read(folder / "segment_report.ipynb", as_version=4)
    assert any("parameters" in c.metadata.get("tags", []) for c in executed.cells)


def test_second_run_loads_nothing_new(project):
    assert cli("ingest", cwd=project).returncode == 0
    again = cli("ingest", cwd=project)
    assert again.returncode == 0 and again.stdout.count(": unchanged,") == 5


def test_flags_reach_the_report(project):
    assert cli("ingest", cwd=project).returncode == 0
    early = cli("report", cwd=project)
    assert early.returncode == 2 and "has no customers yet: merge the profiles first" in early.stderr
    assert cli("merge", cwd=project).returncode == 0
    done = cli("report", "--run-id", "r1", "--set", "report.title=Weekly loyalty review", "--as-of", "2024-05-31",
               cwd=project)
    assert done.returncode == 0, done.stderr
    assert "Weekly loyalty review" in (project / "reports" / "r1" / "segment_report.html").read_text()
    assert json.loads((project / "reports" / "r1" / "metrics.json").read_text())["as_of"].startswith("2024-05-31T23:59")


def test_failed_report_keeps_last_good_one_and_its_notebook(project):
    assert cli("run", "--run-id", "daily", cwd=project).returncode == 0
    good = (project / "reports" / "daily" / "segment_report.html").read_bytes()
    own = copy_template(project)  # the analyst's own copy ([report] template), broken
    nb = nbformat.read(own, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("raise RuntimeError('segment table is empty')"))
    nbformat.write(nb, own)
    done = cli("report", "--run-id", "daily", cwd=project)
    assert done.returncode == 2
    assert "RuntimeError: segment table is empty" in done.stderr and "_failed" in done.stderr
    assert (project / "reports" / "daily" / "segment_report.html").read_bytes() == good
    assert len(list((project / "reports" / "_failed").glob("daily-segment_report.ipynb"))) == 1
    assert not list((project / "reports").glob(".tmp-*"))


def test_bad_settings_fail_before_any_work(project):
    (project / "settings.ini").write_text("[clv]\ndiscount_rate = abc\n")
    done = cli("run", cwd=project)
    assert done.returncode == 2
    assert done.stderr.strip() == (f"loyalty-lab: error: {project / 'settings.ini'} [clv] discount_rate = 'abc': "
                                   "expected a number, e.g. 0.1 (>= 0 and <= 1)")
    assert not (project / "data" / "warehouse.duckdb").exists()


def test_bad_input_fails_the_run_with_a_clear_message_and_no_report(project):
    orders = project / "data" / "sample" / "order_lines.csv"
    # a Windows-1250 line appended to a UTF-8 export: Ž is byte 0x8e there, invalid in UTF-8
    orders.write_bytes(orders.read_bytes() + "O9,1,pos,Ž1,2024-01-01,store,,P,x,1,1,0,false,none\n".encode("cp1250"))
    done = cli("run", cwd=project)
    assert done.returncode == 2
    bad_line = orders.read_bytes().count(b"\n")  # the appended line is the file's last
    assert f"order_lines.csv: line {bad_line} is not valid utf-8" in done.stderr and "encoding = cp1250" in done.stderr
    assert not (project / "reports").exists() or not any((project / "reports").iterdir())


def test_unknown_report_parameter_is_refused_before_running(project):
    from loyalty_lab import LoyaltyLabError, load_settings, run_report
    with pytest.raises(LoyaltyLabError, match="report parameter\\(s\\) horizon not in segment_report.ipynb's parameters cell"):
        run_report(load_settings(project / "settings.ini"), parameters={"horizon": 90})
    assert not (project / "reports").exists()
    assert not (project / "reports").exists()


def test_contract_and_config_commands(project):
    contract = cli("contract", "--table", "offers", cwd=project)
    assert contract.returncode == 0 and "offer_type" in contract.stdout and "free_delivery" in contract.stdout
    config = cli("config", cwd=project)
    assert "run.as_of" in config.stdout and "2024-06-30" in config.stdout and "settings.ini" in config.stdout


def test_drop_source_command(project):
    assert cli("ingest", cwd=project).returncode == 0
    done = cli("drop-source", "--table", "offers", "--source", "data/sample/offers.csv", cwd=project)
    n = len(pd.read_csv(project / "data" / "sample" / "offers.csv"))
    assert done.returncode == 0 and done.stdout.strip() == f"offers: removed source data/sample/offers.csv ({n:,} rows)"
    again = cli("ingest", "--table", "offers", cwd=project)
    assert f"offers ← data/sample/offers.csv: loaded, {n:,} rows loaded" in again.stdout


def test_merge_explain_view360_and_forget_commands(project, tmp_path):
    assert cli("ingest", cwd=project).returncode == 0
    merged = cli("merge", cwd=project)
    assert merged.returncode == 0 and "3,914 records → 2,002 customers" in merged.stdout
    again = cli("merge", cwd=project)
    assert "profiles merged (incremental)" in again.stdout and "0 new, 0 changed, 0 removed" in again.stdout
    out = tmp_path / "view.parquet"
    shared = cli("view360", "--out", str(out), cwd=project)
    assert shared.returncode == 0 and "2,002 customers as of 2024-06-30" in shared.stdout
    view = pd.read_parquet(out)
    assert "customer_key" in view and "email" not in view and view.orders.sum() > 0
    profiles = pd.read_csv(project / "data" / "sample" / "profiles.csv", dtype=str)
    assert not set(profiles.email.dropna()) & set(view.astype(str).stack())  # no sample e-mail anywhere
    chart = tmp_path / "why.png"
    why = cli("explain", "C00000008", "--chart", str(chart), cwd=project)
    assert why.returncode == 0 and "links:" in why.stdout and chart.stat().st_size > 10_000
    gone = cli("forget", "C00000008", "--yes", cwd=project)
    assert gone.returncode == 0 and "\nforgot C00000008: raw_profiles " in gone.stdout
    missing = cli("explain", "C00000008", cwd=project)
    assert missing.returncode == 2 and "no customer 'C00000008'" in missing.stderr

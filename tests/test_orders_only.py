"""The smallest useful input: an orders-only shop (the CDNOW history — customer, date, amount — with no profiles,
interactions, loyalty ledger or offers) gets a complete report. Each customer id of the order lines is its own
customer; every section runs or says in one sentence which table is absent and what it would add. The report
runs on a kernel that is not registered (so on the Python running the test) and reports its sections in order."""
import json
import os
import re
import sys

import nbformat
import pandas as pd
import pytest

from loyalty_lab import load_settings, resolve_customers
from loyalty_lab.report import run_report, template_sections
from loyalty_lab.summary import cdnow
from loyalty_lab.warehouse import Warehouse

TZ = "America/New_York"


def cdnow_order_lines() -> tuple[pd.DataFrame, pd.DataFrame]:
    "CDNOW_sample (2,357 customers) as order lines with the contract's required columns filled in; and the raw history."
    d = cdnow()
    lines = pd.DataFrame({
        "order_id": d.customer_id + "-" + d.ts.dt.strftime("%Y%m%d"),
        # a customer's second purchase on one day is a second line of that day's order
        "line_no": d.groupby(["customer_id", "ts"]).cumcount() + 1,
        "source_system": "pos", "source_customer_id": d.customer_id, "ts": d.ts, "channel": "store",
        "product_id": "CD", "category": "music", "quantity": 1, "unit_price": d.amount})
    return lines, d


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    "Load CDNOW as order lines, make customers of them, run the report on an unregistered kernel."
    root = tmp_path_factory.mktemp("cdnow")
    lines, history = cdnow_order_lines()
    flags = {"warehouse.path": str(root / "shop.duckdb"), "run.as_of": "1998-06-30", "report.segments_file": "",
             "locale.timezone": TZ, "locale.currency": "USD", "report.output_dir": str(root / "reports"),
             "report.kernel": "no-such-kernel-registered"}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)  # no settings.ini here or above: built-in defaults and the flags only
        for var in [v for v in os.environ if v.startswith("LOYALTY_LAB_")]:
            mp.delenv(var)
        settings = load_settings(flags=flags, env={})
        with Warehouse(settings.warehouse.path, timezone=TZ) as wh:
            loaded = wh.ingest("order_lines", lines, source_name="cdnow")
        stages, steps = [], []
        merge = resolve_customers(settings=settings, progress=stages.append)
        folder = run_report(settings, run_id="cdnow", progress=steps.append)
    return {"settings": settings, "history": history, "loaded": loaded, "merge": merge, "stages": stages,
            "steps": steps, "folder": folder, "metrics": json.loads((folder / "metrics.json").read_text()),
            "html": (folder / "segment_report.html").read_text(encoding="utf-8")}


def test_each_customer_id_of_the_order_lines_is_its_own_customer(shop):
    merge, n = shop["merge"], shop["history"].customer_id.nunique()
    assert n == 2357 and shop["loaded"].rows_loaded == len(shop["history"]) == 6919
    assert merge.mode == "orders only" and merge.stats["customers"] == merge.stats["records"] == n
    assert merge.summary().startswith(f"no profiles to merge: the warehouse has no profiles, so each of the {n:,} "
                                      "customer ids of the order lines is its own customer")
    assert shop["stages"] == ["merge: standardising profiles", "merge: no profiles: one customer per customer id of "
                              "the order lines", "merge: writing customers to the warehouse"]
    with Warehouse.open(shop["settings"], read_only=True) as wh:
        crosswalk = wh.con.table("crosswalk").to_pandas()
        golden = wh.con.table("golden_records").count().to_pyarrow().as_py()
    assert crosswalk.customer_id.is_unique and len(crosswalk) == n and golden == 0
    # ids are numbered in record order: the sample's first CDNOW customer (00004) is C00000001
    first = crosswalk.sort_values("record_id").iloc[0]
    assert (first.record_id, first.customer_id) == ("pos:00004", "C00000001") and crosswalk.customer_id.max() == "C00002357"
    assert set(crosswalk.source_customer_id) == set(shop["history"].customer_id)


def test_the_report_counts_what_was_loaded(shop):
    m, history = shop["metrics"], shop["history"]
    assert m["revenue"] == pytest.approx(history.amount.sum(), abs=0.005)  # 244,091.94 USD
    assert m["customers"] == history.customer_id.nunique() == sum(m["rfm_segments"].values())
    assert m["orders"] == len(history[["customer_id", "ts"]].drop_duplicates()) == 6696  # same-day purchases: one order
    assert m["customers (merged profiles)"] is None and m["points liability"] is None
    assert m["absent_tables"] == ["profiles", "interactions", "loyalty_ledger", "offers"]
    assert m["clv"]["total"] > 0 and m["clv"]["backtest_best"] and sum(m["lifecycle_stages"].values()) == m["customers"]
    assert m["clusters"] is None and m["recommended_offers"] == {"no offer": 2357}  # no campaign, no evidence
    view = pd.read_parquet(shop["folder"] / "customer_360.parquet")
    assert len(view) == m["customers"] and view.net_revenue.sum() == pytest.approx(m["revenue"], abs=0.01)


def test_every_section_runs_or_says_which_table_is_absent(shop):
    html = shop["html"]
    body = re.sub(r"<(style|script)\b.*?</\1>", "", html, flags=re.S)
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", body)).replace("&#39;", "'")
    headings = [re.sub(r"<[^>]+>", "", h).replace("&#39;", "'").replace("¶", "").strip()
                for h in re.findall(r"<h2[^>]*>(.*?)</h2>", html, flags=re.S)]
    assert headings == template_sections()
    for sentence in ["No profiles table was loaded; it would add names, contacts, marketing consent and cities",
                     "No interactions table was loaded; it would add each customer's e-mail, web, app and store engagement",
                     "No loyalty_ledger table was loaded; it would add points earned and redeemed",
                     "No offers table was loaded; it would add the offer campaigns",
                     "Each of the 2,357 customer ids of the order lines is its own customer.",
                     "No behavioural clusters: segments: the basket and promotions features",
                     "every order line is in the one category 'music'",
                     "Backtest", "CLV deciles", "Contact calendar", "Thresholds between the scores"]:
        assert sentence in text, sentence
    # sales, Lorenz curve, cohorts, R×F + treemap, migration, backtest tracking, P(alive)/CLV; no merge chart or snake plot
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', html)) == 7
    assert ">points liability<" not in html and ">customers (merged profiles)<" not in html  # no such headline cards
    # nothing of Python's own: no traceback, no warning text, no stderr output
    executed = nbformat.read(shop["folder"] / "segment_report.ipynb", as_version=4)
    outputs = [o for c in executed.cells for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error" or (o.output_type == "stream" and o.name == "stderr")]
    assert not re.search(r"Traceback|Warning:|Error:|\bnan\b|None", text)


def test_churn_figures_rank_lost_and_hibernating_below_champions(shop):
    "The purchase model is chosen by the holdout; with it, lost customers no longer read as alive (BG/NBD: ~100 %)."
    clv = shop["metrics"]["clv"]
    p_alive = clv["p_alive_by_segment"]
    assert p_alive["Lost"] < 0.6 * p_alive["Champions"] and p_alive["Hibernating"] < 0.6 * p_alive["Champions"], p_alive
    assert clv["model"] == "MBG/NBD" and clv["ranking"] == ["MBG/NBD", "BG/NBD", "Pareto/NBD", "Gradient boosting"]
    assert clv["chosen_by"].startswith("MBG/NBD had the lowest per-customer error of the three purchase models on the "
                                       "last 181 days")
    exported = pd.read_parquet(shop["folder"] / "customer_360.parquet")
    once_long_ago = exported[(exported.purchase_days == 1) & (exported.days_since_last_purchase >= 365)]
    assert len(once_long_ago) > 300 and not (once_long_ago.churn_risk == "low").any()


def test_the_action_table_follows_the_stage_where_recent_segments_have_stopped_buying(shop):
    "CDNOW's Loyal Customers last bought over a year ago: their action is the churned stage's, not an upsell."
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", shop["html"])).replace("&#39;", "'")
    actions = text.split("Action table", 2)[-1].split("Appendix", 1)[0]
    row = actions.split("Loyal Customers", 1)[1].split("segments/loyal-customers.csv", 1)[0]
    assert "churned reactivate at low cost" in row, row  # main stage and goal
    assert "Most have stopped buying by their own rhythm (churned), though they bought more recently than most " \
           "customers: low-cost reactivation message." in actions
    assert "Upsell" not in actions and "next step" not in actions  # the segment map's texts for customers still buying
    # no campaigns: one sentence per segment names the test, and no tiny segment is told to repeat it 872 times
    assert actions.count("(see the Offers section)") == 9 and "repeat it over 872" not in text
    assert "The segment has 1 customer: too few to test on their own: join them with similar segments" in text


def test_the_report_of_a_one_category_shop_renders_cleanly(shop):
    "CDNOW in Chromium (build/screenshots/cdnow.png): no internals, no missing values, nothing spilling."
    import lab_helpers
    facts = lab_helpers.check_rendering(shop["folder"] / "segment_report.html", "cdnow")
    assert facts["images"] == 7 and "Needs action" in facts["text"]


def test_the_kernel_is_the_running_python_when_the_configured_one_is_not_registered(shop):
    executed = nbformat.read(shop["folder"] / "segment_report.ipynb", as_version=4)
    assert executed.metadata.kernelspec.name == "python3"
    assert sys.executable in executed.metadata.kernelspec.display_name
    assert shop["steps"][0] == f"report cdnow: running segment_report.ipynb on this Python ({sys.executable})"


def test_progress_names_each_section_as_the_kernel_reaches_it(shop):
    sections = template_sections()
    assert len(sections) == 15 and sections[6] == "Who the customers are: RFM segments"
    assert shop["steps"][1:] == [f"report cdnow: {s}" for s in sections] + ["report cdnow: writing the HTML"]


def test_a_region_filter_without_profiles_says_why(shop, tmp_path, monkeypatch):
    from loyalty_lab import LoyaltyLabError
    monkeypatch.chdir(tmp_path)  # no settings.ini: the flags only
    from loyalty_lab.report import prepare_report
    flags = {"warehouse.path": str(shop["settings"].warehouse.path), "run.as_of": "1998-06-30", "report.segments_file": ""}
    with pytest.raises(LoyaltyLabError, match=r"filter_by = 'region=Boston': the warehouse's profiles have no city at all; "
                                              r"filter by store=… or channel=… instead"):
        prepare_report(None, flags, filter_by="region=Boston")

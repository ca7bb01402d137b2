"""The segment report as its users meet it: papermill runs the template on the sample data; the sections,
figures, exports, privacy, rendering in a browser, parameters and run lists are checked."""
import functools
import json
import re
import shutil
import subprocess
import warnings
from pathlib import Path

import pandas as pd
import pytest

import lab_helpers
from lab_helpers import SAMPLE, make_lab

SECTIONS = ["At a glance", "Run parameters and data coverage", "Headline figures", "Data quality and profile merging",
            "Revenue concentration: the 80/20 question", "New and existing customers, and cohort retention",
            "Who the customers are: RFM segments", "Segment migration", "Lifecycle stages and this week's contacts",
            "Customer lifetime value", "Behavioural clusters", "Offers: what to send to whom",
            "Your segments and what they like", "Action table",
            "Appendix: sources, versions and run"]
cli = functools.partial(lab_helpers.cli, timeout=900)


@pytest.fixture(scope="module")
def nightly(tmp_path_factory):
    "One `loyalty-lab run` on the sample data; the tests below read what it wrote."
    lab = make_lab(tmp_path_factory.mktemp("lab"))
    # two rows a careless export and an attacker would add: quarantined, and shown in the data-quality table
    with open(lab / "data" / "sample" / "profiles.csv", "a", encoding="utf-8") as f:
        f.write('"crm","X1","Eve","Hostile","","","<img src=x onerror=alert(1)>","","","","","RS","2024-01-01 10:00:00","","","",""\n'
                '"crm","X2","Mal","Formed","","","mal.formed@example.com","","","","","RS","2024-01-01 10:00:00","","","",""\n')
    shutil.copy(lab_helpers.REPO / "segments.yaml", lab)  # the analyst's own segments, next to settings.ini
    settings = lab / "settings.ini"
    settings.write_text(settings.read_text().replace("[report]\n", "[report]\nsegments_file = segments.yaml\n"))
    done = cli("run", "--run-id", "nightly", cwd=lab)
    assert done.returncode == 0, done.stderr
    return lab, lab / "reports" / "nightly"


@pytest.fixture(scope="module")
def html(nightly):
    return (nightly[1] / "segment_report.html").read_text(encoding="utf-8")


def headings(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", h).replace("&#39;", "'").replace("¶", "").strip()
            for h in re.findall(r"<h2[^>]*>(.*?)</h2>", html, flags=re.S)]


def test_every_section_is_there_in_order(html):
    assert headings(html) == SECTIONS
    for words in ["Thresholds between the scores", "Contact calendar",
                  "Backtest", "CLV deciles", "value tiers", "clusters</strong>", "The evidence",
                  "The offer per segment", "Top category affinities per RFM segment", "Exports"]:
        assert words in html, words


def test_the_packaged_template_runs_on_the_registered_kernel(nightly):
    "No template in the lab: the one inside the package ran, on the `loyalty-lab` kernel `make setup` registers."
    import nbformat
    from loyalty_lab.report import default_template, template_sections
    lab, folder = nightly
    assert not [p for p in lab.rglob("*.ipynb") if "reports" not in p.relative_to(lab).parts]
    executed = nbformat.read(folder / "segment_report.ipynb", as_version=4)
    assert executed.metadata.kernelspec.name == "loyalty-lab"
    assert executed.metadata.papermill.input_path == str(default_template())
    assert template_sections()[0] == SECTIONS[0] and template_sections() == SECTIONS


def test_report_figures_equal_the_library(nightly):
    from loyalty_lab.clv import choose_model
    from loyalty_lab import RFM, Segmenter, behaviour_features, customer_lines, lifecycle_stages, load_settings, summarize
    from loyalty_lab.lifecycle import LifecycleRules
    from loyalty_lab.warehouse import Warehouse
    lab, folder = nightly
    metrics = json.loads((folder / "metrics.json").read_text())
    s = load_settings(lab / "settings.ini")
    with Warehouse.open(s, read_only=True) as wh, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lines = customer_lines(wh)
        summary = summarize(lines, s.as_of(), timezone=s.locale.timezone)
        weekly = summarize(lines, s.as_of(), "W", timezone=s.locale.timezone)
        features = behaviour_features(wh, s)
        choice = choose_model(lines, s.as_of(), s)  # the report's purchase model is the backtest's winner
    scored = RFM.from_settings(s).fit_transform(summary)
    buyers = scored[scored.segment != "No purchases"]
    assert metrics["rfm_segments"] == buyers.segment.value_counts().to_dict()
    assert metrics["customers"] == len(buyers) and metrics["orders"] == int(summary.orders.sum())
    stages = lifecycle_stages(summary, LifecycleRules.from_settings(s)).stage.value_counts()
    assert metrics["lifecycle_stages"] == {k: int(v) for k, v in stages.items()}
    assert metrics["active customers"] == int(stages["new"] + stages["active"])
    assert metrics["repeat rate"] == pytest.approx((summary[summary.purchase_days > 0].frequency > 0).mean())
    assert metrics["clv"]["model"] == choice.model.label == "Pareto/NBD"
    clv = choice.model.predict(weekly, horizon_days=s.clv.horizon_days, discount_rate=s.clv.discount_rate).clv
    assert metrics["clv"]["total"] == pytest.approx(clv.reindex(buyers.index).sum(), rel=1e-9)
    assert metrics["clv"]["value_tiers"] == {"Bronze": 1001, "Silver": 601, "Gold": 300, "Platinum": 100}
    clusters = Segmenter(k=s.report.n_clusters, seed=s.run.seed).fit(features.loc[features.index.isin(buyers.index)])
    assert metrics["clusters"] == clusters.profiles_.customers.to_dict()
    # the exports hold exactly the report's customers and segments
    view = pd.read_parquet(folder / "customer_360.parquet")
    assert len(view) == metrics["customers (merged profiles)"] and view.customer_key.is_unique
    assert view[view.segment != "No purchases"].segment.value_counts().to_dict() == metrics["rfm_segments"]
    # offers follow the evidence: each customer gets their segment's offer (none without consent), and the segments
    # do not all get the same one (before: free delivery for every segment, Champions included)
    bought = view[view.segment != "No purchases"]
    consent = (bought.consent_email.fillna(False) | bought.consent_sms.fillna(False) | bought.consent_push.fillna(False))
    expected = bought.segment.map(metrics["offer_per_segment"]).where(consent.astype(bool), "no offer")
    assert (bought.recommended_offer == expected).all()
    assert len(set(metrics["offer_per_segment"].values())) > 1 and metrics["offer_per_segment"]["Champions"] == "no offer"
    assert metrics["offer_verdicts"]["Champions"].startswith("no evidence yet: test ")
    champions = pd.read_csv(folder / "segments" / "champions.csv")
    assert len(champions) == metrics["rfm_segments"]["Champions"] == metrics["exports"]["segments/champions.csv"]
    assert set(champions.customer_key) == set(view.customer_key[view.segment == "Champions"])
    assert (champions.recommended_offer[~(champions.consent_email | champions.consent_sms | champions.consent_push)]
            == "no offer").all()


def pii_values():
    p = pd.read_csv(SAMPLE / "profiles.csv", dtype=str)
    digits = p.phone.dropna().str.replace(r"\D", "", regex=True)
    return {"emails": set(p.email.dropna().str.lower()), "phones": set(p.phone.dropna()) | set(digits[digits.str.len() >= 8]),
            "names": set((p.first_name + " " + p.last_name).dropna()), "name_parts": set(p.first_name.dropna()) | set(p.last_name.dropna())}


def exported_cells(folder: Path) -> set[str]:
    cells = set(pd.read_parquet(folder / "customer_360.parquet").stack().map(str))
    for f in [*(folder / "segments").glob("*.csv"), *(folder / "rule_segments").glob("*.csv")]:
        cells |= set(pd.read_csv(f, dtype=str).stack().map(str))
    return cells


def test_rejected_values_are_escaped_and_personal_ones_masked(html):
    "Issue 19: a birth_date of <img onerror=…> was a live tag in the report; a shifted e-mail was shown as written."
    assert "<img src=x" not in html and "onerror=alert" not in html
    assert "mal.formed@example.com" not in html
    assert "&lt;… (masked)" in html and "m… (masked)" in html


def test_no_pii_in_the_report_or_exports_by_default(nightly, html):
    folder = nightly[1]
    pii = pii_values()
    text = html.lower()
    assert not [e for e in pii["emails"] if e in text]
    assert not [p for p in pii["phones"] if p in html]
    assert not [n for n in pii["names"] if n in html]
    cells = exported_cells(folder) | {c.lower() for c in exported_cells(folder)}
    assert not cells & (pii["emails"] | pii["phones"] | pii["names"] | pii["name_parts"])
    assert not {"email", "phone", "first_name", "last_name", "customer_id"} & set(pd.read_parquet(folder / "customer_360.parquet").columns)


def test_the_report_renders_in_a_browser(nightly):
    "What a reader sees in Chromium (build/screenshots/sample.png): no internals, every image, nothing spilling."
    facts = lab_helpers.check_rendering(nightly[1] / "segment_report.html", "sample")
    assert facts["title"] == "Loyalty programme report" and facts["text"].lstrip().startswith("Loyalty programme report")
    assert facts["images"] == 10  # the main job's 9 and the segments' overlap
    assert 6_000 < facts["height"] < 30_000, facts["height"]  # every section, nothing collapsed or runaway
    assert facts["tables"] >= 15
    glance = facts["text"].split("At a glance", 1)[1].split("Run parameters", 1)[0]
    assert [line.split(":")[0].strip() for line in glance.strip().splitlines()] == [
        "Since 01 Apr 2024", "Needs action", "Money at stake", "Offers", "Data"]
    # who the merged profiles hold, counted by id: the sample's 2,000 people in 2,002 customers, all of them buyers
    assert "The merged profiles hold 2,002 customers, every one a buyer." in facts["text"]
    # offers sent and control rows (customers who got no offer) counted apart: 2,141 rows of the sample's offers table
    assert "The evidence: 1,711 offers sent and 430 control offers (no offer) in 3 campaign(s)" in facts["text"]
    # a path is shown as typed (no character references on screen), and no step took negative time
    assert f"settings {nightly[0] / 'settings.ini'}" in facts["text"] and "&#" not in facts["text"]
    page = (nightly[1] / "segment_report.html").read_text(encoding="utf-8")
    assert f"settings <code>{nightly[0] / 'settings.ini'}</code>" in page and "<code></code>" not in page
    seconds = json.loads((nightly[1] / "metrics.json").read_text())["seconds"]
    assert min(seconds.values()) >= 0, seconds
    steps = sum(v for k, v in seconds.items() if k != "total")
    assert steps <= seconds["total"] + 0.5, seconds  # each second counted once


def test_bad_parameters_fail_at_once_with_a_clear_message(nightly):
    lab = nightly[0]
    cases = {("-p", "discount_rate", "3"): "papermill parameter discount_rate = 3: expected a number, e.g. 0.1 (>= 0 and <= 1)",
             ("-p", "filter_by", "planet=Mars"): "filter_by = 'planet=Mars': write store=<store id>, region=<city> or channel=<channel>",
             ("-p", "filter_by", "region=Novi Sd"): "no city 'Novi Sd' in the warehouse; most common: Beograd, Novi Sad",
             ("-p", "compare_to", "2024-07-31"): "compare_to = '2024-07-31' must be before as_of = 2024-06-30",
             ("-p", "segment_map", "rfm7"): "segment map 'rfm7' is neither built in nor a [segment_map.rfm7] section",
             ("-p", "n_clusters", "many"): "n_clusters = 'many'",
             ("-p", "segments_file", "mine.yaml"): "segment definitions " + str(lab / "mine.yaml") + " does not exist"}
    for args, message in cases.items():
        done = cli("report", "--run-id", "bad", *args, cwd=lab)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)
    assert not (lab / "reports" / "bad").exists() and not list((lab / "reports").glob(".tmp-*"))


def test_a_run_list_renders_each_report_and_goes_on_past_a_failure(nightly):
    lab = nightly[0]
    (lab / "regions.yaml").write_text(
        "defaults:\n  as_of: 2024-06-30\nruns:\n"
        "  - run_id: novi-sad\n    filter_by: region=Novi Sad\n    n_clusters: 3\n"
        "  - run_id: too-early\n    as_of: 2022-12-15\n"  # valid, but nobody had bought yet: fails inside the template
        "  - run_id: web-pii\n    filter_by: channel=web\n    include_pii: true\n", encoding="utf-8")
    done = cli("report", "--runs", "regions.yaml", cwd=lab)
    assert done.returncode == 2
    assert "report too-early: FAILED" in done.stdout and "1 of 3 reports failed" in done.stderr
    assert "bought anything by 2022-12-15" in done.stderr and (lab / "reports" / "_failed" / "too-early-segment_report.ipynb").exists()
    assert not (lab / "reports" / "too-early").exists()
    regional = json.loads((lab / "reports" / "novi-sad" / "metrics.json").read_text())
    assert regional["scope"] == "customers with region = Novi Sad" and len(regional["clusters"]) == 3
    assert 0 < regional["customers"] < json.loads((nightly[1] / "metrics.json").read_text())["customers"]
    # with include_pii the exports do carry contacts: the privacy scan above would have seen them
    web = lab / "reports" / "web-pii"
    members = pd.read_csv(web / "segments" / "champions.csv", dtype=str)
    assert {"customer_id", "first_name", "email", "phone"} <= set(members.columns)
    assert set(members.email.dropna().str.lower()) & pii_values()["emails"]
    assert "customers with channel = web" in (web / "segment_report.html").read_text(encoding="utf-8")


def test_run_list_mistakes_stop_before_any_run(nightly):
    lab = nightly[0]
    (lab / "typo.yaml").write_text("runs:\n  - run_id: a\n  - run_id: b\n    horizon: 30\n", encoding="utf-8")
    done = cli("report", "--runs", "typo.yaml", cwd=lab)
    assert done.returncode == 2 and "run list typo.yaml, run 'b': report parameter(s) horizon not in" in done.stderr
    assert not (lab / "reports" / "a").exists()
    (lab / "twice.yaml").write_text("runs:\n  - run_id: a\n  - run_id: a\n", encoding="utf-8")
    assert "run_id 'a' appears twice" in cli("report", "--runs", "twice.yaml", cwd=lab).stderr


def test_own_segments_match_the_rules_on_the_exported_view(nightly):
    from loyalty_lab import evaluate_segments, read_segment_rules
    lab, folder = nightly
    metrics = json.loads((folder / "metrics.json").read_text())
    rules = read_segment_rules(lab / "segments.yaml")
    again = evaluate_segments(folder / "customer_360.parquet", rules)  # keyed by customer_key, as exported
    assert list(metrics["own_segments"]) == [r.name for r in rules]
    for name, figures in metrics["own_segments"].items():
        members = pd.read_csv(folder / figures["file"], dtype=str).customer_key
        assert figures["customers"] == len(members) == again.summary.loc[name, "customers"], name
        assert set(members) == set(again.member_list(name)), name
    assert 0 < metrics["own_segments"]["Slipping regulars"]["customers"] < metrics["customers"] / 2
    top = metrics["top_categories_by_segment"]
    assert set(top) <= set(metrics["rfm_segments"]) and all(len(v) == 3 for v in top.values())


def test_a_failed_swap_keeps_the_last_good_report(tmp_path, monkeypatch):
    "Issue 19: the old folder was deleted before the new one was renamed in; a failure between them lost both."
    import os
    from loyalty_lab.report import swap_in
    final, new = tmp_path / "nightly", tmp_path / ".tmp-nightly"
    final.mkdir(), new.mkdir()
    (final / "segment_report.html").write_text("last good")
    (new / "segment_report.html").write_text("new")
    real, calls = os.replace, []
    def failing_second_rename(a, b):
        calls.append((a, b))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(a, b)
    monkeypatch.setattr(os, "replace", failing_second_rename)
    with pytest.raises(OSError):
        swap_in(new, final)
    assert (final / "segment_report.html").read_text() == "last good"
    monkeypatch.setattr(os, "replace", real)
    swap_in(new, final)
    assert (final / "segment_report.html").read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["nightly"]

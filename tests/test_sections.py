"""The report's sections (loyalty_lab.sections) called one by one, without a kernel, on a shop that is not the sample:
the generator with another seed, 300 customers, English names, one store, one channel, no loyalty ledger, no
interactions and campaigns without a control group. Each section runs or says in one sentence what it could not do;
a model that does not converge, a library warning and an unexpected error are each handled as the reader needs."""
import html
import re
import warnings

import pandas as pd
import pytest

from loyalty_lab import load_settings, resolve_customers
from loyalty_lab.core import LoyaltyLabError
from loyalty_lab import sections
from loyalty_lab.sections import SECTIONS, ReportContext, Section, percent
from loyalty_lab.report import template_sections
from loyalty_lab.synth import generate
from loyalty_lab.warehouse import Warehouse

from lab_helpers import UNFIT_TEXT


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    "300 customers, one store and channel, no ledger or interactions, campaigns without a control group."
    root = tmp_path_factory.mktemp("shop")
    programme = generate(customers=300, seed=7, control_share=0.0, locales=(("en", 1.0),))
    lines = programme.table("order_lines").assign(store_id="S001", channel="store")
    flags = {"warehouse.path": str(root / "shop.duckdb"), "run.as_of": "2024-06-30", "report.segments_file": "",
             "locale.currency": "EUR", "report.output_dir": str(root / "reports")}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        settings = load_settings(flags=flags, env={})
        with Warehouse(settings.warehouse.path) as wh:
            wh.ingest("profiles", programme.table("profiles"), source_name="crm")
            wh.ingest("order_lines", lines, source_name="pos")
            wh.ingest("offers", programme.table("offers"), source_name="campaigns")
        resolve_customers(settings=settings)
    return root, flags


@pytest.fixture()
def context(shop, monkeypatch):
    root, flags = shop
    monkeypatch.chdir(root)
    with ReportContext.open(None, flags, output_dir=root / "out") as ctx:
        yield ctx


def visible(section: Section) -> str:
    "The section's text and tables as a reader sees them."
    return "\n".join(str(p) if kind in ("text", "note", "html") else p.to_html() if kind == "table" else ""
                     for kind, p in section.parts)


def test_the_template_is_the_table_of_contents():
    assert template_sections() == list(SECTIONS)
    assert all(f.__doc__ for f in SECTIONS.values())


def test_every_section_runs_on_a_shop_unlike_the_sample(context):
    shown = {name: fn(context) for name, fn in SECTIONS.items()}
    for name, section in shown.items():
        text = visible(section)
        assert not re.search(UNFIT_TEXT, re.sub(r"<[^>]+>", " ", text)), (name, text[:500])
        section.close()
    notes = {name: s.notes for name, s in shown.items()}
    assert notes["Headline figures"] == ["No loyalty_ledger table was loaded; it would add points earned and redeemed: "
                                         "the points outstanding, rewards and tiers."]
    assert "No interactions table was loaded" in notes["Run parameters and data coverage"][0]
    assert any("no control group" in n for n in notes["Offers: what to send to whom"])
    # without a control group no offer is proven: each segment gets a test of one offer against another, sized
    offers = shown["Offers: what to send to whom"].figures
    assert set(offers["offer_per_segment"].values()) == {"no offer"} and offers["recommended_offers"] == {
        "no offer": len(context.buyers)}
    assert all(re.match(r"no evidence yet: test .+ vs .+ on [\d,]+ customers", v) for v in offers["verdicts"].values())
    assert context.problems == {}  # every analysis could be done on this shop
    k = shown["Headline figures"].figures
    assert k["points liability"] is None and k["customers"] == len(context.buyers) <= 300
    assert sum(shown["Who the customers are: RFM segments"].figures["rfm_segments"].values()) == k["customers"]


def test_the_summary_says_what_changed_and_who_needs_action(context):
    s = sections.summary_section(context)
    text = visible(s)
    first = text.splitlines()[0]
    b = context.buyers_summary
    new = int((b.first_purchase > context.compare_to).sum())
    assert first.startswith("1. **Since 01 Apr 2024**") and f"{new:,} new customers" in first
    stake = sections.money_at_stake(context)
    # the three segments with the most value at risk or lapsing, named in that order
    assert s.figures["needs_action"] == stake.index[:3].tolist() and len(s.figures["needs_action"]) == 3
    at_risk = context.stages.index[context.stages.stage.isin(["at risk", "lapsed"])]
    assert s.figures["money_at_stake"] == pytest.approx(context.clv.predictions.clv.reindex(at_risk).sum())
    assert re.findall(r"^\d\. \*\*(.+?)\*\*", text, flags=re.M) == [
        "Since 01 Apr 2024", "Needs action", "Money at stake", "Offers", "Data"]


def test_a_model_that_does_not_converge_leaves_a_sentence_and_the_rest_of_the_report(context, monkeypatch):
    def no_fit(self, *a, **k):
        raise LoyaltyLabError("MBG/NBD did not converge on 300 customers; try time_unit = W or a penalizer")
    monkeypatch.setattr(sections.ClvModel, "fit", no_fit)
    clv = sections.clv_section(context)
    assert html.unescape(clv.notes[-1]) == (
        "CLV could not be predicted: no purchase model could be fitted on the history to 2024-06-30: MBG/NBD, BG/NBD, "
        "Pareto/NBD: MBG/NBD did not converge on 300 customers; try time_unit = W or a penalizer.")
    actions = sections.action_section(context)
    assert "predicted CLV" not in visible(actions) and actions.notes == []
    # the money at stake falls back to the last year's spend of those at risk or lapsing, and says so
    summary = visible(sections.summary_section(context))
    assert "the spend in the last year of the" in summary
    for s in (clv, actions):
        s.close()


def test_library_warnings_become_notes_and_other_errors_name_the_section(context, monkeypatch):
    def warns(ctx):  # as if from the library's own code, and from another library
        warnings.warn_explicit("RFM: all 300 customers share one value of F, so quantiles cannot split them",
                               UserWarning, sections.__file__, 1)
        warnings.warn("internal detail", RuntimeWarning)
        return Section()
    def breaks(ctx):
        return {}["x"]
    from IPython.utils.capture import capture_output
    with capture_output() as shown:
        section = context.show(warns)
    assert [html.unescape(n) for n in section.notes] == [
        "RFM: all 300 customers share one value of F, so quantiles cannot split them"]
    assert "internal detail" not in shown.stdout + shown.stderr
    assert context.library_warnings[-1].endswith("RuntimeWarning: internal detail")
    with pytest.raises(RuntimeError, match=r"report section 'breaks' failed: KeyError: 'x'"):
        context.show(breaks)


@pytest.mark.parametrize("share, text", [(0.25, "25 %"), (0.004, "<1 %"), (0.0, "0 %"), (None, "–"),
                                         (float("nan"), "–"), (0.999, ">99 %"), (1.0, "100 %")])
def test_shares_read_as_people_expect(share, text):
    assert percent(share) == text


@pytest.fixture(scope="module")
def controlled_shop(tmp_path_factory):
    "300 customers with campaigns that kept a control group, so the offers section scores the offer models (Qini)."
    root = tmp_path_factory.mktemp("controlled")
    programme = generate(customers=300, seed=8)
    flags = {"warehouse.path": str(root / "shop.duckdb"), "run.as_of": "2024-06-30", "report.segments_file": "",
             "report.output_dir": str(root / "reports")}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        settings = load_settings(flags=flags, env={})
        with Warehouse(settings.warehouse.path) as wh:
            for table in ("profiles", "order_lines", "interactions", "offers"):
                wh.ingest(table, programme.table(table), source_name="synth")
        resolve_customers(settings=settings)
    return root, flags


def test_a_qini_score_that_cannot_be_computed_leaves_the_offer_plan(controlled_shop, monkeypatch):
    "The issue's review: a failing Qini (a small control all in the holdout) used to throw away every offer."
    root, flags = controlled_shop
    monkeypatch.chdir(root)
    def no_qini(*a, **k):
        raise LoyaltyLabError("no control group customers in the held-out 30 %")
    monkeypatch.setattr(sections, "evaluate_uplift", no_qini)
    with ReportContext.open(None, flags, output_dir=root / "out") as ctx:
        offers = ctx.offers
        assert offers is not None and "qini" not in offers.evidence and len(offers.plan) == ctx.buyers.segment.nunique()
        assert ctx.notes["offers"] == ["no Qini score for the offer models: no control group customers in the held-out 30 %"]
        section = sections.offers_section(ctx)
        assert "The offer per segment" in visible(section) and "Qini (held out)" not in visible(section)
        assert any("no Qini score" in n for n in section.notes)
        section.close()

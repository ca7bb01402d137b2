"""Churn and P(alive) a marketer can trust (issue 20): the purchase model chosen per run by the holdout backtest,
MBG/NBD as the default, and one-time buyers whose P(alive) falls with time — on CDNOW as an orders-only shop
(as of 1998-06-30, 545 days after its first purchases) and on a synthetic programme."""

import numpy as np
import pandas as pd
import pytest
from loyalty_lab import LoyaltyLabError
import loyalty_lab.clv as clv
from loyalty_lab.clv import ClvModel, choose_model
from loyalty_lab.config import load_settings
from loyalty_lab.lifecycle import LifecycleRules
from loyalty_lab.rfm import RFM
from loyalty_lab.summary import cdnow, summarize
from loyalty_lab.synth import generate

AS_OF = "1998-06-30"


@pytest.fixture(scope="module")
def history():
    return cdnow()


@pytest.fixture(scope="module")
def choice(history):
    return choose_model(history, AS_OF, load_settings(flags={}, env={}), timezone="UTC", seed=42)


@pytest.fixture(scope="module")
def segments(history):
    return RFM().fit_transform(summarize(history, AS_OF, "D")).segment


@pytest.fixture(scope="module")
def one_timer(history):
    "A customer whose only purchase was on CDNOW's first day, 545 days before AS_OF."
    counts = history.groupby("customer_id").ts.agg(["nunique", "min"])
    return counts[(counts["nunique"] == 1) & (counts["min"] == "1997-01-01")].index[0]


def mean_p_alive(predictions, segments) -> pd.Series:
    return predictions.p_alive.groupby(segments.reindex(predictions.index)).mean()


def test_bgnbd_alone_calls_lost_customers_alive_the_default_does_not(choice, segments):
    # the failure of the issue: BG/NBD's own P(alive) is 1 for every one-time buyer, so Lost ≈ 100 %, Champions 65 %
    raw = mean_p_alive(ClvModel("bgnbd", one_time_model=None).fit(choice.summary).predict(choice.summary), segments)
    assert raw["Lost"] > 0.99 and raw["Hibernating"] > 0.99 and raw["Champions"] < 0.7
    # the default, MBG/NBD: Lost 0.31, Hibernating 0.32, Champions 0.62
    default = mean_p_alive(ClvModel().fit(choice.summary).predict(choice.summary), segments)
    assert ClvModel().model == "mbgnbd"
    for seg in ("Lost", "Hibernating", "Need Attention", "About To Sleep"):
        assert default[seg] < 0.6 * default["Champions"], (seg, default[seg], default["Champions"])
    # BG/NBD with its one-time buyers from MBG/NBD ranks them the same way
    mixed = mean_p_alive(ClvModel("bgnbd").fit(choice.summary).predict(choice.summary), segments)
    assert mixed["Lost"] < 0.6 * mixed["Champions"] and mixed["Hibernating"] < 0.6 * mixed["Champions"]


def test_the_chosen_model_ranks_lost_below_champions(choice, segments):
    chosen = mean_p_alive(choice.model.predict(choice.summary), segments)
    assert chosen["Lost"] < 0.6 * chosen["Champions"] and chosen["Hibernating"] < 0.6 * chosen["Champions"]


@pytest.mark.parametrize("model", ["mbgnbd", "pareto_nbd", "bgnbd"])
def test_a_one_time_buyer_545_days_later_is_not_low_risk(choice, one_timer, model):
    s = choice.summary
    assert s.loc[one_timer, "frequency"] == 0 and round(s.loc[one_timer, "T"] * 7) == 545
    p = ClvModel(model, spend=False).fit(s).predict(s).loc[one_timer]
    assert p.p_alive < 0.35 and p.churn_risk in ("medium", "high")  # MBG/NBD 0.31, Pareto/NBD 0.26
    assert p.p_alive_from == ("MBG/NBD" if model == "bgnbd" else clv.MODELS[model][0])


def test_one_time_buyers_a_year_on_are_never_low_risk_even_with_bgnbd_alone(choice):
    s = choice.summary
    p = ClvModel("bgnbd", spend=False, one_time_model=None).fit(s).predict(s)
    lapsed = (s.frequency == 0) & (s["T"] * 7 >= 365)
    assert lapsed.sum() > 1000 and (p.p_alive[lapsed] == 1).all() and set(p.p_alive_from) == {"BG/NBD"}
    # the lifecycle's stages: one-time buyers lapsed after 30 days are at least medium, churned after 365 high
    days = s["T"] * 7
    assert set(p.churn_risk[(s.frequency == 0) & (days > 365)]) == {"high"}
    # with lifecycle rules that call them lapsed (not churned) for longer, they are medium: P(alive) 1 alone says low
    patient = ClvModel("bgnbd", spend=False, one_time_model=None).fit(s).predict(s, lifecycle=LifecycleRules(lapsed_days=10_000))
    assert (days[s.frequency == 0] > 30).all() and set(patient.churn_risk[s.frequency == 0]) == {"medium"}


def test_p_alive_of_mbgnbd_by_hand(choice):
    s, m = choice.summary, ClvModel("mbgnbd", spend=False).fit(choice.summary)
    p = m.predict(s)
    r, alpha, a, b = m.transactions_.params_[["r", "alpha", "a", "b"]]
    # MBG/NBD: P(alive) = 1 / (1 + a/(b+x) ((α+T)/(α+t_x))^(r+x)), one-time buyers included (x = 0, t_x = 0)
    for who in (s.index[s.frequency == 0][0], s.index[(s.frequency == 3) & (s.recency < s["T"] / 2)][0]):
        x, tx, T = s.loc[who, ["frequency", "recency", "T"]]
        assert p.p_alive[who] == pytest.approx(1 / (1 + a / (b + x) * ((alpha + T) / (alpha + tx)) ** (r + x)))


def test_the_choice_picks_a_model_and_ranks_all_four(choice):
    r = choice.ranking
    assert list(r.index[:1]) == [choice.model.label] and r.chosen.tolist() == [True, False, False, False]
    assert set(r.index) == {"BG/NBD", "Pareto/NBD", "MBG/NBD", "Gradient boosting"}
    btyd = r.drop(index="Gradient boosting")
    assert btyd.purchases_rmse.idxmin() == choice.model.label == "MBG/NBD"  # 1.044 against 1.048 and 1.050
    assert r.loc["Gradient boosting", "note"] == "comparator only: gives no P(alive), so it cannot be chosen"
    # a third of 545 days of history, under the 182-day cap and the 365-day horizon
    assert choice.holdout_days == 181 and choice.backtest.calibration_end == "1997-12-31"
    assert choice.reason == ("MBG/NBD had the lowest per-customer error of the three purchase models on the last 181 "
                             "days (fitted to 1997-12-31, scored on the holdout to 1998-06-30)")
    # the chosen model is fitted on the whole history, not the calibration part
    assert choice.model.as_of_.startswith(AS_OF) and choice.model.customers_ == 2357
    assert choice.summary.attrs["time_unit"] == "W" and choice.model.spend_ is not None


def test_the_holdout_is_a_third_of_a_shorter_history(history):
    # 1997-01-01 … 1997-09-30 is 272 days: the holdout is 272 // 3 = 90 days, from 1997-07-02; without the comparator
    got = choose_model(history[history.ts < "1997-10-01"], "1997-09-30", ml=False)
    assert got.holdout_days == 90 and got.backtest.calibration_end == "1997-07-02"
    assert len(got.ranking) == 3 and got.ranking.index[0] == got.model.label
    assert got.reason.endswith("on the last 90 days (fitted to 1997-07-02, scored on the holdout to 1997-09-30)")


def test_too_short_a_history_uses_the_default_and_says_why(history):
    early = history[history.ts < "1997-01-21"]
    got = choose_model(early, "1997-01-21")  # 20 // 3 = 6 days: no week-long holdout
    assert got.backtest is None and got.model.model == "mbgnbd"
    assert got.reason == "only 20 days of history: too little for a holdout of at least 7 days, so the default MBG/NBD is used"
    assert len(got.ranking) == 4 and (got.ranking.note.iloc[:3] == "not backtested: too little history").all()
    settings = load_settings(flags={"clv.model": "pareto_nbd"}, env={})
    got = choose_model(early, "1997-01-21", settings)
    assert got.model.label == "Pareto/NBD" and got.reason.endswith("so the default Pareto/NBD is used")
    # two weeks: 16 repeat buyers are too few for Gamma-Gamma, whichever purchase model — said once, in words
    with pytest.raises(LoyaltyLabError, match=r"^no purchase model could be fitted on the history to 1997-01-15: MBG/NBD, "
                                              r"BG/NBD, Pareto/NBD: Gamma-Gamma did not converge on 16 customers: try a "
                                              r"penalizer \(\[clv\] penalizer = 0.001, then 0.01\)[^;]*$"):
        choose_model(history[history.ts < "1997-01-15"], "1997-01-15")


def test_a_model_that_does_not_converge_is_listed_not_raised(history, monkeypatch):
    real = clv._fit
    def pareto_fails(fitter_class, *args, **kwargs):
        if fitter_class is clv.ParetoNBDFitter:
            raise ValueError("The model did not converge.")
        return real(fitter_class, *args, **kwargs)
    monkeypatch.setattr(clv, "_fit", pareto_fails)
    got = choose_model(history, AS_OF, ml=False)
    assert got.ranking.index[-1] == "Pareto/NBD" and np.isnan(got.ranking.loc["Pareto/NBD", "purchases_rmse"])
    assert got.ranking.loc["Pareto/NBD", "note"].startswith("could not be fitted: Pareto/NBD did not converge on 2,357")
    assert "of the 2 purchase models that could be fitted" in got.reason


def test_when_no_model_can_be_fitted_the_error_says_why(history, monkeypatch):
    def fails(*args, **kwargs):
        raise ValueError("The model did not converge.")
    monkeypatch.setattr(clv, "_fit", fails)
    with pytest.raises(LoyaltyLabError, match=r"no purchase model could be fitted on the history to 1998-06-30: "
                                              r"MBG/NBD: MBG/NBD did not converge on 2,357 customers: try a penalizer.*; "
                                              r"BG/NBD: BG/NBD did not converge.*; Pareto/NBD: Pareto/NBD did not converge"):
        choose_model(history, AS_OF, ml=False)


def test_synthetic_programme_other_seed():
    prog = generate(customers=2000, seed=11)
    lines = prog.table("order_lines").merge(prog.truth["orders"][["order_id", "person_id"]], on="order_id")
    lines["amount"] = lines.quantity * lines.unit_price - lines.discount.fillna(0) * np.sign(lines.quantity)
    got = choose_model(lines, prog.config.end, customer_id="person_id")
    assert len(got.ranking) == 4 and got.ranking.chosen.iloc[0] and got.holdout_days == 182
    assert got.reason.startswith(f"{got.model.label} had the lowest per-customer error of the three purchase models")
    p = got.model.predict(got.summary)
    alive = prog.truth["people"].set_index("person_id").alive_at_end.reindex(p.index)
    assert p.p_alive[alive == True].mean() > p.p_alive[alive == False].mean() + 0.4  # 0.77 against 0.15
    s = got.summary.reindex(p.index)
    lapsed = (s.frequency == 0) & (s["T"] * 7 >= 365)
    assert lapsed.any() and (p.churn_risk[lapsed] != "low").all()


def test_too_few_customers_are_refused_before_any_backtest(history):
    few = history[history.customer_id.isin(history.customer_id.unique()[:5])]
    with pytest.raises(LoyaltyLabError, match=r"^choose_model: 5 customers with purchases; a purchase model needs at "
                                              r"least 10 \(better hundreds\)"):
        choose_model(few, AS_OF)


def test_one_time_buyers_cannot_be_given_to_bgnbd():
    with pytest.raises(LoyaltyLabError, match=r"one_time_model = 'bgnbd': mbgnbd, pareto_nbd or None \(BG/NBD cannot "
                                              r"tell whether a one-time buyer dropped out\)"):
        ClvModel("bgnbd", one_time_model="bgnbd")


def test_a_backtest_that_cannot_run_leaves_the_default_and_says_why(history, monkeypatch):
    def cannot(*args, **kwargs):
        raise LoyaltyLabError("backtest: no purchase model could be fitted on the calibration period to 1997-12-31: …")
    monkeypatch.setattr(clv, "backtest", cannot)
    got = choose_model(history, AS_OF, load_settings(flags={"clv.model": "bgnbd"}, env={}))
    assert got.backtest is None and got.model.label == "BG/NBD"
    assert got.reason == ("the holdout backtest on the last 181 days could not fit any purchase model on the history to "
                          "1997-12-31, so the default BG/NBD is used")
    assert got.ranking.note.iloc[0].startswith("not backtested: backtest: no purchase model could be fitted")
    # BG/NBD chosen: its one-time buyers' P(alive) comes from MBG/NBD, and the predictions say so
    p = got.model.predict(got.summary)
    assert p.p_alive_from[got.summary.frequency == 0].eq("MBG/NBD").all() and p.p_alive_from.eq("BG/NBD").any()

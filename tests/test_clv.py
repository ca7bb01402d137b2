"""CLV: published CDNOW estimates from raw transactions, latent parameters of the synthetic programme,
predictions against hand computation, intervals and their coverage, the backtest, and bad input."""
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter
from loyalty_lab import LoyaltyLabError
import loyalty_lab.clv as clv
from loyalty_lab.clv import ClvModel, backtest, intervals, simulate
from loyalty_lab.summary import calibration_and_holdout, cdnow, summarize
from loyalty_lab.synth import generate


@pytest.fixture(scope="module")
def split():
    return calibration_and_holdout(cdnow(), "1997-09-30", "1998-06-30", "W")


@pytest.fixture(scope="module")
def cal(split):
    out = split[[c for c in split.columns if c.endswith("_cal")]].rename(columns=lambda c: c[:-4])
    out.attrs.update(time_unit="W", as_of=split.attrs["calibration_end"])
    return out


@pytest.fixture(scope="module")
def bgnbd(cal):
    return ClvModel("bgnbd").fit(cal)


def three_digits(x: float) -> float:
    return float(f"{x:.3g}")


@pytest.mark.parametrize("model, published", [
    ("bgnbd", {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}),
    ("pareto_nbd", {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}),
])
def test_published_cdnow_estimates_from_raw_transactions(cal, model, published):
    fitted = ClvModel(model).fit(cal).transactions_.params_
    assert {k: three_digits(fitted[k]) for k in published} == {k: three_digits(v) for k, v in published.items()}


def test_published_gamma_gamma_estimates(bgnbd):
    p = bgnbd.spend_.params_
    assert (three_digits(p["p"]), three_digits(p["q"]), three_digits(p["v"])) == (6.25, 3.74, 15.4)
    assert round(p["v"], 2) == 15.44 and abs(bgnbd.independence_) < 0.3


def test_synthetic_programme_latent_parameters_are_recovered():
    # 20,000 people, organic orders only (offer redemptions are extra purchases the BG/NBD process did not make)
    prog = generate(customers=20_000, seed=7)
    organic = prog.truth["orders"].query("kind == 'organic'")[["order_id", "person_id"]]
    lines = prog.table("order_lines").merge(organic, on="order_id")
    lines["amount"] = lines.quantity * lines.unit_price - lines.discount.fillna(0) * np.sign(lines.quantity)
    fitted = ClvModel("bgnbd").fit(summarize(lines, prog.config.end, "W", customer_id="person_id"))  # the generator's model
    estimate = dict(zip(fitted.params.parameter, fitted.params.estimate))
    cfg = prog.config
    # stated tolerance: 10 % for r, a, b (alpha 15 %: same-day purchases merge, see test_synth); Gamma-Gamma 15 %
    # (the spend of a purchase day is the order's lines after discounts, not the generator's raw draw)
    for name, truth, tolerance in (("r", cfg.r, .10), ("alpha", cfg.alpha, .15), ("a", cfg.a, .10), ("b", cfg.b, .10),
                                   ("p", cfg.p, .15), ("q", cfg.q, .15), ("gamma", cfg.gamma, .15)):
        assert estimate[name] == pytest.approx(truth, rel=tolerance), name


def test_warm_started_fit_reaches_the_cold_fit(cal, monkeypatch):
    monkeypatch.setattr(clv, "WARM_START_ROWS", 100)  # force the subsample start on CDNOW
    monkeypatch.setattr(clv, "_SUBSAMPLE", 500)
    warm = ClvModel("bgnbd").fit(cal)
    w = cal.groupby(["frequency", "recency", "T"]).size().rename("n").reset_index()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cold = BetaGeoFitter().fit(w.frequency, w.recency, w["T"], weights=w.n).params_
    assert np.allclose(warm.transactions_.params_.to_numpy(), cold.to_numpy(), rtol=1e-4)


def test_hessian_by_differences_equals_lifetimes_own(split):
    from lifetimes import GammaGammaFitter, ModifiedBetaGeoFitter
    repeat = split[split.frequency_cal > 0]
    for fitter, data in ((BetaGeoFitter, split[["frequency_cal", "recency_cal", "T_cal"]]),
                         (ModifiedBetaGeoFitter, split[["frequency_cal", "recency_cal", "T_cal"]]),
                         (GammaGammaFitter, repeat[["frequency_cal", "monetary_value_cal"]])):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = fitter().fit(*data.to_numpy().T)
            ours = clv._FITTERS[fitter]().fit(*data.to_numpy().T)
        assert np.array_equal(ours.params_.to_numpy(), theirs.params_.to_numpy())
        assert np.allclose(ours._hessian_, theirs._hessian_, rtol=1e-5, atol=1e-8), fitter.__name__


def test_predictions_match_hand_computation(bgnbd, cal):
    p = bgnbd.predict(cal, horizons_days=(30, 365), horizon_days=365, discount_rate=0.0)
    r, alpha, a, b = bgnbd.transactions_.params_[["r", "alpha", "a", "b"]]
    who = cal.index[(cal.frequency == 2) & (cal.recency < cal["T"] / 2)][0]  # bought thrice, then went quiet
    # P(alive) of BG/NBD for a repeat buyer: 1 / (1 + a/(b+x−1) ((α+T)/(α+t_x))^(r+x))
    x, tx, T = cal.loc[who, ["frequency", "recency", "T"]]
    assert p.p_alive[who] == pytest.approx(1 / (1 + a / (b + x - 1) * ((alpha + T) / (alpha + tx)) ** (r + x)))
    # BG/NBD: nobody drops out before a repeat purchase, so its own P(alive) of a one-time buyer is 1; predict gives
    # them MBG/NBD's instead, and says so
    one_time = cal[cal.frequency == 0]
    own = bgnbd.transactions_.conditional_probability_alive(one_time.frequency, one_time.recency, one_time["T"])
    assert np.allclose(own, 1.0) and (p.p_alive[one_time.index] < 0.7).all()
    assert set(p.p_alive_from[one_time.index]) == {"MBG/NBD"} and set(p.p_alive_from.drop(one_time.index)) == {"BG/NBD"}
    assert p.days_to_next_purchase[who] == pytest.approx((alpha + T) / (r + x) * 7)
    # without discounting CLV is expected purchases over the horizon times spend per purchase
    assert np.allclose(p.clv, p.purchases_365d * p.spend_per_purchase)
    assert (p.purchases_365d >= p.purchases_30d).all() and p.p_alive.between(0, 1).all()
    discounted = bgnbd.predict(cal, horizons_days=(365,), horizon_days=365, discount_rate=0.2)
    assert (discounted.clv <= p.clv + 1e-9).all() and discounted.clv.sum() < 0.95 * p.clv.sum()
    # churn bands follow P(alive)
    assert (p.churn_risk[p.p_alive < 0.3] == "high").all() and (p.churn_risk[p.p_alive >= 0.7] == "low").all()
    # Gamma-Gamma: a one-time buyer gets the population mean p·γ/(q−1)
    g = bgnbd.spend_.params_
    assert p.spend_per_purchase[cal.frequency == 0].iloc[0] == pytest.approx(g["p"] * g["v"] / (g["q"] - 1))


def test_clv_discounts_month_by_month(bgnbd, cal):
    monthly = 1.1 ** (1 / 12) - 1
    p = bgnbd.predict(cal, horizons_days=(), horizon_days=2 * 365.25 / 12, discount_rate=0.10)
    one = cal.iloc[[0]]
    month = 365.25 / 12 / 7
    e1, e2 = (bgnbd.transactions_.conditional_expected_number_of_purchases_up_to_time(t, one.frequency, one.recency, one["T"]).iloc[0]
              for t in (month, 2 * month))
    assert p.clv.iloc[0] == pytest.approx(p.spend_per_purchase.iloc[0] * (e1 / (1 + monthly) + (e2 - e1) / (1 + monthly) ** 2))


def test_simulated_futures_agree_with_the_closed_form(bgnbd, cal):
    _, purchases, spend = simulate(bgnbd, cal, 273, draws=200, bootstraps=1)
    expected = bgnbd.expected_purchases(cal, 273).sum()
    assert purchases.mean(axis=1).sum() == pytest.approx(expected, rel=0.03)
    ranges = intervals(bgnbd, cal, horizon_days=365, draws=100, bootstraps=5)
    totals = ranges.attrs["totals"]["purchases"]
    assert totals["low"] < totals["expected"] < totals["high"]
    assert (ranges.purchases_low <= ranges.purchases_high).all() and (ranges.clv_low <= ranges.clv_high).all()


def test_backtest_scores_models_and_the_comparator(split):
    bt = backtest(cdnow(), "1997-09-30", "1998-06-30", "W", draws=100, bootstraps=5)
    c = bt.comparison
    assert list(c.index) == ["BG/NBD", "Pareto/NBD", "MBG/NBD", "Gradient boosting"]
    assert bt.best == c.purchases_rmse.idxmin()
    # the comparator forecasts out of fold yet gets the holdout total right within 5 %
    assert abs(c.loc["Gradient boosting", "purchases_error_pct"]) < 5
    assert (c.purchases_actual == split.frequency_holdout.sum()).all()
    e = bt.predictions["BG/NBD"] - bt.predictions.actual
    assert c.loc["BG/NBD", "purchases_mae"] == pytest.approx(e.abs().mean())
    assert c.loc["BG/NBD", "purchases_rmse"] == pytest.approx(math.sqrt((e ** 2).mean()))
    # per-customer 90 % intervals of counts cover at least ~90 % of customers on the holdout
    assert (c.drop(index="Gradient boosting").coverage_purchases > 0.85).all()
    # conditional expectations: the paper's table, actual means by calibration frequency
    assert bt.by_frequency.loc["0", "customers"] == 1_411
    assert bt.by_frequency.loc["1", "actual"] == pytest.approx(split.frequency_holdout[split.frequency_cal == 1].mean())
    # the tracking table counts every repeat purchase day of the calibration customers, and the models follow it
    assert bt.tracking.actual.sum() == split.frequency_cal.sum() + split.frequency_holdout.sum()
    assert bt.tracking["BG/NBD"].sum() == pytest.approx(bt.tracking.actual.sum(), rel=0.1)
    for figure in (bt.plot_tracking(), bt.plot_by_frequency(), bt.plot_p_alive()):
        assert figure.axes


def test_time_unit_must_match_the_fit(bgnbd, cal):
    days = cal.copy()
    days.attrs = {**cal.attrs, "time_unit": "D"}
    with pytest.raises(LoyaltyLabError, match="time unit 'D'.*fitted in 'W'"):
        bgnbd.predict(days)


def test_bad_input_is_refused_clearly(cal):
    one = cal.iloc[:1]
    with pytest.raises(LoyaltyLabError, match="1 customers with purchases; a purchase model needs at least 10"):
        ClvModel().fit(one)
    no_repeat = cal[cal.frequency == 0].head(50)
    with pytest.raises(LoyaltyLabError, match="none of the 50 customers bought on a second day"):
        ClvModel().fit(no_repeat)
    with pytest.raises(LoyaltyLabError, match="Gamma-Gamma needs repeat buyers"):
        ClvModel().fit(pd.concat([no_repeat, cal[cal.frequency > 0].head(3)]))
    bent = cal.copy()
    bent.loc[bent.index[:2], "T"] = bent.recency.iloc[:2] - 1
    with pytest.raises(LoyaltyLabError, match=r"2 customers where T is smaller than recency, e\.g\. " + bent.index[0]):
        ClvModel().fit(bent)
    negative = cal.copy()
    negative.loc[negative.frequency > 0, "monetary_value"] *= -1
    with pytest.raises(LoyaltyLabError, match="negative monetary_value"):
        ClvModel().fit(negative)
    with pytest.raises(LoyaltyLabError, match="choose one of bgnbd, pareto_nbd, mbgnbd"):
        ClvModel("gamma")
    with pytest.raises(LoyaltyLabError, match="needs the output of summarize"):
        ClvModel().fit(cal.drop(columns="recency"))
    with pytest.raises(LoyaltyLabError, match="holdout 1997-09-30 → 1997-10-03 is 3 days; it must be at least a week"):
        backtest(cdnow(), "1997-09-30", "1997-10-03")


def test_free_repeat_purchases_are_left_out_of_gamma_gamma(cal):
    free = cal.copy()
    free.loc[free[free.frequency > 0].index[:5], "monetary_value"] = 0.0
    fitted = ClvModel().fit(free)
    assert fitted.spend_excluded_ == 5 and fitted.spend_.params_["p"] > 0


def test_non_convergence_says_what_to_try(cal, monkeypatch):
    def fails(*args, **kwargs):
        raise ValueError("The model did not converge.")
    monkeypatch.setattr(clv, "_fit", fails)
    with pytest.raises(LoyaltyLabError, match=r"BG/NBD did not converge on 2,357 customers: try a penalizer .*days \('D'\).*longer calibration"):
        ClvModel().fit(cal)


def test_pareto_random_starts_are_seeded_and_settings_choose_the_model(cal):
    first, again = (ClvModel("pareto_nbd", seed=3, spend=False).fit(cal) for _ in range(2))
    assert np.array_equal(first.transactions_.params_.to_numpy(), again.transactions_.params_.to_numpy())
    from loyalty_lab.config import load_settings
    settings = load_settings(flags={"clv.model": "mbgnbd", "clv.penalizer": "0.001", "run.seed": "9"}, env={})
    chosen = ClvModel.from_settings(settings)
    assert (chosen.model, chosen.penalizer, chosen.seed, chosen.label) == ("mbgnbd", 0.001, 9, "MBG/NBD")

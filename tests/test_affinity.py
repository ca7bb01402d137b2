"""Category and product affinity on the sample programme: a time-based holdout where the model beats the
popularity baseline, agreement with the generator's true tastes, the just-bought rule, the no-history
fallback, and clear errors."""
import pandas as pd
import pytest

from loyalty_lab import (AffinityModel, LoyaltyLabError, Warehouse, affinity_backtest, customer_affinities,
                         customer_lines, item_history)

from lab_helpers import merged_lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    s = merged_lab(tmp_path_factory.mktemp("affinity"))
    wh = Warehouse.open(s, read_only=True)
    yield s, wh
    wh.close()


def test_affinity_beats_popularity_on_the_holdout(lab):
    s, wh = lab
    tz = s.locale.timezone
    lines = customer_lines(wh)
    result = affinity_backtest(lines, pd.Timestamp("2024-01-01", tz=tz), pd.Timestamp("2024-07-01", tz=tz), k=3)
    model, popular = result.loc["history + similar"], result.loc["popular"]
    assert result.loc["history + similar", "customers"] > 500
    assert model["recall@3"] > popular["recall@3"] * 1.1 and model["hit_rate@3"] > popular["hit_rate@3"]
    assert model["recall@3"] >= result.loc["similar", "recall@3"]
    products = affinity_backtest(lines, pd.Timestamp("2024-01-01", tz=tz), pd.Timestamp("2024-07-01", tz=tz),
                                 level="product_id", k=5)
    assert products.loc["history + similar", "recall@5"] > products.loc["popular", "recall@5"]


def test_recommendations_skip_what_was_just_bought_and_say_their_basis(lab):
    s, wh = lab
    as_of = s.as_of()
    history = item_history(customer_lines(wh), as_of)
    recent = history[history.last_bought > as_of - pd.Timedelta(days=14)]
    assert len(recent) > 20
    recs = AffinityModel(recent_days=14).fit(history).recommend(history, k=3)
    pairs = set(zip(recs.customer_id, recs.category))
    assert not pairs & set(zip(recent.customer_id, recent["item"]))
    per_customer = recs.groupby("customer_id").affinity.apply(lambda a: a.is_monotonic_decreasing)
    assert per_customer.all() and recs.affinity.between(0, 1).all()
    everyone = customer_affinities(wh, s, k=3, segments=pd.Series({"nobody-yet": "x"}))
    assert everyone.customer_id.nunique() > 1900 and (everyone.groupby("customer_id").size() <= 3).all()
    # a newcomer: popular overall, and said so
    newcomer = AffinityModel().fit(history).recommend(history.iloc[:0], customers=["c-new"], k=2)
    assert newcomer.basis.tolist() == ["popular overall (no purchase history)"] * 2


def test_bad_input_is_named(lab):
    s, wh = lab
    lines = customer_lines(wh)
    with pytest.raises(LoyaltyLabError, match="level must be one of category, product_id, not 'sku'"):
        item_history(lines, s.as_of(), level="sku")
    with pytest.raises(LoyaltyLabError, match="no purchase history before as_of; choose a later as_of"):
        AffinityModel().fit(item_history(lines, pd.Timestamp("2001-01-01", tz="UTC")))
    with pytest.raises(LoyaltyLabError, match="the order lines lack category"):
        item_history(lines.drop("category"), s.as_of())


@pytest.mark.parametrize("history, what", [
    ([1, 2], "not list"),
    (pd.DataFrame({"customer_id": ["a"], "category": ["x"]}), "not a DataFrame without item, weight, bought, last_bought")])
def test_fit_names_the_history_it_needs(history, what):
    "AffinityModel().fit([...]) raised AttributeError: 'list' object has no attribute 'empty'."
    with pytest.raises(LoyaltyLabError, match=f"affinity: fit needs the purchase history from item_history\\(\\) "
                                              f"\\(a DataFrame with customer_id, item, weight, bought, last_bought\\), {what}"):
        AffinityModel().fit(history)

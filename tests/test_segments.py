"""Behavioural features, segments and lookalikes on the synthetic sample: hand-checked features, archetype
recovery, persistence, bad input."""
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score
from loyalty_lab import LoyaltyLabError
from loyalty_lab.config import load_settings
from loyalty_lab.profiles import resolve_customers
from loyalty_lab.segments import Lookalikes, Segmenter, behaviour_features, segment_name
from loyalty_lab.warehouse import Warehouse, ingest_sources

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    path = tmp_path_factory.mktemp("seg") / "lab.duckdb"
    settings = load_settings(Path(__file__).resolve().parents[1] / "settings.ini", flags={"warehouse.path": str(path)}, env={})
    ingest_sources(settings)
    resolve_customers(settings=settings)
    return settings, path


@pytest.fixture(scope="module")
def features(lab):
    settings, _ = lab
    return behaviour_features(settings=settings, as_of="2024-06-30")


@pytest.fixture(scope="module")
def archetype(lab, features):
    _, path = lab
    truth = pd.read_csv(SAMPLE / "truth" / "people.csv", usecols=["person_id", "archetype"]).set_index("person_id").archetype
    records = pd.read_csv(SAMPLE / "truth" / "profiles.csv", usecols=["source_system", "source_customer_id", "person_id"], dtype=str)
    records["record_id"] = records.source_system + ":" + records.source_customer_id
    with Warehouse(path, read_only=True) as wh:
        crosswalk = wh.con.table("crosswalk").to_pandas()
    person = crosswalk.merge(records, on="record_id").groupby("customer_id").person_id.agg(lambda p: p.mode()[0])
    return person.map(truth).reindex(features.index)


@pytest.fixture(scope="module")
def segments(features):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return Segmenter().fit(features)


def test_features_agree_with_the_raw_lines(lab, features):
    _, path = lab
    shares = features.filter(like="cat_").sum(axis=1)
    assert np.allclose(shares, 1) and np.allclose(features.filter(like="channel_").sum(axis=1), 1)
    with Warehouse(path, read_only=True) as wh:
        from loyalty_lab.summary import customer_lines
        lines = customer_lines(wh).to_pyarrow().to_pandas()
    lines = lines[lines.ts <= pd.Timestamp("2024-06-30 23:59:59", tz="Europe/Belgrade")]
    who = features.index[features.frequency >= 4][0]
    mine = lines[(lines.customer_id == who) & (lines.quantity > 0)]
    days = np.sort(mine.ts.dt.tz_convert("UTC").dt.normalize().unique())
    gaps = np.diff(days) / np.timedelta64(1, "D")
    assert features.loc[who, "gap_cv"] == pytest.approx(gaps.std() / gaps.mean())
    by_category = mine.groupby("category").amount.sum()
    assert features.loc[who, "cat_" + by_category.idxmax()] == pytest.approx(by_category.max() / by_category.sum())
    assert features.loc[who, "orders"] == mine.order_id.nunique()


def test_segments_recover_the_archetypes(segments, features, archetype):
    assert segments.k_ in (4, 5)  # the generator has four archetypes; k is chosen by silhouette among stable k
    assert adjusted_rand_score(archetype, segments.labels_) > 0.25
    engaged = features.orders >= 6  # more orders, more evidence of taste
    assert adjusted_rand_score(archetype[engaged], segments.labels_[engaged]) > 0.4
    assert segments.stability_ >= 0.6 and segments.profiles_.share.min() >= 0.03
    assert len(set(segments.names_)) == segments.k_ and segments.profiles_.revenue_share.sum() == pytest.approx(1)
    # the promo hunters' segment is the deal-seeking one
    deal = segments.labels_ == next(n for n in segments.names_ if "deal" in n or "promo" in n)
    assert archetype[deal].value_counts(normalize=True).idxmax() == "promo_hunter"


def test_saved_segments_assign_without_refitting(segments, features, tmp_path):
    loaded = Segmenter.load(segments.save(tmp_path / "s.joblib"))
    assert (loaded.assign(features) == segments.labels_).all()
    with pytest.raises(LoyaltyLabError, match="lack cat_baby"):
        loaded.assign(features.drop(columns="cat_baby"))


def test_names_come_from_distinctive_traits():
    assert segment_name(pd.Series({"promo_share": 1.4, "cat_baby": 0.9, "aov": 0.1})) == "promo-driven baby shoppers"
    assert segment_name(pd.Series({"channel_app": 1.2, "frequency": 0.8})) == "app regulars"
    # no trait strong enough or none with a word: the name says so, never a bare "customers" (and "customers 2")
    assert segment_name(pd.Series({"aov": 0.1})) == "average customers"
    assert segment_name(pd.Series({"cat_baby": -1.2, "aov": 0.1})) == "customers buying little baby"
    assert segment_name(pd.Series({"gap_cv": 0.1, "email_open_rate": -0.8})) == "customers with low email open rate"


def test_bad_input_is_refused_clearly(features):
    # too few customers for k: fewer segments, said in a sentence; too few for two: refused
    with pytest.warns(UserWarning, match="2 segments instead of k = 3: 20 customers are too few for more"):
        small = Segmenter(k=3).fit(features.head(20))
    assert small.k_ == 2 and small.profiles_.customers.sum() == 20
    assert small.notes_ == ["2 segments instead of k = 3: 20 customers are too few for more (at least 10 per segment)."]
    with pytest.raises(LoyaltyLabError, match="19 customers are too few for k = 3: at least 20"):
        Segmenter(k=3).fit(features.head(19))
    with pytest.warns(UserWarning, match="product_views, push_opens are the same for every customer"):
        Segmenter(k=3, groups=("engagement",)).fit(features)
    assert len(features) == 2002  # the sample's 2,000 people, merged into 2,002 customers
    with pytest.raises(LoyaltyLabError, match=r"the promotions features \(promo_share, discount_depth\) have the same "
                                              "value for all 2,002 customers, so nothing tells them apart"):
        Segmenter(k=2, groups=("promotions",)).fit(features.assign(promo_share=0.0, discount_depth=0.0))
    with pytest.raises(LoyaltyLabError, match="unknown feature groups taste"):
        Segmenter(groups=("taste",)).fit(features)
    with pytest.raises(LoyaltyLabError, match="method 'dbscan'"):
        Segmenter("dbscan")


def test_lookalikes_find_hidden_seeds(features):
    look = Lookalikes(features)
    champions = features.index[(features.total_spend > features.total_spend.quantile(0.8)) & (features.recency_days < 60)]
    classifier, knn = look.recall(champions, "classifier"), look.recall(champions, "knn")
    assert classifier["recall"] > 0.6 and knn["recall"] > 2 * knn["random"]
    ranking = look.rank(champions, "classifier")
    assert not ranking.index.isin(champions).any() and ranking.is_monotonic_decreasing
    near = look.similar_to(champions[0], 5)
    assert champions[0] not in near.index and near.is_monotonic_increasing and len(near) == 5
    with pytest.raises(LoyaltyLabError, match="1 seeds are not among the customers, e.g. nobody"):
        look.rank(["nobody", champions[0]])


def test_missing_interaction_data_is_zero_and_counted(features):
    # customers never e-mailed have no open rate: 0, counted; customers with no web visits have 0 visits
    no_email = features.attrs["missing_rates"]["email_open_rate"]
    assert 0 < no_email < len(features) and (features.email_open_rate == 0).sum() >= no_email
    assert not features.isna().any().any()


@pytest.mark.parametrize("k", [3, 4, "auto"])
def test_customers_alike_to_a_billionth_make_fewer_segments_not_a_key_error(k):
    "Two groups of 100 customers, three of them a billionth apart: it raised KeyError: 3 in _profile for k = 4."
    a = np.r_[np.zeros(100), np.ones(100)]
    a[:3] += 1e-9 * np.arange(1, 4)
    features = pd.DataFrame({"cat_a": a, "cat_b": 1 - a, "total_spend": 10.0}, index=[f"c{i}" for i in range(200)])
    with pytest.warns(UserWarning, match="2 segments instead of k = "):
        fitted = Segmenter(k=k).fit(features)
    assert fitted.k_ == 2 and sorted(fitted.profiles_.customers) == [100, 100] and len(fitted.names_) == 2
    wanted = "k = 3…8" if k == "auto" else f"k = {k}"
    assert fitted.notes_ == [f"2 segments instead of {wanted}: the basket and promotions features (cat_a, cat_b) take "
                             "only 2 distinct values across 200 customers."]
    assert (fitted.assign(features) == fitted.labels_).all()

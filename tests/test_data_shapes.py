"""Every analysis the report uses survives every data shape (issue 20, point 1): one category, one store, one
channel, no ledger, no interactions, no campaigns, a few hundred customers, one-time buyers only, a history shorter
than the migration window, a single month. Each runs, or says in one plain sentence what it could not do and why
(a LoyaltyLabError, a `note`), never a KeyError or IndexError. The shops come from the generator's shape options;
the order-line analyses run on DataFrames, the warehouse ones on two small shops and on CDNOW. About 45 s."""
import functools
import re
import warnings

import numpy as np
import pandas as pd
import pytest

from loyalty_lab import LoyaltyLabError, load_settings, resolve_customers
from loyalty_lab.affinity import affinity_by_segment, customer_affinities
from loyalty_lab.lifecycle import (cohort_retention, contact_calendar, lifecycle_stages, new_vs_existing,
                                   peak_weekday)
from loyalty_lab.rfm import RFM, concentration, segment_migration
from loyalty_lab.segments import Segmenter, behaviour_features
from loyalty_lab.summary import summarize
from loyalty_lab.synth import generate
from loyalty_lab.view360 import customer_360
from loyalty_lab.warehouse import Warehouse

AS_OF, COMPARE_TO = "2024-06-30", "2024-03-31"
SHAPES = {  # SynthConfig options of each shape (300 customers unless said)
    "one category": dict(categories=1),
    "one store": dict(stores=1),
    "one channel": dict(channels=1),
    "no campaigns": dict(campaigns=0),
    "150 customers": dict(customers=150),
    "one-time buyers": dict(one_time_buyers=True),
    "history shorter than the migration window": dict(start="2024-04-15"),
    "one month": dict(start="2024-06-01"),
}


def order_lines(**options) -> pd.DataFrame:
    "The generator's order lines of a shop as customer lines (one customer per source record, signed amount)."
    lines = generate(customers=options.pop("customers", 300), seed=7, **options).table("order_lines")
    for c in ("source_system", "source_customer_id", "channel", "store_id", "product_id", "category", "promo_type"):
        lines[c] = lines[c].astype(str)
    return lines.assign(customer_id=lines.source_system + ":" + lines.source_customer_id,
                        amount=lines.quantity * lines.unit_price - lines.discount * np.sign(lines.quantity))


@functools.cache
def analysed(shape: str) -> dict:
    "The order-line analyses of the report on one shape (each shape analysed once)."
    lines = order_lines(**SHAPES[shape])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        customers = summarize(lines, AS_OF)
        scored = RFM().fit_transform(customers)
        stages = lifecycle_stages(customers)
        out = dict(shape=shape, lines=lines, customers=customers, scored=scored, stages=stages,
                   calendar=contact_calendar(stages, peak_weekday(lines, AS_OF)),
                   versus=new_vs_existing(lines, AS_OF, 90), cohorts=cohort_retention(lines, AS_OF),
                   migration=segment_migration(lines, COMPARE_TO, AS_OF, RFM()),
                   concentration=concentration(customers.total_spend))
    out["warnings"] = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    return out


@pytest.fixture(params=list(SHAPES))
def shop(request):
    return analysed(request.param)


def test_every_order_line_analysis_runs_and_counts_every_buyer(shop):
    buyers = shop["lines"][shop["lines"].quantity > 0].customer_id.nunique()
    assert len(shop["customers"]) == len(shop["scored"]) == len(shop["stages"]) == buyers
    assert not shop["scored"].segment.isin(["Unclassified"]).any()
    assert shop["concentration"]["customers"] == buyers and 0 <= shop["concentration"]["gini"] < 1
    versus = shop["versus"]
    assert versus.loc["customers"].sum() == buyers  # every buyer is new or existing; a group nobody is in counts 0
    assert versus.loc["customers"].notna().all() and versus.loc["active_share"].dropna().between(0, 1).all()
    assert set(shop["calendar"].stage) <= {"new", "active", "at risk", "lapsed"}
    counts = shop["migration"].counts
    assert counts.to_numpy().sum() == buyers and counts.index[0] == "new"


def test_one_time_buyers_are_never_active_and_nobody_comes_back():
    shop = analysed("one-time buyers")
    stages, cohorts, versus = shop["stages"], shop["cohorts"], shop["versus"]
    assert (shop["customers"].frequency == 0).all()
    assert stages.stage.value_counts()[["active", "at risk"]].sum() == 0 and stages.usual_gap_days.isna().all()
    # RFM says in words that F cannot rank anybody
    assert any(re.match(r"RFM: all \d+ customers share one value of F, so quantiles cannot rank them", w)
               for w in shop["warnings"])
    # it raised nothing but showed only month 0: now every month up to as_of is a column, at 0 %
    assert list(cohorts.columns[:3]) == ["customers", 0, 1] and cohorts.shape == (18, 19)
    assert (cohorts[0] == 1).all() and cohorts.drop(columns=["customers", 0]).fillna(0).eq(0).all().all()
    # existing customers bought nothing in the last 90 days: an active share of 0, not NaN
    assert versus.loc["active_share", "existing"] == 0 and pd.isna(versus.loc["repeat_rate", "existing"])


def test_a_history_within_one_month_gives_an_empty_cohort_table_with_a_reason(shop):
    cohorts = shop["cohorts"]
    if shop["shape"] != "one month":
        assert not cohorts.empty and "note" not in cohorts.attrs and (cohorts[0] == 1).all()
        return
    assert cohorts.empty and cohorts.attrs["note"] == (
        "Every purchase up to 2024-06-30 falls in one calendar month (2024-06), so no cohort can be followed into a "
        "later month; retention needs purchases in at least two months.")
    assert (shop["stages"].stage == "new").all()
    versus = shop["versus"]  # everybody is new: the existing column counts 0 customers, not NaN
    assert versus.loc["customers", "existing"] == 0 and versus.loc["customers", "new"] == len(shop["customers"])


def test_compare_to_before_the_first_purchase_makes_everybody_new_with_a_note(shop):
    "It raised 'RFM fit: the summary has no customers' (the report lost its migration section)."
    migration = shop["migration"]
    first = shop["lines"].ts.min()
    if first <= pd.Timestamp(COMPARE_TO):
        assert migration.note == "" and len(migration.counts) > 1
        return
    assert list(migration.counts.index) == ["new"] and (migration.shares.loc["new"].sum() == pytest.approx(1))
    assert migration.note == ("No customer had bought by 2024-03-31, so every customer is new and nobody moved between "
                              "segments; compare with a date after the first purchases.")


def test_one_category_one_store_one_channel_are_what_they_say(shop):
    lines = shop["lines"]
    if shop["shape"] == "one category":
        assert set(lines.category) == {"dairy"}
    if shop["shape"] == "one store":
        assert lines[lines.channel == "store"].store_id.nunique() == 1
    if shop["shape"] == "one channel":
        assert set(lines.channel) == {"store"} and set(shop["versus"].index) >= {"channel share: store"}
        assert not any(i.startswith("channel share: web") for i in shop["versus"].index)


# ---- the warehouse analyses: an orders-only shop (one category, one channel, one-time buyers) and a shop with
# profiles but no ledger, interactions or campaigns

def _warehouse(root, newcomer: bool = False, **options):
    "150 generated customers; `newcomer`: plus a profile of somebody who has not bought anything yet."
    programme = generate(customers=150, seed=7, **options)
    settings = load_settings(flags={"warehouse.path": str(root / "shop.duckdb"), "run.as_of": AS_OF}, env={})
    with Warehouse(settings.warehouse.path, timezone=settings.locale.timezone) as wh:
        for name, table in programme.tables.items():
            frame = table.to_pandas()
            if name == "profiles" and newcomer:
                frame = pd.concat([frame, frame.iloc[[0]].assign(
                    source_customer_id="NEW-1", first_name="Nadia", last_name="Newcomer", email="", phone="",
                    birth_date="", address="", postcode="", loyalty_card_number="")], ignore_index=True)
            wh.ingest(name, frame, source_name="synth")
    resolve_customers(settings=settings)
    return settings


@pytest.fixture(scope="module")
def orders_only(tmp_path_factory):
    return _warehouse(tmp_path_factory.mktemp("orders_only"), tables=("order_lines",), categories=1, channels=2,
                      one_time_buyers=True)


@pytest.fixture(scope="module")
def no_ledger(tmp_path_factory):
    return _warehouse(tmp_path_factory.mktemp("no_ledger"), newcomer=True, tables=("profiles", "order_lines"),
                      campaigns=0)


def test_one_category_shop_gets_fewer_clusters_with_the_reason_and_no_affinities(orders_only):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        features = behaviour_features(settings=orders_only)
    assert set(features.cat_dairy) == {1.0} and len(features) == 150
    # the default groups: one category and promotions drawn per line: clusters on the promotions
    with pytest.warns(UserWarning, match="cat_dairy, categories_bought are the same for every customer"):
        by_promotions = Segmenter(seed=42).fit(features)
    assert 2 <= by_promotions.k_ <= 8 and by_promotions.profiles_.customers.sum() == 150
    # one order each in one of two channels: two distinct customers, so two segments whatever k was asked
    distinct = len(features[["channel_store", "channel_web"]].drop_duplicates())
    for k in ("auto", 5):
        with pytest.warns(UserWarning, match="segments: 2 segments instead of k = "):
            channels = Segmenter(k=k, groups=("channels",), seed=42).fit(features)
        assert channels.k_ == distinct == 2 and len(channels.profiles_) == 2
        assert channels.notes_ == [f"2 segments instead of k = {'3…8' if k == 'auto' else k}: the channels features "
                                   "(channel_store, channel_web) take only 2 distinct values across 150 customers."]
    with pytest.raises(LoyaltyLabError, match=r"affinity: every order line up to 2024-06-30 is in the one category "
                                              r"'dairy': category affinities need order lines in several categories"):
        customer_affinities(settings=orders_only)
    view = customer_360(settings=orders_only, as_of=AS_OF)
    assert len(view) == 150 and (view.orders == 1).all()


def test_no_ledger_no_interactions_no_campaigns(no_ledger):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        features = behaviour_features(settings=no_ledger)
    # what is not loaded is zero for everybody (and counted as missing), never NaN
    assert not features.isna().any().any()
    assert (features[["points_earned", "rewards", "web_visits", "email_open_rate"]] == 0).all().all()
    assert features.attrs["missing_rates"]["email_open_rate"] == len(features)
    segmenter = Segmenter(seed=42).fit(features)
    assert segmenter.profiles_.customers.sum() == len(features) and len(set(segmenter.names_)) == segmenter.k_
    affinities = customer_affinities(settings=no_ledger, k=3)
    assert (affinities.groupby("customer_id").size() == 3).all() and set(features.index) <= set(affinities.customer_id)
    # customers with a profile who had not bought yet get what is popular, and the basis says so
    waiting = affinities[~affinities.customer_id.isin(features.index)]
    assert len(waiting) == 3 and (waiting.basis == "popular overall (no purchase history)").all()  # the newcomer
    liked = affinity_by_segment(affinities, segmenter.labels_)
    assert set(liked.index.get_level_values(0)) == set(segmenter.names_)
    view = customer_360(settings=no_ledger, as_of=AS_OF)
    assert len(view) >= len(features) and view.points_balance.fillna(0).eq(0).all()


def test_cdnow_as_an_orders_only_shop_says_why_it_has_no_clusters(tmp_path):
    """CDNOW loaded as a shop's order lines: one category ('music'), no promotions. It raised KeyError: 2 in the
    report; then a LoyaltyLabError naming only cat_music with 2 distinct values (8 customers who only had $0 lines
    got a music share of 0). Now every customer's share is 1 and the error says nothing tells them apart."""
    from test_orders_only import TZ, cdnow_order_lines
    lines, history = cdnow_order_lines()
    settings = load_settings(flags={"warehouse.path": str(tmp_path / "cdnow.duckdb"), "run.as_of": "1998-06-30",
                                    "locale.timezone": TZ}, env={})
    with Warehouse(settings.warehouse.path, timezone=TZ) as wh:
        wh.ingest("order_lines", lines, source_name="cdnow")
    resolve_customers(settings=settings)
    features = behaviour_features(settings=settings)
    assert len(features) == 2357 and set(features.cat_music) == {1.0}
    with pytest.raises(LoyaltyLabError, match=re.escape(
            "segments: the basket and promotions features (cat_music, categories_bought, promo_share, discount_depth) "
            "have the same value for all 2,357 customers, so nothing tells them apart (e.g. one product category and "
            "no promotions); choose feature groups that differ between customers, e.g. Segmenter(groups=('value',))")):
        Segmenter(k=3, seed=42).fit(features)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        by_value = Segmenter(k=3, groups=("value",), seed=42).fit(features)
    assert by_value.k_ == 3 and by_value.profiles_.customers.sum() == 2357 and by_value.notes_ == []


@pytest.mark.parametrize("rows, k, expected", [
    (25, "auto", "2 segments instead of k = 3…8: 25 customers are too few for more (at least 10 per segment)."),
    (45, 5, "4 segments instead of k = 5: 45 customers are too few for more (at least 10 per segment)."),
    (200, 4, "3 segments instead of k = 4: the basket features (cat_a, cat_b) take only 3 distinct values across "
             "200 customers."),
])
def test_segmenter_on_tiny_or_repetitive_data_makes_fewer_segments_and_says_why(rows, k, expected):
    rng = np.random.default_rng(1)
    share = rng.random(rows) if rows < 200 else np.repeat([0.0, 0.5, 1.0], [70, 70, 60])
    features = pd.DataFrame({"cat_a": share, "cat_b": 1 - share}, index=[f"c{i}" for i in range(rows)])
    with pytest.warns(UserWarning, match=re.escape(f"segments: {expected}")):
        fitted = Segmenter(k=k, groups=("basket",)).fit(features)
    assert fitted.notes_ == [expected] and fitted.k_ == int(expected.split()[0])
    assert fitted.profiles_.customers.sum() == rows and len(fitted.names_) == fitted.k_


@pytest.mark.parametrize("features, message", [
    (pd.DataFrame({"cat_a": [1.0] * 50}), r"the basket features \(cat_a\) have the same value for all 50 customers"),
    (pd.DataFrame({"cat_a": np.linspace(0, 1, 19)}), "19 customers are too few for k = auto: at least 20"),
])
def test_segmenter_refuses_in_words_when_nothing_can_be_clustered(features, message):
    with pytest.raises(LoyaltyLabError, match=message):
        Segmenter(groups=("basket",)).fit(features)

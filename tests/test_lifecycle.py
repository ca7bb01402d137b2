"""Lifecycle stages from each customer's own rhythm, the contact calendar, new vs existing customers, cohorts."""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from loyalty_lab import LoyaltyLabError
from loyalty_lab.lifecycle import (LifecycleRules, cohort_retention, contact_calendar, lifecycle_stages,
                                   new_vs_existing, peak_weekday)
from loyalty_lab.summary import summarize

AS_OF = pd.Timestamp("2024-03-01")


def orders(customer, days_ago, amount=20.0, **extra):
    return [dict(customer_id=customer, order_id=f"{customer}{i}", ts=AS_OF - pd.Timedelta(days=d), amount=amount, **extra)
            for i, d in enumerate(days_ago)]


def population():
    "Many steady weekly and monthly shoppers, so the population's typical gap is well defined, plus test cases."
    rows = []
    for i in range(20):
        rows += orders(f"weekly{i}", range(3, 90, 7))
        rows += orders(f"monthly{i}", range(10, 300, 30))
    rows += orders("weekly_gone", range(40, 130, 7))  # weekly until 40 days ago: far overdue
    rows += orders("monthly_late", [50, 80, 110, 140, 170])  # monthly, 50 days since: overdue ≈ 1.7 → at risk
    rows += orders("first_timer", [2]) + orders("one_off", [45]) + orders("long_gone", [500])
    return pd.DataFrame(rows)


def test_stages_follow_each_customers_rhythm():
    stages = lifecycle_stages(summarize(population(), "2024-03-01"))
    s = stages.stage.astype(str)
    assert (s.filter(like="weekly", axis=0).drop("weekly_gone") == "active").all()
    assert (s.filter(like="monthly", axis=0).drop("monthly_late") == "active").all()
    # 40 days is nothing for a monthly buyer but ~6 weekly gaps for a weekly one
    assert s["weekly_gone"] in ("lapsed", "churned") and s["monthly_late"] == "at risk"
    assert (s["first_timer"], s["one_off"], s["long_gone"]) == ("new", "lapsed", "churned")
    assert stages.attrs["typical_gap_days"] == pytest.approx(np.median([7] * 20 + [30] * 20 + [7, 30]))


def test_rules_from_settings_change_the_stages():
    summary = summarize(population(), "2024-03-01")
    strict = lifecycle_stages(summary, LifecycleRules(at_risk_overdue=1.05, lapsed_overdue=1.1, churned_overdue=1.2))
    assert (strict.stage == "churned").sum() > (lifecycle_stages(summary).stage == "churned").sum()
    late = lifecycle_stages(summary, LifecycleRules(new_days=60))
    assert late.stage["one_off"] == "new"


def test_contact_calendar_lists_each_moment_once():
    lines = population()
    stages = lifecycle_stages(summarize(lines, "2024-03-01"))
    cal = contact_calendar(stages, peak_weekday(lines, "2024-03-01"), days=7)
    assert "first_timer" in cal.index and str(cal.loc["first_timer", "contact_on"]) == "2024-03-02"
    assert "long_gone" not in cal.index and "one_off" not in cal.index  # churned; lapsed two weeks ago
    dates = pd.to_datetime(cal.contact_on.astype(str))
    assert dates.between("2024-03-02", "2024-03-08").all() and cal.message.notna().all()
    # weekly shoppers are contacted on their own weekday
    weekly = cal.filter(like="weekly", axis=0)
    weekdays = peak_weekday(lines, "2024-03-01")
    assert (dates[weekly.index].dt.day_of_week == weekdays[weekly.index]).all()


def test_new_vs_existing_and_cohorts_on_known_data():
    rows = orders("old", [200, 60, 10], category="food", channel="store", on_promo=False)
    rows += orders("old_quiet", [300], category="toys", channel="web", on_promo=False)
    rows += [dict(customer_id="new", order_id="n1", ts=AS_OF - pd.Timedelta(days=5), amount=30.0, category=c,
                  channel="app", on_promo=c == "toys") for c in ("food", "toys")]
    lines = pd.DataFrame(rows)
    table = new_vs_existing(lines, "2024-03-01", new_days=90)
    assert table.loc["customers"].tolist() == [1, 2] and table.loc["active_share"].tolist() == [1.0, 0.5]
    assert table.loc["average_basket", "new"] == 60 and table.loc["categories_per_order", "new"] == 2
    assert table.loc["promo_share", "new"] == 0.5 and table.loc["repeat_rate", "existing"] == 1.0
    assert table.loc["channel share: app", "new"] == 1 and table.loc["channel share: store", "existing"] == 1
    retention = cohort_retention(lines, "2024-03-01")
    assert retention.loc["2023-05", "customers"] == 1 and retention.loc["2023-08", 5] == 1.0
    assert np.isnan(retention.loc["2024-02", 5]) and retention.loc["2023-05", 5] == 0  # not observed yet vs none


def test_bad_input():
    with pytest.raises(LoyaltyLabError, match="needs a customer summary"):
        lifecycle_stages(pd.DataFrame({"purchase_days": [1]}))
    with pytest.raises(LoyaltyLabError, match="missing: category, channel, on_promo"):
        new_vs_existing(pd.DataFrame(orders("a", [1])), "2024-03-01")
    assert cohort_retention(pd.DataFrame(orders("a", [1])), "2023-01-01").empty  # an empty period


def test_stages_track_who_is_really_still_a_customer():
    "On the synthetic programme the generator knows who dropped out: the stages must sort them."
    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    lines = pd.read_csv(sample / "order_lines.csv", dtype={"source_customer_id": str}, parse_dates=["ts"])
    profiles = pd.read_csv(sample / "truth" / "profiles.csv", dtype=str)
    alive = pd.read_csv(sample / "truth" / "people.csv").set_index("person_id").alive_at_end
    person = profiles.set_index(profiles.source_system + ":" + profiles.source_customer_id).person_id
    lines["customer_id"] = (lines.source_system + ":" + lines.source_customer_id).map(person)
    lines["amount"] = lines.quantity * lines.unit_price - lines.discount.fillna(0)
    stages = lifecycle_stages(summarize(lines, "2024-06-30"))
    share_alive = alive.reindex(stages.index).groupby(stages.stage, observed=True).mean()
    ordered = share_alive[["active", "at risk", "lapsed", "churned"]]
    assert ordered.is_monotonic_decreasing and ordered["active"] >= 0.85 and ordered["churned"] <= 0.10, ordered


def test_lifecycle_stages_name_the_argument_and_what_it_expects():
    "lifecycle_stages([...]) raised AttributeError: 'list' object has no attribute 'columns'."
    with pytest.raises(LoyaltyLabError, match="lifecycle_stages: summary must be the customer summary DataFrame "
                                              "from `summarize`, not list"):
        lifecycle_stages([1, 2])
    summary = summarize(pd.DataFrame({"customer_id": ["a"], "ts": [pd.Timestamp("2024-01-05")], "amount": [5.0]}),
                        "2024-02-01")
    with pytest.raises(LoyaltyLabError, match="rules must be LifecycleRules .*, not dict"):
        lifecycle_stages(summary, {"new_days": 30})

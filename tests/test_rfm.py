"""RFM scores and segments (hand-computed cells, ties, breakpoints, custom maps), migration and concentration."""
import re

import numpy as np
import pandas as pd
import pytest
from loyalty_lab import LoyaltyLabError
from loyalty_lab.config import load_settings
from loyalty_lab.rfm import RFM, concentration, segment_migration, segment_table


def summary(rows: dict) -> pd.DataFrame:
    "rows: customer → (days since last purchase, purchase days, total spend)"
    d, f, m = zip(*rows.values())
    return pd.DataFrame({"days_since_last_purchase": d, "purchase_days": f, "total_spend": np.array(m, float)},
                        index=list(rows))


def test_hand_computed_cells_and_segments():
    s = summary({"a": (1, 5, 500), "b": (10, 4, 400), "c": (20, 3, 300), "d": (30, 2, 200), "e": (40, 1, 100)})
    out = RFM().fit_transform(s)
    assert out.cell.tolist() == ["555", "444", "333", "222", "111"]
    assert out.FM.tolist() == [5, 4, 3, 2, 1]
    assert out.segment.tolist() == ["Champions", "Champions", "Loyal Customers", "Hibernating", "Lost"]
    assert out.action["a"].startswith("Reward them")


def test_ties_are_never_split():
    s = summary({c: (7, 1, 50) for c in "abc"} | {"d": (1, 3, 80), "e": (2, 2, 70), "f": (3, 2, 60),
                                                  "g": (20, 1, 30), "h": (30, 1, 20), "i": (40, 1, 10), "j": (100, 1, 5)})
    out = RFM().fit_transform(s)
    assert out.loc[list("abc"), ["R", "F", "M"]].nunique().eq(1).all()
    assert out.loc["d", "R"] > out.loc["a", "R"] > out.loc["j", "R"]  # more recent = higher R
    # 6 of 10 customers bought on one day: F's thresholds coincide, all six share F = 1, levels stay empty
    assert (out.F[s.purchase_days == 1] == 1).all() and out.F.nunique() < 5


@pytest.mark.filterwarnings("ignore:RFM. all 5 customers share one value of M")  # spend is the same on purpose
def test_explicit_breakpoints_and_other_bin_counts():
    s = summary({"a": (10, 1, 10), "b": (60, 2, 10), "c": (120, 3, 10), "d": (200, 6, 10), "e": (400, 1, 10)})
    out = RFM(breakpoints={"R": [30, 90, 180, 365]}).fit_transform(s)
    assert out.R.tolist() == [5, 4, 3, 2, 1]
    three = RFM(bins=3).fit_transform(s)
    assert three.R.between(1, 3).all() and not (three.segment == "Unclassified").any()


def test_customers_without_purchases_are_kept_and_named():
    s = summary({"a": (1, 2, 50), "b": (5, 1, 20), "refund_only": (np.nan, 0, -30)})
    out = RFM().fit_transform(s)
    assert out.segment["refund_only"] == "No purchases" and pd.isna(out.R["refund_only"]) and len(out) == 3


def test_custom_segment_map_from_settings(tmp_path):
    f = tmp_path / "settings.ini"
    f.write_text("[rfm]\nsegment_map = mine\n[segment_map.mine]\n"
                 "2 = Everyone Recent | R 3-5 | bought lately | thank them\n"
                 "1 = VIP | R 5, FM 5 | best of the best | call them\n")
    s = load_settings(f, env={})
    out = RFM.from_settings(s).fit_transform(summary({"a": (1, 9, 900), "b": (2, 1, 10), "c": (300, 1, 5),
                                                      "d": (3, 2, 20), "e": (250, 2, 15)}))
    assert out.segment["a"] == "VIP"  # rule 1 is tried first, although written second
    assert out.segment["b"] == "Everyone Recent" and out.segment["c"] == "Unclassified"
    assert segment_table(RFM.from_settings(s).segments).segment.tolist() == ["VIP", "Everyone Recent", "Unclassified", "No purchases"]


@pytest.mark.parametrize("lines, message", [
    ("1 = VIP | R 6 | x | y", "settings.ini [segment_map.mine] 1: condition 'R 6' is not like 'R 4-5'"),
    ("1 = VIP | R 4-5", "expected 'Name | conditions | description | action'"),
    ("first = VIP | R 5 | x | y", "keys must be numbers"),
])
def test_bad_custom_map_names_where(tmp_path, lines, message):
    f = tmp_path / "settings.ini"
    f.write_text(f"[rfm]\nsegment_map = mine\n[segment_map.mine]\n{lines}\n")
    with pytest.raises(LoyaltyLabError, match=re.escape(message)):
        RFM.from_settings(load_settings(f, env={}))


def test_bad_rfm_arguments():
    with pytest.raises(LoyaltyLabError, match="segment map 'standard12' is neither built in"):
        RFM(segments="standard12")
    with pytest.raises(LoyaltyLabError, match="need 4 increasing values for 5 bins"):
        RFM(breakpoints={"R": [30, 20, 10, 5]})
    with pytest.raises(LoyaltyLabError, match="RFM bins = 1"):
        RFM(bins=1)
    with pytest.raises(LoyaltyLabError, match="columns missing: days_since_last_purchase"):
        RFM().fit(pd.DataFrame({"purchase_days": [1]}))


@pytest.mark.filterwarnings("ignore:RFM. all 10 customers share one value")  # one purchase day each at the first date
def test_migration_freezes_thresholds_and_counts_new_and_churned():
    def order(c, o, day, amount=10.0):
        return (c, o, pd.Timestamp(day), amount)
    rows = [order(f"old{i}", f"o{i}", "2023-01-10", 10.0 * (i + 1)) for i in range(10)]
    rows += [order("old9", "o99", "2024-01-20", 500.0)]  # the best customer comes back
    rows += [order("fresh", "n1", "2024-01-25")]  # a new customer after the first date
    lines = pd.DataFrame(rows, columns=["customer_id", "order_id", "ts", "amount"])
    m = segment_migration(lines, "2023-01-31", "2024-01-31", churn_days=365)
    assert m.counts.loc["new"].sum() == 1 and m.counts.to_numpy().sum() == 11
    # everyone else bought once, more than a year before the second date: churned
    assert m.counts["churned"].sum() == 9
    back = m.counts.loc[:, m.counts.columns != "churned"].drop(index="new").sum().sum()
    assert back == 1 and np.allclose(m.shares[m.counts.sum(axis=1) > 0].sum(axis=1), 1)
    with pytest.raises(LoyaltyLabError, match="must be after from_as_of"):
        segment_migration(lines, "2024-01-31", "2023-01-31")


def test_concentration_known_answers():
    c = concentration(pd.Series(np.arange(1.0, 11.0)))
    assert c["top_customers"] == 2 and c["top_revenue_share"] == pytest.approx(19 / 55)
    # Gini of 1..n = (n - 1) / (3n) for n = 10 → 0.3
    assert c["gini"] == pytest.approx(0.3)
    assert c["lorenz"].revenue_share.iloc[-1] == pytest.approx(1) and c["lorenz"].revenue_share.is_monotonic_increasing
    neg = concentration(pd.Series([-5.0, 0, 10]))
    assert neg["negative_customers"] == 1 and neg["top_revenue_share"] == 1
    with pytest.raises(LoyaltyLabError, match="no customer with positive spend"):
        concentration(pd.Series([0.0, -1.0]))


def test_one_customer_and_identical_customers_are_defined():
    with pytest.warns(UserWarning, match="share one value of R, F, M"):
        solo = RFM().fit_transform(summary({"solo": (5, 3, 100)}))
    assert solo.cell["solo"] == "111" and solo.segment["solo"] == "Lost"
    with pytest.warns(UserWarning, match="all 4 customers share one value"):
        same = RFM().fit_transform(summary({c: (5, 3, 100) for c in "abcd"}))
    assert same.cell.nunique() == 1 and same.segment.nunique() == 1
    # breakpoints rank even a single customer, without a warning
    fixed = RFM(breakpoints={"R": [7, 30, 90, 365], "F": [1, 2, 4, 8], "M": [50, 100, 200, 500]}).fit_transform(
        summary({"solo": (5, 3, 100)}))
    assert fixed.cell["solo"] == "532"


def test_churned_state_with_a_nullable_integer_column():
    "Issue 19: the report failed with TypeError: Invalid value 'inf' for dtype 'Int64' (customers who never bought)."
    from loyalty_lab.rfm import _state
    scored = pd.DataFrame({"segment": ["Champions", "Lost", "No purchases"],
                           "days_since_last_purchase": pd.array([3, 400, pd.NA], dtype="Int64")})
    assert _state(scored, 365).tolist() == ["Champions", "churned", "churned"]

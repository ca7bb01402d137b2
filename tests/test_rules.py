"""Rule segments over the sample's 360° view: definitions from a file, evaluated in the engine, checked
against the same conditions written in pandas; bad definitions fail with the available columns."""
import warnings

import pandas as pd
import pytest

from loyalty_lab import LoyaltyLabError, customer_360
from loyalty_lab.rules import evaluate_segments, read_segment_rules

from lab_helpers import merged_lab

DEFINITIONS = """
segments:
  - name: Young women in Novi Sad on promotion
    description: women 25-35 in Novi Sad who often buy on promotion
    where: gender == 'f' and 25 <= age <= 35 and city == 'Novi Sad' and promo_share >= 0.3
  - name: Big baskets, no app
    where: aov > 5000 and app_sessions == 0
  - name: Baby buyers outside Beograd
    where: top_category == 'baby' and city not in ['Beograd']
  - name: Nobody
    where: age < 20 and age > 60
"""


@pytest.fixture(scope="module")
def view(tmp_path_factory):
    s = merged_lab(tmp_path_factory.mktemp("rules"))
    return customer_360(settings=s), s.file.parent


def test_segments_from_a_file_equal_the_same_conditions_in_pandas(view):
    frame, root = view
    (root / "segments.yaml").write_text(DEFINITIONS, encoding="utf-8")
    rules = read_segment_rules(root / "segments.yaml")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = evaluate_segments(frame, rules)
    f = frame.set_index("customer_key")
    expected = {
        "Young women in Novi Sad on promotion": (f.gender == "f") & f.age.between(25, 35) & (f.city == "Novi Sad") & (f.promo_share >= 0.3),
        "Big baskets, no app": (f.aov > 5000) & (f.app_sessions == 0),
        "Baby buyers outside Beograd": (f.top_category == "baby") & (f.city != "Beograd") & f.city.notna(),
        "Nobody": pd.Series(False, index=f.index)}
    for name, mask in expected.items():
        truth = set(f.index[mask.fillna(False).astype(bool)])
        assert set(result.member_list(name)) == truth, name
    assert 0 < result.summary.loc["Young women in Novi Sad on promotion", "customers"] < 100
    assert result.summary.loc["Baby buyers outside Beograd", "revenue"] == pytest.approx(
        f.net_revenue[expected["Baby buyers outside Beograd"]].sum())
    both = len(set(result.member_list("Big baskets, no app")) & set(result.member_list("Baby buyers outside Beograd")))
    assert result.overlap.loc["Big baskets, no app", "Baby buyers outside Beograd"] == pytest.approx(
        both / result.summary.loc["Big baskets, no app", "customers"])
    assert any("no customer: Nobody" in str(w.message) for w in caught)
    assert result.summary.loc["Young women in Novi Sad on promotion", "description"].startswith("women 25-35")
    assert result.members.index.name == "customer_key" and "@" not in "".join(result.members.index)


def test_bad_definitions_say_what_is_wrong(view, tmp_path):
    frame, _ = view
    bad = tmp_path / "bad.yaml"
    bad.write_text("segments:\n  - name: Baskets\n    where: basket_value > 5000\n", encoding="utf-8")
    with pytest.raises(LoyaltyLabError, match="segment 'Baskets': no column 'basket_value'.*the columns are: customer_key, "):
        evaluate_segments(frame, read_segment_rules(bad))
    bad.write_text("segments:\n  - name: Odd\n    where: age >> 3\n", encoding="utf-8")
    with pytest.raises(LoyaltyLabError, match="`age >> 3` is not allowed"):
        evaluate_segments(frame, read_segment_rules(bad))
    bad.write_text("segments:\n  - name: A\n    where: age > 3\n  - name: A\n    where: age > 4\n", encoding="utf-8")
    with pytest.raises(LoyaltyLabError, match="the name 'A' is used twice"):
        read_segment_rules(bad)
    bad.write_text("segments:\n  - name: A\n    wher: age > 3\n", encoding="utf-8")
    with pytest.raises(LoyaltyLabError, match="segment 1 needs a name and a where condition"):
        read_segment_rules(bad)


def test_a_condition_nested_thousands_deep_is_refused_clearly():
    "Issue 19: 5,000 nested `not` ended in a RecursionError."
    import ibis
    from loyalty_lab.rules import rule_condition
    table = ibis.table({"age": "int64"}, name="view")
    with pytest.raises(LoyaltyLabError, match="segment 'deep': .*nested too deeply"):
        rule_condition("not " * 5000 + "age > 3", table, "deep")

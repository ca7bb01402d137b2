"""Customer summary and calibration/holdout split: CDNOW against lifetimes and the BG/NBD paper, hand-computed
cases, planted future rows, edge cases and bad input."""
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter
from lifetimes.utils import summary_data_from_transaction_data
from loyalty_lab import LoyaltyLabError
from loyalty_lab.profiles import MergeOptions, resolve_customers
from loyalty_lab.summary import calibration_and_holdout, cdnow, customer_lines, summarize
from loyalty_lab.warehouse import Warehouse

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "sample"


def lines(rows):
    "rows: (customer, order, 'YYYY-MM-DD HH:MM', amount)"
    c, o, t, a = zip(*rows)
    return pd.DataFrame({"customer_id": c, "order_id": o, "ts": pd.to_datetime(t), "amount": np.array(a, float)})


@pytest.mark.parametrize("unit, multiplier", [("D", 1), ("W", 7)])
def test_cdnow_master_summary_equals_lifetimes(unit, multiplier):
    master = cdnow(sample=False)
    ours = summarize(master, "1998-06-30", unit)
    theirs = summary_data_from_transaction_data(master, "customer_id", "ts", "amount", observation_period_end="1998-06-30",
                                                freq="D", freq_multiplier=multiplier).sort_index()
    assert len(ours) == 23_570 and list(ours.index) == list(theirs.index)
    for c in ("frequency", "recency", "T", "monetary_value"):
        np.testing.assert_allclose(ours[c].to_numpy(), theirs[c].to_numpy(), rtol=0, atol=1e-9, err_msg=c)
    assert ours.orders.sum() == len(master) and ours.total_spend.sum() == pytest.approx(master.amount.sum())


def test_calibration_split_reproduces_the_bgnbd_paper():
    split = calibration_and_holdout(cdnow(), "1997-09-30", "1998-06-30", "W")
    assert len(split) == 2_357 and (split.frequency_cal == 0).sum() == 1_411
    assert (split.duration_holdout == 39).all() and split.attrs["new_in_holdout"] == 0
    bg = BetaGeoFitter().fit(split.frequency_cal, split.recency_cal, split.T_cal)
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}  # Fader, Hardie & Lee (2005)
    assert {k: f"{bg.params_[k]:.3g}" for k in published} == {k: f"{v:.3g}" for k, v in published.items()}


def test_hand_computed_customer():
    s = summarize(lines([("ana", "o1", "2024-01-02 09:00", 60), ("ana", "o1", "2024-01-02 09:00", 40),
                         ("ana", "o2", "2024-01-02 18:00", 50), ("ana", "o3", "2024-01-09 12:00", 30),
                         ("ana", "r1", "2024-01-10 10:00", -20)]), "2024-01-16")
    ana = s.loc["ana"]
    assert (ana.orders, ana.purchase_days, ana.frequency, ana.recency, ana["T"]) == (3, 2, 1, 7, 14)
    assert (ana.monetary_value, ana.gross_spend, ana.return_orders, ana.returns_value, ana.total_spend, ana.aov) == \
        (30, 180, 1, 20, 160, 60)
    assert ana.first_purchase == pd.Timestamp("2024-01-02 09:00") and ana.last_purchase == pd.Timestamp("2024-01-09 12:00")


def test_future_rows_change_nothing():
    lines_ = pd.read_csv(SAMPLE / "order_lines.csv", dtype={"source_customer_id": str}, parse_dates=["ts"])
    lines_ = pd.DataFrame({"customer_id": lines_.source_system + ":" + lines_.source_customer_id, "order_id": lines_.order_id,
                           "ts": lines_.ts, "amount": lines_.quantity * lines_.unit_price - lines_.discount.fillna(0)})
    as_of, later = "2023-12-31", pd.Timestamp("2024-01-01 00:00:00")
    past = lines_[lines_.ts <= as_of]
    # planted: huge purchases and returns right after as_of, by known and brand-new customers, in known orders
    planted = pd.concat([past.sample(500, random_state=1).assign(ts=later, amount=1e6),
                         past.sample(200, random_state=2).assign(ts=later + pd.Timedelta(days=30), amount=-1e6),
                         past.sample(100, random_state=3).assign(customer_id=lambda d: "future:" + d.customer_id, ts=later)])
    clean, dirty = summarize(past, as_of, "W"), summarize(pd.concat([past, planted]), as_of, "W")
    pd.testing.assert_frame_equal(clean, dirty)
    split_clean = calibration_and_holdout(lines_[lines_.ts <= "2024-03-31 23:59:59"], "2023-09-30", "2024-03-31")
    split_dirty = calibration_and_holdout(pd.concat([lines_, planted.assign(ts=pd.Timestamp("2024-04-01"))]),
                                          "2023-09-30", "2024-03-31")
    pd.testing.assert_frame_equal(split_clean, split_dirty)


def test_edge_cases_have_defined_results():
    s = summarize(lines([("only_returns", "r1", "2024-01-05 10:00", -15), ("once", "o1", "2024-01-03 10:00", 25),
                         ("zero", "o2", "2024-01-04 10:00", 0), ("negative_total", "o3", "2024-01-02 10:00", 10),
                         ("negative_total", "r2", "2024-01-03 10:00", -40)]), "2024-01-10")
    assert s.loc["only_returns"].purchase_days == 0 and s.loc[["only_returns"], ["frequency", "recency", "T"]].isna().all(axis=None)
    assert s.loc["only_returns", "total_spend"] == -15 and s.attrs["customers_without_purchases"] == 1
    assert tuple(s.loc["once", ["frequency", "recency", "T", "monetary_value", "aov"]]) == (0, 0, 7, 0, 25)
    assert s.loc["zero", "purchase_days"] == 1 and s.loc["zero", "total_spend"] == 0
    assert s.loc["negative_total", "total_spend"] == -30 and s.loc["negative_total", "frequency"] == 0
    # an empty period: no rows, the same columns
    empty = summarize(lines([("a", "o1", "2024-02-01 10:00", 5)]), "2024-01-01")
    assert empty.empty and list(empty.columns) == list(s.columns)
    # identical customers get identical rows
    same = summarize(lines([(c, f"{c}{i}", f"2024-01-0{1 + 3 * i} 10:00", 10) for c in "xyz" for i in range(3)]), "2024-01-10")
    assert len(same) == 3 and (same.nunique() == 1).all()
    # without order ids every row is an order (CDNOW); two same-day rows are one purchase day
    no_orders = summarize(lines([("a", "o1", "2024-01-01 10:00", 5), ("a", "o1", "2024-01-01 11:00", 7)]).drop(columns="order_id"),
                          "2024-01-02")
    assert (no_orders.loc["a", "orders"], no_orders.loc["a", "purchase_days"]) == (2, 1)


@pytest.mark.parametrize("call, message", [
    (lambda d: summarize(d.rename(columns={"amount": "value"}), "2024-01-10"),
     "summarize: no column 'amount'; its columns are customer_id, order_id, ts, value"),
    (lambda d: summarize(d.assign(ts=d.ts.astype(str)), "2024-01-10"), "column 'ts' is string, not a timestamp"),
    (lambda d: summarize(d.assign(customer_id=[None, "a"]), "2024-01-10"), "empty values in customer_id (1 lines)"),
    (lambda d: summarize(d, "2024-01-10", "M"), "time_unit = 'M': use 'D' (days) or 'W' (weeks)"),
    (lambda d: summarize(d, None), "as_of is required"),
    (lambda d: summarize(d, "soon"), "as_of = 'soon' is not a date"),
    (lambda d: calibration_and_holdout(d, "2024-01-10", "2024-01-01"), "holdout_end 2024-01-01 must be after calibration_end"),
])
def test_bad_input_is_refused_clearly(call, message):
    with pytest.raises(LoyaltyLabError, match=message.replace("(", r"\(").replace(")", r"\)")):
        call(lines([("a", "o1", "2024-01-01 10:00", 5), ("a", "o2", "2024-01-03 10:00", 7)]))


def test_warehouse_lines_are_attributed_to_merged_customers(tmp_path):
    with Warehouse(tmp_path / "w.duckdb", timezone="Europe/Belgrade") as wh:
        wh.ingest("order_lines", SAMPLE / "order_lines.csv")
        wh.ingest("profiles", SAMPLE / "profiles.csv")
        by_record = summarize(customer_lines(wh), "2024-06-30", timezone="Europe/Belgrade")
        resolve_customers(wh, options=MergeOptions())
        by_customer = summarize(customer_lines(wh), "2024-06-30", timezone="Europe/Belgrade")
        crosswalk = wh.con.table("crosswalk").to_pandas()
    # amounts are what was paid: a return refunds the discounted price (its line repeats the sale's discount)
    raw = pd.read_csv(SAMPLE / "order_lines.csv")
    paid = (raw.quantity * raw.unit_price - raw.discount * np.sign(raw.quantity)).sum()
    assert by_record.total_spend.sum() == pytest.approx(paid)
    # every source record's orders land on its customer; nothing is lost or counted twice
    assert by_customer.orders.sum() == by_record.orders.sum()
    assert by_customer.total_spend.sum() == pytest.approx(by_record.total_spend.sum())
    assert by_customer.index.str.startswith("C").all() and len(by_customer) < len(by_record)
    per_customer = by_record.orders.groupby(crosswalk.set_index("record_id").customer_id).sum()
    assert (by_customer.orders == per_customer[by_customer.index]).all()


def test_days_are_local_days_of_the_given_time_zone():
    two = pd.DataFrame({"customer_id": ["a", "a"], "order_id": ["o1", "o2"], "amount": [10.0, 20.0],
                        "ts": pd.to_datetime(["2024-03-30 22:30", "2024-03-30 23:30"]).tz_localize("UTC")})
    # 23:30 and 00:30 in Belgrade (UTC+1): two days there, one day in UTC; DST begins the next night
    assert summarize(two, "2024-04-02", timezone="Europe/Belgrade").loc["a", "purchase_days"] == 2
    assert summarize(two, "2024-04-02", timezone="UTC").loc["a", "purchase_days"] == 1
    after_dst = two.assign(ts=two.ts + pd.Timedelta(days=1))  # 23:30 UTC on 31 March = 01:30 on 1 April (UTC+2)
    s = summarize(after_dst, "2024-04-02", timezone="Europe/Belgrade")
    assert s.loc["a", "first_purchase"] == pd.Timestamp("2024-03-31 22:30", tz="UTC") and s.loc["a", "frequency"] == 0


@pytest.mark.parametrize("zone", ["Europe/Belgrade", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"])
def test_local_days_match_pandas_across_years_of_offset_changes(zone):
    # one customer per random instant over 12 years (24 DST changes; Lord Howe's are half an hour, Kathmandu
    # is UTC+5:45 and moved from +5:30 in 1986): each customer's last purchase day is the local date pandas gives
    rng = np.random.default_rng(7)
    start = pd.Timestamp("2012-01-01", tz="UTC").value // 10**9
    ts = pd.to_datetime(rng.integers(start, start + 12 * 365 * 86400, 3000), unit="s", utc=True)
    ts = ts.append(pd.DatetimeIndex(["1985-06-01 12:00", "1986-06-01 12:00"], tz="UTC"))
    one = pd.DataFrame({"customer_id": [f"c{i}" for i in range(len(ts))], "ts": ts, "amount": 1.0})
    s = summarize(one, "2024-01-05", timezone=zone, order_id=None)
    expected_days = (pd.Timestamp("2024-01-05").date() - pd.Series(ts.tz_convert(zone).date, index=one.customer_id)).map(lambda d: d.days)
    assert (s.days_since_last_purchase == expected_days[s.index]).all()


@pytest.mark.parametrize("as_of", ["01.02.2024", "02/01/2024", "1 Feb 2024", "20240201"])
def test_as_of_in_a_locale_dependent_order_is_refused(as_of):
    "summarize(as_of='01.02.2024') was accepted (1 February or 2 January, depending on who reads it)."
    lines = pd.DataFrame({"customer_id": ["a"], "ts": [pd.Timestamp("2024-01-01")], "amount": [1.0]})
    with pytest.raises(LoyaltyLabError, match=f"as_of = '{re.escape(as_of)}' is not a date in ISO order: write it "
                                              "year-month-day \\(e.g. '2024-06-30' or '2024-06-30 18:00'\\)"):
        summarize(lines, as_of=as_of)
    assert summarize(lines, as_of="2024-02-01 00:00").attrs["as_of"].startswith("2024-02-01T00:00")

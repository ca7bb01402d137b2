"""Rule segments: 20 definitions evaluated over the 360° view of 1,000,000 customers.

    .venv/bin/python tests/bench/bench_rules.py [customers]

Target (issue 9): 20 segment definitions over 1,000,000 customers in ≤ 10 s. Setup (not timed): a view with the
columns and value ranges of `customer_360` plus the report's results, written as Parquet. Timed: reading the
definitions' conditions into one engine query over the Parquet file and collecting members, summary and
overlap. Baseline from the same run: DuckDB counting the rows of the file by city."""
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from loyalty_lab.rules import RuleSegment, evaluate_segments

RULES = [
    ("Young women in Novi Sad on promo", "gender == 'f' and 25 <= age <= 35 and city == 'Novi Sad' and promo_share >= 0.3"),
    ("Big baskets without the app", "aov > 5000 and app_sessions == 0"),
    ("Baby buyers", "top_category == 'baby'"),
    ("Slipping champions", "segment in ['Champions', 'Loyal Customers'] and stage in ['at risk', 'lapsed']"),
    ("High CLV", "clv > 20000"),
    ("Email engaged", "email_open_rate >= 0.4 and consent_email == true"),
    ("Cart abandoners", "carts_abandoned >= 2 and orders <= 3"),
    ("Points hoarders", "points_balance > 2000 and points_redeemed == 0"),
    ("Gold tier", "tier == 'gold'"),
    ("Web only", "channels == 'web'"),
    ("Seniors", "age >= 65"),
    ("Unknown age", "age == None"),
    ("Beograd regulars", "city == 'Beograd' and orders >= 10"),
    ("Deal seekers", "promo_share > 0.6"),
    ("New this quarter", "days_since_last_purchase <= 90 and orders == 1"),
    ("Lapsed big spenders", "net_revenue > 50000 and days_since_last_purchase > 180"),
    ("Men in Niš", "gender == 'm' and city == 'Niš'"),
    ("App fans", "app_sessions >= 20"),
    ("Not in the big cities", "city not in ['Beograd', 'Novi Sad']"),
    ("Champions without consent", "segment == 'Champions' and not (consent_email or consent_sms)"),
]


def fake_view(n: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    pick = lambda values, p=None: rng.choice(np.array(values, dtype=object), n, p=p)
    age = rng.integers(18, 90, n).astype(float)
    age[rng.random(n) < 0.1] = np.nan
    orders = rng.geometric(0.15, n)
    return pd.DataFrame({
        "customer_key": [f"{i:016x}" for i in range(n)], "gender": pick(["f", "m", None], [0.55, 0.4, 0.05]),
        "age": age, "city": pick(["Beograd", "Novi Sad", "Niš", "Kragujevac", "Subotica", "Zrenjanin"]),
        "orders": orders, "aov": rng.gamma(3, 1000, n), "net_revenue": rng.gamma(1.2, 20000, n),
        "promo_share": rng.beta(2, 4, n), "app_sessions": rng.poisson(5, n), "carts_abandoned": rng.poisson(1, n),
        "email_open_rate": rng.beta(2, 3, n), "consent_email": rng.random(n) < 0.6, "consent_sms": rng.random(n) < 0.4,
        "points_balance": rng.integers(0, 5000, n), "points_redeemed": rng.integers(0, 3, n) * 500,
        "tier": pick(["basic", "silver", "gold"], [0.7, 0.2, 0.1]), "channels": pick(["store", "web", "app,store", "app,store,web"]),
        "top_category": pick(["baby", "beverages", "dairy", "bakery", "household"]),
        "days_since_last_purchase": rng.integers(0, 720, n),
        "segment": pick(["Champions", "Loyal Customers", "At Risk", "Lost", "Hibernating", "New Customers"]),
        "stage": pick(["new", "active", "at risk", "lapsed", "churned"]), "clv": rng.gamma(1.0, 8000, n)})


def main(n: int):
    with tempfile.TemporaryDirectory() as root:
        path = Path(root) / "customer_360.parquet"
        fake_view(n).to_parquet(path, index=False)
        rules = [RuleSegment(name, where) for name, where in RULES]
        t = time.perf_counter()
        result = evaluate_segments(path, rules)
        seconds = time.perf_counter() - t
        t = time.perf_counter()
        duckdb.sql(f"SELECT city, count(*) FROM '{path}' GROUP BY city").fetchall()
        baseline = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"rule segments benchmark: {len(rules)} definitions over {n:,} customers")
    print(f"  evaluate (one engine query + summary + overlap): {seconds:.2f} s (target ≤ 10 s)  peak {peak:,.0f} MB")
    print(f"  baseline: DuckDB's count by city over the same Parquet {baseline:.2f} s (evaluation = {seconds / baseline:.0f}× that)")
    print("  sizes: " + ", ".join(f"{k} {v:,}" for k, v in result.summary.customers.items()))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)

"""Category and product affinities for 1,000,000 customers.

    .venv/bin/python tests/bench/bench_affinity.py [customers]

Target (issue 9): affinities for 1,000,000 customers in ≤ 5 minutes. Setup (not timed): order lines with the
synthetic programme's shape (per-customer category tastes around four archetypes, products by popularity within
their category, Poisson order counts over 18 months), written as Parquet. Timed, each from the Parquet lines:
the engine's item history, fitting the model and the top 3 for every customer, for categories and for products.
Baseline from the same run: DuckDB grouping the lines by customer and category."""
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from loyalty_lab.affinity import AffinityModel, item_history

ARCHETYPES = np.array([[3.0, 2.0, 3.0, 2.0, 1.0, 1.0, 2.5, 1.5, 3.0, 0.5], [1.5, 1.5, 1.5, 1.5, 1.5, 2.0, 2.0, 1.5, 0.5, 0.5],
                       [1.0, 1.5, 2.0, 3.0, 3.0, 0.5, 0.8, 3.0, 0.3, 1.5], [1.0, 1.5, 0.8, 0.5, 2.5, 3.0, 0.5, 0.8, 0.2, 0.8]])
CATEGORIES = np.array(["dairy", "bakery", "produce", "meat", "beverages", "snacks", "household", "personal_care", "baby", "pet"])


def fake_lines(n: int, path: Path, seed: int = 7) -> int:
    rng = np.random.default_rng(seed)
    taste = rng.gamma(ARCHETYPES[rng.integers(0, 4, n)] * 2)
    taste /= taste.sum(axis=1, keepdims=True)
    cum = np.cumsum(taste, axis=1)
    writer, total = None, 0
    start = np.datetime64("2023-01-01T00:00:00", "s")
    for lo in range(0, n, 100_000):
        hi = min(lo + 100_000, n)
        lines = rng.poisson(rng.gamma(1.5, 10, hi - lo)) + 1
        who = np.repeat(np.arange(lo, hi), lines)
        category = (cum[who, :-1] < rng.random(len(who))[:, None]).sum(axis=1)
        product = np.minimum(rng.exponential(40, len(who)), 299).astype(int)
        ts = start + (rng.random(len(who)) * 546 * 86400).astype("timedelta64[s]")
        table = pa.table({"customer_id": pa.array([f"C{i:08d}" for i in who]),
                          "ts": pa.array(ts, pa.timestamp("us", tz="UTC")),
                          "category": pa.array(CATEGORIES[category]),
                          "product_id": pa.array(np.char.add(np.char.upper(CATEGORIES[category].astype("U3")),
                                                             np.char.zfill(product.astype(str), 3))),
                          "quantity": pa.array(np.ones(len(who), np.int16))})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
        total += len(who)
    writer.close()
    return total


def main(n: int = 1_000_000):
    folder = Path(tempfile.mkdtemp())
    path = folder / "lines.parquet"
    t0 = time.perf_counter()
    rows = fake_lines(n, path)
    print(f"setup: {n:,} customers, {rows:,} lines in {time.perf_counter() - t0:.0f} s (not timed)")
    as_of = pd.Timestamp("2024-07-01", tz="UTC")
    t0 = time.perf_counter()
    duckdb.sql(f"SELECT customer_id, category, count(*) FROM '{path}' GROUP BY ALL").to_arrow_table()
    baseline = time.perf_counter() - t0
    print(f"baseline: DuckDB GROUP BY customer, category {baseline:.1f} s")
    for level in ("category", "product_id"):
        lines = ibis.read_parquet(str(path))
        t0 = time.perf_counter()
        history = item_history(lines, as_of, level=level)
        t1 = time.perf_counter()
        model = AffinityModel().fit(history)
        t2 = time.perf_counter()
        top = model.recommend(history, k=3)
        t3 = time.perf_counter()
        total = t3 - t0
        print(f"{level}: history {t1 - t0:.1f} s + fit {t2 - t1:.1f} s + top 3 {t3 - t2:.1f} s = {total:.1f} s "
              f"({top.customer_id.nunique():,} customers, {len(history):,} customer-items; {total / baseline:.1f}× the baseline) "
              f"target ≤ 300 s: {'OK' if total <= 300 else 'MISSED'}")
        del history, model, top
    print(f"peak memory {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MB")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)

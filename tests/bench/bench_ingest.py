"""Ingest throughput: Warehouse.ingest (validate, quarantine, fingerprint, atomic commit) against the bare
baseline of DuckDB reading the same CSV into a table, measured in the same run.

    .venv/bin/python tests/bench/bench_ingest.py [rows]

Prints rows/s, seconds, peak RSS and the ratio to the baseline. Compare ratios, not absolute times:
the machine is shared."""
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def make_csv(path: Path, n: int):
    rng = np.random.default_rng(1)
    ts = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 540 * 86400, n), unit="s")
    pd.DataFrame({
        "order_id": np.char.add("O", (np.arange(n) // 3).astype(str)), "line_no": np.arange(n) % 3 + 1,
        "source_system": "pos", "source_customer_id": np.char.add("C", rng.integers(0, n // 20 + 1, n).astype(str)),
        "ts": ts.strftime("%Y-%m-%d %H:%M:%S"), "channel": "store", "store_id": "S1",
        "product_id": np.char.add("P", rng.integers(0, 5000, n).astype(str)),
        "category": rng.choice(["dairy", "bakery", "toys", "baby"], n), "quantity": rng.integers(1, 4, n),
        "unit_price": rng.gamma(2, 300, n).round(2), "discount": 0.0, "on_promo": "false", "promo_type": "none",
    }).to_csv(path, index=False)


STEP = {
    "baseline": "import duckdb; c = duckdb.connect('{db}'); "
                "c.execute(\"CREATE TABLE t AS SELECT * FROM read_csv('{csv}', header=true)\"); "
                "print(c.execute('select count(*) from t').fetchone()[0])",
    "loyalty_lab": "from loyalty_lab import Warehouse; w = Warehouse('{db}'); "
                   "r = w.ingest('order_lines', '{csv}'); print(r.rows_loaded)",
}


def measure(kind: str, csv: Path, workdir: Path) -> tuple[float, int, float]:
    "Run one load in a fresh process: seconds, rows loaded, peak RSS in MB."
    db = workdir / f"{kind}.duckdb"
    db.unlink(missing_ok=True)
    code = STEP[kind].format(db=db, csv=csv) + "; import resource; " \
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    return time.perf_counter() - start, int(out[-2]), int(out[-1]) / 1024


def main(n: int):
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        csv = tmp / "order_lines.csv"
        make_csv(csv, n)
        print(f"ingest benchmark: {n:,} order lines, {csv.stat().st_size / 1e6:.0f} MB CSV")
        results = {k: measure(k, csv, tmp) for k in ("baseline", "loyalty_lab")}
        for kind, (secs, rows, peak) in results.items():
            print(f"  {kind:12s} {secs:7.2f} s  {rows / secs:12,.0f} rows/s  peak {peak:7.0f} MB  rows {rows:,}")
        ratio = results["loyalty_lab"][0] / results["baseline"][0]
        print(f"  loyalty_lab / baseline time ratio: {ratio:.2f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)

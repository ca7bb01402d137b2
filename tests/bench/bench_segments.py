"""Behavioural features + clustering, and a lookalike query, for 1,000,000 customers.

    .venv/bin/python tests/bench/bench_segments.py [people]

Targets (issue 7): features and clustering for 1,000,000 customers in ≤ 2 minutes; a lookalike query over
1,000,000 customers in ≤ 5 s; peak memory printed. Setup (not timed): the synthetic programme is generated,
written as Parquet and loaded into a warehouse with the generator's true crosswalk (merging has its own
benchmark). The timed part runs in a fresh process, so its peak RSS is its own. Baseline from the same run:
DuckDB's bare group-by of the order lines by source customer."""
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABLES = ("profiles", "order_lines", "interactions", "loyalty_ledger", "offers")

SETUP = """
import pandas as pd
from loyalty_lab.config import load_settings
from loyalty_lab.synth import generate, write_programme
from loyalty_lab.warehouse import Warehouse, ingest_sources
prog = generate(customers={people}, seed=3)
write_programme(prog, {root!r} + "/data", ("parquet",))
settings = load_settings({ini!r}, env={{}}, flags={flags!r})
ingest_sources(settings)
t = prog.truth["profiles"]
with Warehouse.open(settings) as wh:
    wh.con.con.register("_x", pd.DataFrame({{"record_id": t.source_system + ":" + t.source_customer_id, "source_system": t.source_system,
                                            "source_customer_id": t.source_customer_id, "customer_id": t.person_id, "linked_by": None}}))
    wh.con.raw_sql("CREATE TABLE crosswalk AS SELECT * FROM _x")
print("{{}}")
"""

TIMED = """
import json, resource, time, warnings
warnings.simplefilter("ignore")
from loyalty_lab.config import load_settings
from loyalty_lab.segments import Lookalikes, Segmenter, behaviour_features
from loyalty_lab.warehouse import Warehouse
settings = load_settings({ini!r}, env={{}}, flags={flags!r})
with Warehouse.open(settings, read_only=True) as wh:
    t = time.perf_counter()
    wh.con.raw_sql("SELECT count(*) FROM (SELECT source_system, source_customer_id, sum(quantity * unit_price) "
                   "FROM raw_order_lines GROUP BY ALL)").fetchall()
    baseline = time.perf_counter() - t
t = time.perf_counter(); features = behaviour_features(settings=settings); feats = time.perf_counter() - t
t = time.perf_counter(); seg = Segmenter().fit(features); cluster = time.perf_counter() - t
look = Lookalikes(features)
seeds = features.index[(features.total_spend > features.total_spend.quantile(0.99)) & (features.recency_days < 30)]
t = time.perf_counter(); ranking = look.rank(seeds, "knn"); knn = time.perf_counter() - t
t = time.perf_counter(); ranking = look.rank(seeds, "classifier"); classifier = time.perf_counter() - t
t = time.perf_counter(); near = look.similar_to(features.index[0], 10); one = time.perf_counter() - t
print(json.dumps(dict(customers=len(features), columns=features.shape[1], features=feats, cluster=cluster, k=seg.k_,
                      names=seg.names_, seeds=len(seeds), knn=knn, classifier=classifier, one=one, baseline=baseline,
                      peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""


def run(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.splitlines()[-1])


def main(people: int):
    ini = str(Path(__file__).resolve().parents[2] / "settings.ini")
    with tempfile.TemporaryDirectory() as root:
        flags = {"warehouse.path": f"{root}/lab.duckdb", **{f"sources.{t}": f"{root}/data/{t}.parquet" for t in TABLES}}
        t = time.perf_counter()
        run(SETUP.format(people=people, root=root, ini=ini, flags=flags))
        setup = time.perf_counter() - t
        r = run(TIMED.format(ini=ini, flags=flags))
    total = r["features"] + r["cluster"]
    print(f"segments benchmark: {r['customers']:,} customers × {r['columns']} features (setup {setup:.0f} s)")
    print(f"  features {r['features']:.1f} s + clustering {r['cluster']:.1f} s (k = {r['k']}, auto) = {total:.1f} s "
          f"(target ≤ 120 s)  peak {r['peak_mb']:,.0f} MB")
    print(f"  baseline: DuckDB's bare group-by of the order lines by customer {r['baseline']:.2f} s "
          f"(features = {r['features'] / r['baseline']:.0f}× that)")
    print(f"  lookalikes of {r['seeds']:,} seeds over everybody: k-NN {r['knn']:.2f} s, classifier {r['classifier']:.2f} s "
          f"(target ≤ 5 s); similar_to one customer {r['one']:.3f} s")
    print(f"  segments: {', '.join(r['names'])}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)

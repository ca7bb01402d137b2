"""Profile merging end to end at scale: standardise, deterministic pass, Splink pass, guarded clusters,
stable ids, golden records, all kept in the warehouse (`resolve_customers`).

    .venv/bin/python tests/bench/bench_merge.py [people]

Target (issue 4): 1,000,000 source profiles (about 515,000 generated people) in at most 3 minutes on
2 cores, peak memory at most 6 GB, with pairwise F1 against the generator's truth printed beside the
time. The profiles are generated in the parent process and loaded into a warehouse by another; the merge
runs in a fresh process so its peak RSS is its own. It is then re-run incrementally with nothing new
(what a nightly run on unchanged profiles costs). Baseline from the same run: DuckDB grouping the same
profiles by phone."""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

LOAD = """
import json
from loyalty_lab.warehouse import Warehouse
with Warehouse({warehouse!r}) as wh:
    r = wh.ingest("profiles", {profiles!r})
print(json.dumps(dict(rows=r.rows_loaded)))
"""

MERGE = """
import json, resource, time, warnings
warnings.simplefilter("ignore")
import pandas as pd
from loyalty_lab.profiles import MergeOptions, pairwise_scores, resolve_customers
from loyalty_lab.warehouse import Warehouse
with Warehouse({warehouse!r}) as wh:
    t = time.perf_counter()
    run = resolve_customers(wh, options=MergeOptions())
    seconds = time.perf_counter() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t = time.perf_counter()
    again = resolve_customers(wh, options=MergeOptions())
    rerun = time.perf_counter() - t
    crosswalk = wh.con.table("crosswalk").to_pandas()
    golden = wh.con.table("golden_records").count().execute()
truth = pd.read_parquet({truth!r})
truth["record_id"] = truth.source_system + ":" + truth.source_customer_id
scored = crosswalk.merge(truth[["record_id", "person_id"]], on="record_id")
s = pairwise_scores(scored.customer_id, scored.person_id)
print(json.dumps(dict(seconds=seconds, peak_mb=peak, rerun_seconds=rerun, rerun_mode=again.mode,
                      rerun_changes=len(again.changes), golden=int(golden),
                      peak_after_rerun_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      records=run.stats["records"], customers=run.stats["customers"], largest=run.stats["largest_cluster"],
                      true_largest=int(truth.groupby("person_id").size().max()), **s)))
"""

BASELINE = """
import json, time, duckdb
t = time.perf_counter()
duckdb.sql("SELECT phone, count(*) FROM read_parquet({profiles!r}) GROUP BY phone").fetchall()
print(json.dumps(dict(seconds=time.perf_counter() - t)))
"""


def main(people: int):
    from loyalty_lab.synth import generate
    prog = generate(customers=people, seed=3)
    with tempfile.TemporaryDirectory() as tmp:
        profiles, truth = str(Path(tmp, "profiles.parquet")), str(Path(tmp, "truth.parquet"))
        warehouse = str(Path(tmp, "bench.duckdb"))
        prog.table("profiles").to_parquet(profiles)
        prog.truth["profiles"].to_parquet(truth)
        del prog
        run = lambda code: json.loads(subprocess.run(
            [sys.executable, "-c", code.format(profiles=profiles, truth=truth, warehouse=warehouse)],
            capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        run(LOAD)
        r, base = run(MERGE), run(BASELINE)
    print(f"profile merge benchmark: {people:,} people → {r['records']:,} source profiles → {r['customers']:,} customers")
    print(f"  merge        {r['seconds']:8.1f} s  {r['records'] / r['seconds']:10,.0f} profiles/s  (target ≤ 180 s at 1,000,000 profiles)")
    print(f"  peak memory  {r['peak_mb']:8.0f} MB  (target ≤ 6,144 MB)")
    print(f"  golden records {r['golden']:,}; re-run with nothing new: {r['rerun_seconds']:.1f} s ({r['rerun_mode']}, "
          f"{r['rerun_changes']} id changes), peak after it {r['peak_after_rerun_mb']:.0f} MB")
    print(f"  pairwise     precision {r['precision']:.4f}  recall {r['recall']:.4f}  F1 {r['f1']:.4f}")
    print(f"  largest cluster {r['largest']} (largest true person: {r['true_largest']})")
    print(f"  baseline: DuckDB group-by on phone {base['seconds']:.2f} s; merge/baseline ratio {r['seconds'] / base['seconds']:.0f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 515_000)

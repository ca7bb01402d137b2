"""Profile merging end to end at scale: standardise, deterministic pass, Splink pass, clusters.

    .venv/bin/python tests/bench/bench_merge.py [people]

Target (issue 4): 1,000,000 source profiles (about 515,000 generated people) in at most 3 minutes on
2 cores, peak memory at most 6 GB, with pairwise F1 against the generator's truth printed beside the
time. The profiles are generated in the parent process; the merge runs in a fresh process so its peak
RSS is its own. Baseline from the same run: DuckDB grouping the same profiles by phone."""
import json
import subprocess
import sys
import tempfile
from pathlib import Path

MERGE = """
import json, resource, time, warnings
warnings.simplefilter("ignore")
import ibis, pandas as pd
from loyalty_lab.profiles import merge_profiles, pairwise_scores
raw = pd.read_parquet({profiles!r})
t = time.perf_counter()
clusters, stats = merge_profiles(ibis.memtable(raw))
seconds = time.perf_counter() - t
truth = pd.read_parquet({truth!r})
truth["record_id"] = truth.source_system + ":" + truth.source_customer_id
scored = clusters.merge(truth[["record_id", "person_id"]], on="record_id")
s = pairwise_scores(scored.cluster, scored.person_id)
print(json.dumps(dict(seconds=seconds, peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      records=stats["records"], customers=stats["customers"], largest=stats["largest_cluster"],
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
        raw = prog.table("profiles").replace("", None)
        raw["birth_date"] = raw.birth_date.astype("datetime64[s]")
        raw.to_parquet(profiles)
        prog.truth["profiles"].to_parquet(truth)
        del prog, raw
        run = lambda code: json.loads(subprocess.run([sys.executable, "-c", code.format(profiles=profiles, truth=truth)],
                                                     capture_output=True, text=True, check=True).stdout.splitlines()[-1])
        r, base = run(MERGE), run(BASELINE)
    print(f"profile merge benchmark: {people:,} people → {r['records']:,} source profiles → {r['customers']:,} customers")
    print(f"  merge        {r['seconds']:8.1f} s  {r['records'] / r['seconds']:10,.0f} profiles/s  (target ≤ 180 s at 1,000,000 profiles)")
    print(f"  peak memory  {r['peak_mb']:8.0f} MB  (target ≤ 6,144 MB)")
    print(f"  pairwise     precision {r['precision']:.4f}  recall {r['recall']:.4f}  F1 {r['f1']:.4f}")
    print(f"  largest cluster {r['largest']} (largest true person: {r['true_largest']})")
    print(f"  baseline: DuckDB group-by on phone {base['seconds']:.2f} s; merge/baseline ratio {r['seconds'] / base['seconds']:.0f}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 515_000)

"""Synthetic programme at scale: people, order lines, rows per second and peak memory.

    .venv/bin/python tests/bench/bench_synth.py [people] [formats]

Target (issue 3): 1,000,000 people with about 20 million order lines in at most 5 minutes on the
2-core machine, peak memory at most 8 GB. Generation and writing run in a fresh process each, so peak
RSS is the generator's own. A baseline from the same run, numpy drawing as many Gamma variates as there
are order lines, puts the seconds in context on a noisy machine."""
import json
import subprocess
import sys
import tempfile

RUN = """
import json, resource, sys, time
from loyalty_lab.synth import generate, write_programme
t0 = time.perf_counter()
prog = generate(customers={people}, seed=1)
t1 = time.perf_counter()
rows = write_programme(prog, {out!r}, {formats!r})
t2 = time.perf_counter()
print(json.dumps(dict(generate=t1 - t0, write=t2 - t1, rows=rows,
                      peak_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)))
"""

BASELINE = """
import json, time, numpy as np
t = time.perf_counter()
rng = np.random.default_rng(1)
x = rng.gamma(6.0, 1 / rng.gamma(4.0, 1 / 1500.0, {n}))
print(json.dumps(dict(seconds=time.perf_counter() - t)))
"""


def main(people: int, formats: tuple[str, ...]):
    with tempfile.TemporaryDirectory() as out:
        result = json.loads(subprocess.run([sys.executable, "-c", RUN.format(people=people, out=out, formats=formats)],
                                           capture_output=True, text=True, check=True).stdout)
    lines = result["rows"]["order_lines"]
    base = json.loads(subprocess.run([sys.executable, "-c", BASELINE.format(n=lines)], capture_output=True,
                                     text=True, check=True).stdout)["seconds"]
    total = result["generate"] + result["write"]
    print(f"synthetic programme benchmark: {people:,} people, formats {', '.join(formats)}")
    for name, n in result["rows"].items():
        print(f"  {name:15s} {n:>12,} rows")
    print(f"  generate        {result['generate']:8.1f} s   {lines / result['generate']:12,.0f} order lines/s")
    print(f"  write           {result['write']:8.1f} s")
    print(f"  total           {total:8.1f} s   (target ≤ 300 s at 1,000,000 people)  {'OK' if total <= 300 else 'OVER'}")
    print(f"  peak memory     {result['peak_mb']:8.0f} MB  (target ≤ 8,192 MB)  {'OK' if result['peak_mb'] <= 8192 else 'OVER'}")
    print(f"  baseline: numpy gamma draws for {lines:,} lines {base:.2f} s; generator/baseline ratio {result['generate'] / base:.0f}")


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    fmts = tuple(sys.argv[2].split(",")) if len(sys.argv) > 2 else ("csv", "parquet")
    main(n, fmts)

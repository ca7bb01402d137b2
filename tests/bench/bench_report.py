"""The lab's main job end to end for 100,000 customers: `loyalty-lab run` (ingest, merge, segment report).

    .venv/bin/python tests/bench/bench_report.py [people]

Target (issue 8): an end-to-end report for 100,000 customers (about 2 million order lines) in ≤ 3 minutes,
peak memory ≤ 4 GB. Setup (not timed): a synthetic programme of `people` people written as Parquet and a
settings.ini pointing at it. Timed: the real command line, as cron would run it, with the peak resident
memory of its whole process tree (the command and the report's Jupyter kernel) sampled every 0.1 s.
Printed beside it: `loyalty-lab report` alone on the same warehouse, the report's own section timings
(metrics.json) and, as the baseline measured in the same run, DuckDB's bare group-by of the order lines.
"""
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

CLI = str(Path(sys.executable).parent / "loyalty-lab")
TABLES = ("profiles", "order_lines", "interactions", "loyalty_ledger", "offers")


def timed_command(args, cwd) -> tuple[float, float]:
    "Seconds and peak RSS (MB) of the process tree of `args`; fails loudly if the command fails."
    t = time.perf_counter()
    proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]

    def sample():
        root = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peak[0] = max(peak[0], sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(0.1)

    watcher = threading.Thread(target=sample, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    seconds = time.perf_counter() - t
    watcher.join()
    if proc.returncode:
        raise SystemExit(f"{' '.join(args[1:])} failed:\n{err[-3000:]}")
    return seconds, peak[0] / 2**20


def main(people: int):
    with tempfile.TemporaryDirectory() as root:
        root = Path(root)
        t = time.perf_counter()
        subprocess.run([CLI, "synth", "--customers", str(people), "--seed", "8", "--out", str(root / "data"),
                        "--format", "parquet"], check=True, capture_output=True)
        sources = "".join(f"{t} = data/{t}.parquet\n" for t in TABLES)
        (root / "settings.ini").write_text(f"[sources]\n{sources}[warehouse]\npath = lab.duckdb\n[run]\nas_of = 2024-06-30\n"
                                           "[report]\noutput_dir = reports\n", encoding="utf-8")
        setup = time.perf_counter() - t
        run_s, run_mb = timed_command([CLI, "run", "--run-id", "end-to-end"], root)
        report_s, report_mb = timed_command([CLI, "report", "--run-id", "report-only"], root)
        metrics = json.loads((root / "reports" / "end-to-end" / "metrics.json").read_text())
        import duckdb
        con = duckdb.connect(str(root / "lab.duckdb"), read_only=True)
        t = time.perf_counter()
        con.sql("SELECT count(*) FROM (SELECT source_system, source_customer_id, sum(quantity * unit_price) "
                "FROM raw_order_lines GROUP BY ALL)").fetchall()
        baseline = time.perf_counter() - t
        con.close()
        html_mb = (root / "reports" / "end-to-end" / "segment_report.html").stat().st_size / 2**20
    lines = metrics["tables"]["order_lines"]["rows"]
    print(f"report benchmark: {people:,} people → {metrics['customers (merged profiles)']:,} customers, "
          f"{metrics['customers']:,} with purchases, {lines:,} order lines (setup {setup:.0f} s)")
    print(f"  loyalty-lab run (ingest + merge + report): {run_s:.1f} s (target ≤ 180 s)  peak {run_mb:,.0f} MB "
          f"(target ≤ 4,096 MB)")
    print(f"  loyalty-lab report alone: {report_s:.1f} s  peak {report_mb:,.0f} MB  ({lines / report_s:,.0f} lines/s); "
          f"HTML {html_mb:.1f} MB")
    print("  report sections (s): " + ", ".join(f"{k} {v:.1f}" for k, v in metrics["seconds"].items()))
    print(f"  baseline: DuckDB's bare group-by of the order lines by source customer {baseline:.2f} s "
          f"(report = {report_s / baseline:.0f}× that)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)

"""Start-up time of the command line: `loyalty-lab --help`, `--version`, `config` and `contract`.

    .venv/bin/python tests/bench/bench_cli.py [runs]

Target (issue 18): each answers in under 1 s (it took 7-16 s when the command imported the whole package).
Every command runs `runs` times (default 7) in a fresh process from the checkout (where settings.ini is);
the table shows the median and the fastest run beside two baselines measured in the same run, because the
machine is shared and noisy: `python -c pass` (the interpreter alone) and `python -c "import pandas"`
(`config` and `contract` print pandas tables, so pandas is their floor)."""
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TARGET = 1.0
COMMANDS = {
    "baseline: python -c pass": [sys.executable, "-c", "pass"],
    "baseline: python -c 'import pandas'": [sys.executable, "-c", "import pandas"],
    "loyalty-lab --help": [str(BIN / "loyalty-lab"), "--help"],
    "loyalty-lab --version": [str(BIN / "loyalty-lab"), "--version"],
    "loyalty-lab config": [str(BIN / "loyalty-lab"), "config"],
    "loyalty-lab contract": [str(BIN / "loyalty-lab"), "contract"],
}


def timed(command: list[str]) -> float:
    t = time.perf_counter()
    subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=True)
    return time.perf_counter() - t


def main(runs: int):
    times = {name: [] for name in COMMANDS}
    for _ in range(runs):  # interleaved, so a busy moment of the machine hits every command alike
        for name, command in COMMANDS.items():
            times[name].append(timed(command))
    pandas = statistics.median(times["baseline: python -c 'import pandas'"])
    print(f"start-up over {runs} runs each (seconds; target < {TARGET:.0f} s for the commands)")
    print(f"{'command':<38} {'median':>7} {'fastest':>8} {'× import pandas':>16}")
    for name, values in times.items():
        median = statistics.median(values)
        verdict = "" if name.startswith("baseline") else ("  ok" if median < TARGET else "  slower than the target")
        print(f"{name:<38} {median:>7.2f} {min(values):>8.2f} {median / pandas:>16.2f}{verdict}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 7)

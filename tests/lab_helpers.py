"""Helpers the tests share: a throw-away lab on the sample data, the report template, the command line."""
from pathlib import Path
import shutil
import subprocess
import sys

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
TEMPLATE = REPO / "notebooks" / "reports" / "segment_report.ipynb"
CLI = str(Path(sys.executable).parent / "loyalty-lab")


def make_lab(root: Path, template: bool = False) -> Path:
    """A throw-away lab folder: settings.ini pointing at copies of the sample data, its own warehouse and,
    with `template`, the report template where a checkout keeps it."""
    shutil.copytree(SAMPLE, root / "data" / "sample")
    (root / "settings.ini").write_text(
        "[warehouse]\npath = data/warehouse.duckdb\nlock_timeout_seconds = 0.5\n"
        "[run]\nas_of = 2024-06-30\n[report]\noutput_dir = reports\n", encoding="utf-8")
    return copy_template(root) if template else root


def merged_lab(root: Path):
    "`make_lab` with its sources loaded into the warehouse and the profiles merged; returns the lab's settings."
    from loyalty_lab import ingest_sources, load_settings, resolve_customers
    make_lab(root)
    settings = load_settings(root / "settings.ini", env={})
    ingest_sources(settings)
    resolve_customers(settings=settings)
    return settings


def copy_template(root: Path) -> Path:
    "The report template into `root` where a checkout keeps it."
    (root / "notebooks" / "reports").mkdir(parents=True)
    shutil.copy(TEMPLATE, root / "notebooks" / "reports")
    return root


def cli(*args, cwd, timeout=600):
    "Run the installed `loyalty-lab` command in `cwd`."
    return subprocess.run([CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)

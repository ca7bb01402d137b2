"""Helpers the tests share: a throw-away lab on the sample data, an own copy of the report template, the command line."""
from pathlib import Path
import shutil
import subprocess
import sys

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
CLI = str(Path(sys.executable).parent / "loyalty-lab")


def make_lab(root: Path) -> Path:
    """A throw-away lab folder: settings.ini pointing at copies of the sample data and its own warehouse (the
    report runs on the template inside the installed package)."""
    shutil.copytree(SAMPLE, root / "data" / "sample")
    (root / "settings.ini").write_text(
        "[warehouse]\npath = data/warehouse.duckdb\nlock_timeout_seconds = 0.5\n"
        "[run]\nas_of = 2024-06-30\n[report]\noutput_dir = reports\n", encoding="utf-8")
    return root


def merged_lab(root: Path):
    "`make_lab` with its sources loaded into the warehouse and the profiles merged; returns the lab's settings."
    from loyalty_lab import ingest_sources, load_settings, resolve_customers
    make_lab(root)
    settings = load_settings(root / "settings.ini", env={})
    ingest_sources(settings)
    resolve_customers(settings=settings)
    return settings


def copy_template(root: Path) -> Path:
    "The installed package's report template copied into the lab as the analyst's own (`[report] template`)."
    from loyalty_lab.report import default_template
    own = root / "my_report.ipynb"
    shutil.copy(default_template(), own)
    settings = root / "settings.ini"
    settings.write_text(settings.read_text().replace("[report]\n", "[report]\ntemplate = my_report.ipynb\n"))
    return own


def cli(*args, cwd, timeout=600):
    "Run the installed `loyalty-lab` command in `cwd`."
    return subprocess.run([CLI, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout)

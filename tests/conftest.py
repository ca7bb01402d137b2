"""Shared fixtures. Tests run against the *installed* loyalty_lab (see tools/run_pytest.sh)."""
from pathlib import Path
import shutil
import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLE = REPO / "data" / "sample"
TEMPLATE = REPO / "notebooks" / "reports" / "segment_report.ipynb"


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A throw-away lab folder: settings.ini pointing at copies of the sample data, its own warehouse."""
    data = tmp_path / "data"
    shutil.copytree(SAMPLE, data / "sample")
    (tmp_path / "settings.ini").write_text(
        "[warehouse]\npath = data/warehouse.duckdb\nlock_timeout_seconds = 0.5\n"
        "[run]\nas_of = 2024-06-30\n[report]\noutput_dir = reports\n", encoding="utf-8")
    for var in [v for v in __import__("os").environ if v.startswith("LOYALTY_LAB_")]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    return tmp_path

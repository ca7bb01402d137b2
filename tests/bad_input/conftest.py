"""Issue 19's bad-input suite, one file per class: what a careless exporter, an attacker or a crashing machine
produces, and the clear message (or the safe behaviour) each must get.

    test_ingest.py       files and values at load time        test_settings.py     settings.ini and the command line
    test_api.py          the Python API (merge, segments…)    test_report.py       report parameters and hostile data
    test_privacy.py      forget, suppression, keys, PII       test_concurrency.py  two processes, locks
    test_crash.py        kill -9 at several points of a load, a merge and a report

Count: `.venv/bin/pytest --collect-only -q tests/bad_input | tail -1` (at least 120 cases)."""
import pytest
from loyalty_lab import Warehouse


@pytest.fixture
def wh(tmp_path):
    "An empty warehouse in the test's folder."
    with Warehouse(tmp_path / "wh.duckdb") as w:
        yield w

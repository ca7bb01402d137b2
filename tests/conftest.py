"""Shared fixtures. Tests run against the *installed* loyalty_lab (see tools/run_pytest.sh); `tests/` is on
sys.path (pyproject's pythonpath) so that tests import the shared helpers from lab_helpers."""
import os
import pytest

from lab_helpers import make_lab


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """`make_lab` in the test's folder, which becomes the current one, without LOYALTY_LAB_ variables."""
    make_lab(tmp_path)
    for var in [v for v in os.environ if v.startswith("LOYALTY_LAB_")]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tmp_path)
    return tmp_path

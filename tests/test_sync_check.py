"""tools/check_sync.sh (the first step of `make test`) fails when notebooks and package drift apart."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def clone(tmp_path):
    "A clean clone of the committed project, using this environment's nbdev."
    dest = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(REPO), str(dest)], check=True)
    os.symlink(Path(sys.executable).parent.parent, dest / ".venv")
    return dest


def check(clone):
    return subprocess.run(["tools/check_sync.sh"], cwd=clone, capture_output=True, text=True)


def test_clean_clone_passes(clone):
    done = check(clone)
    assert done.returncode == 0, done.stderr
    assert "in sync" in done.stdout


def test_hand_edited_module_fails(clone):
    core = clone / "loyalty_lab" / "core.py"
    core.write_text(core.read_text().replace("n: int = 5", "n: int = 7"))
    done = check(clone)
    assert done.returncode == 1
    assert "loyalty_lab/core.py" in done.stderr and "Notebooks are the source" in done.stderr


def test_notebook_edited_but_not_exported_fails(clone):
    nb_path = clone / "notebooks" / "00_core.ipynb"
    nb = json.loads(nb_path.read_text())
    cell = next(c for c in nb["cells"] if "def preview" in "".join(c["source"]))
    cell["source"] = "".join(cell["source"]).replace("n: int = 5", "n: int = 6")
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    done = check(clone)
    assert done.returncode == 1 and "loyalty_lab/core.py" in done.stderr


def test_unclean_notebook_fails(clone):
    nb_path = clone / "notebooks" / "00_core.ipynb"
    nb = json.loads(nb_path.read_text())
    next(c for c in nb["cells"] if c["cell_type"] == "code")["execution_count"] = 3
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    done = check(clone)
    assert done.returncode == 1 and "notebooks/00_core.ipynb" in done.stderr


def test_unclean_report_template_fails(clone):
    "The report template ships inside the package (loyalty_lab/templates/): it is kept clean like the notebooks."
    nb_path = clone / "loyalty_lab" / "templates" / "segment_report.ipynb"
    nb = json.loads(nb_path.read_text())
    next(c for c in nb["cells"] if c["cell_type"] == "code")["execution_count"] = 3
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    done = check(clone)
    assert done.returncode == 1 and "loyalty_lab/templates/segment_report.ipynb" in done.stderr

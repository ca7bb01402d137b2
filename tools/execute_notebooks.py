"""Run notebooks in place so that they are committed with their outputs (what a reader sees in JupyterLab), then
clean them the nbdev way. Usage: .venv/bin/python tools/execute_notebooks.py notebooks/1[0-9]_*.ipynb

Every cell runs, `#| slow` ones included, on the project's `loyalty-lab` kernel from the notebooks folder; each
notebook's time is printed (nbdev-test, which skips `#| slow`, should stay under two minutes per notebook)."""
import subprocess
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]

for name in sys.argv[1:]:
    path = Path(name).resolve()
    nb = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    NotebookClient(nb, timeout=1800, kernel_name="loyalty-lab", resources={"metadata": {"path": str(path.parent)}}).execute()
    nb.metadata["kernelspec"] = {"display_name": "loyalty-lab", "language": "python", "name": "loyalty-lab"}
    nbformat.write(nb, path)
    size = path.stat().st_size
    print(f"{path.name}: {time.perf_counter() - started:.0f} s, {size / 1e6:.1f} MB with outputs", flush=True)
    subprocess.run([str(REPO / ".venv/bin/nbdev-clean"), "--fname", str(path)], check=True)

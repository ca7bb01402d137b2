#!/usr/bin/env bash
# Installs loyalty-lab as another team would, and runs it where they would: builds the wheel from this checkout,
# installs it into a new virtual environment in a temporary folder, WITHOUT constraints.txt (pip picks the newest
# versions pyproject.toml allows), then, in another temporary folder, `loyalty-lab init lab` and `loyalty-lab run`
# in it, and checks that the HTML report was written. Prints the versions pip picked and the time taken; removes
# everything it made. pip's download/wheel cache is reused; the dev extras are not installed.
#
#   tools/check_wheel.sh                 everything (part of `make test`)
#   tools/check_wheel.sh --install-only  build, fresh install, `loyalty-lab --help`, import of every module
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd)
install_only=false
[ "${1:-}" = "--install-only" ] && install_only=true
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
start=$(date +%s)
elapsed() { echo "$(( $(date +%s) - start )) s"; }
step() { echo "check-wheel: $* ($(elapsed))"; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/loyalty-lab-wheel.XXXXXX")
case "$tmp/" in "$checkout"/*) echo "check-wheel: the temporary folder $tmp is inside the checkout; set TMPDIR" >&2; exit 1;; esac
trap 'rm -rf "$tmp"' EXIT

# 1. a fresh virtual environment, then the wheel, built from a copy of what the package is made of (a stale
#    build/ folder in the checkout cannot leak into it)
"$PYTHON" -m venv "$tmp/venv"
bin="$tmp/venv/bin"
mkdir -p "$tmp/src"
cp -r pyproject.toml README.md loyalty_lab "$tmp/src/"
cp LICENSE* "$tmp/src/" 2>/dev/null || true
find "$tmp/src" -name __pycache__ -prune -exec rm -rf {} +
"$bin/python" -m pip wheel --quiet --no-deps --wheel-dir "$tmp/dist" "$tmp/src" 2>&1 | { grep -v "is ignored" || true; }
wheel=$(ls "$tmp"/dist/loyalty_lab-*.whl)
step "built $(basename "$wheel")"

# 2. installed without constraints.txt: what another team gets today
"$bin/python" -m pip install --quiet "$wheel" 2>&1 | { grep -v "is ignored" || true; }
step "installed into a fresh virtual environment without constraints.txt; pip picked:"
"$bin/python" -m pip freeze | grep -iE '^(duckdb|ibis-framework|sqlglot|pandas|numpy|pyarrow|splink|scikit-learn|scipy|lifetimes|papermill|nbconvert|nbclient|nbformat|ipykernel|jupyter.client|matplotlib|seaborn|faker|pyyaml|rich)=' \
  | sed 's/^/  /'
"$bin/python" -m pip check

# 3. the installed package answers and every module imports (from outside the checkout)
cd "$tmp"
"$bin/loyalty-lab" --help >/dev/null
"$bin/python" - <<'EOF'
import importlib, pkgutil, loyalty_lab
from pathlib import Path
assert "site-packages" in Path(loyalty_lab.__file__).parts, f"loyalty_lab imported from {loyalty_lab.__file__}"
names = [m.name for m in pkgutil.walk_packages(loyalty_lab.__path__, "loyalty_lab.")]
for name in names:
    importlib.import_module(name)
print(f"check-wheel: loyalty-lab --help answers; loyalty_lab {loyalty_lab.__version__} and its {len(names)} modules import")
EOF
if $install_only; then
  echo "check-wheel: passed (install only) in $(elapsed)"
  exit 0
fi

# 4. a lab folder outside any checkout, with only the installed wheel: init, run, and the report is there.
#    Kernels and Jupyter settings of this machine's user are hidden, as on another team's machine.
export JUPYTER_DATA_DIR="$tmp/jupyter-data" JUPYTER_CONFIG_DIR="$tmp/jupyter-config" IPYTHONDIR="$tmp/ipython"
for var in $(env | grep -o '^LOYALTY_LAB_[A-Z0-9_]*' || true); do unset "$var"; done
mkdir -p "$tmp/elsewhere"
cd "$tmp/elsewhere"
"$bin/loyalty-lab" init lab
cd lab
step "loyalty-lab init lab: $(ls | tr '\n' ' ')"
"$bin/loyalty-lab" run
shopt -s nullglob
reports=(reports/*/segment_report.html)
if [ ${#reports[@]} -eq 0 ]; then
  echo "check-wheel: FAILED — loyalty-lab run wrote no reports/*/segment_report.html in the lab folder" >&2
  exit 1
fi
for html in "${reports[@]}"; do
  size=$(stat -c %s "$html")
  if [ "$size" -lt 200000 ] || ! grep -q "data:image/png" "$html"; then
    echo "check-wheel: FAILED — $html is $size bytes, with no embedded chart: the report is not complete" >&2
    exit 1
  fi
  step "report written: $html ($size bytes)"
done
echo "check-wheel: passed in $(elapsed)"

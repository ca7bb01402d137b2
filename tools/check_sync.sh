#!/usr/bin/env bash
# Fails when a notebook is not clean (nbdev-clean changes it) or loyalty_lab/ is not exactly what
# nbdev-export makes of notebooks/. Compares the work tree before and after, so it works on a clean
# clone (CI) and in a work tree with other uncommitted changes alike.
set -euo pipefail
cd "$(dirname "$0")/.."
snapshot() {
  git status --porcelain=v1 --untracked-files=all -- notebooks loyalty_lab
  git diff -- notebooks loyalty_lab | sha256sum
  git ls-files --others --exclude-standard -- notebooks loyalty_lab | sort | xargs -r sha256sum
}
before=$(snapshot)
.venv/bin/nbdev-clean
.venv/bin/nbdev-export
after=$(snapshot)
if [ "$before" != "$after" ]; then
  echo "check-sync: FAILED — nbdev-clean/nbdev-export changed files:" >&2
  git status --short -- notebooks loyalty_lab >&2
  echo "Notebooks are the source: run nbdev-clean and nbdev-export, and commit notebooks and loyalty_lab/ together." >&2
  exit 1
fi
echo "check-sync: notebooks clean, loyalty_lab/ in sync with notebooks/"

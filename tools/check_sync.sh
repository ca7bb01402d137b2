#!/usr/bin/env bash
# Fails when a notebook or a report template (loyalty_lab/templates/) is not clean (nbdev-clean changes it)
# or loyalty_lab/ is not exactly what nbdev-export makes of notebooks/. Compares every file's hash before
# and after, so it works on a clean clone (CI) and in a work tree with other uncommitted changes alike,
# and names the files that changed.
set -euo pipefail
cd "$(dirname "$0")/.."
snapshot() { git ls-files --cached --others --exclude-standard -- notebooks loyalty_lab | sort -u | xargs -r sha256sum; }
before=$(snapshot)
.venv/bin/nbdev-clean
.venv/bin/nbdev-clean --fname loyalty_lab/templates
.venv/bin/nbdev-export
after=$(snapshot)
if [ "$before" != "$after" ]; then
  echo "check-sync: FAILED — nbdev-clean/nbdev-export changed these files:" >&2
  { diff <(echo "$before") <(echo "$after") || true; } | awk '/^[<>]/ {print "  " $3}' | sort -u >&2
  echo "Notebooks are the source: edit the notebook (never loyalty_lab/*.py by hand), run nbdev-clean" \
       "(and nbdev-clean --fname loyalty_lab/templates for a report template) and nbdev-export, and commit" \
       "notebooks/ and loyalty_lab/ together." >&2
  exit 1
fi
echo "check-sync: notebooks clean, loyalty_lab/ in sync with notebooks/"

#!/usr/bin/env bash
# pytest against the installed package. Run as .venv/bin/pytest (not `python -m pytest`, which would put
# the source tree on sys.path). Exit code 5 (no tests collected) is a failure, not a pass.
set -uo pipefail
cd "$(dirname "$0")/.."
.venv/bin/pytest tests "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run_pytest: pytest collected no tests — failing" >&2
  exit 1
fi
exit "$rc"

#!/usr/bin/env bash
# pytest against the installed package. Run as .venv/bin/pytest (not `python -m pytest`, which would put
# the source tree on sys.path). Exit code 5 (no tests collected) is a failure, not a pass.
#   tools/run_pytest.sh                      the whole suite (tests/)
#   tools/run_pytest.sh tests/test_x.py -x   only what is named
set -uo pipefail
cd "$(dirname "$0")/.."
targets=(tests)
for arg in "$@"; do
  [ -e "${arg%%::*}" ] && targets=()  # a file or test named: run just that
done
.venv/bin/pytest "${targets[@]}" "$@"
rc=$?
if [ "$rc" -eq 5 ]; then
  echo "run_pytest: pytest collected no tests — failing" >&2
  exit 1
fi
exit "$rc"

#!/usr/bin/env bash
# Install everything needed for the test suite, then run it.
#   bash tools/run_tests.sh [extra pytest args]
# Exits non-zero on any failure, and also when no test ran.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PYTHON=${PYTHON:-python3}
bash "$ROOT/tools/install_deps.sh" --tests
cd "$ROOT"
echo "[run_tests] flake8"
"$PYTHON" -m flake8 dmformer tools tests configs demo
echo "[run_tests] isort --check"
"$PYTHON" -m isort --check-only --diff dmformer tools tests demo
echo "[run_tests] pytest"
# pytest exits with 5 when it collected no test: that is a failure here too.
"$PYTHON" -m pytest tests "$@"

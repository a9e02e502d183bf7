#!/usr/bin/env bash
# Run the test suite in the repo-local environment (built first if needed).
#   bash tools/run_tests.sh              # the default suite (fast; excludes tests marked slow)
#   bash tools/run_tests.sh -m slow      # only the slow end-to-end tests
#   bash tools/run_tests.sh tests/quant  # any pytest arguments
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$ROOT/tools/setup_env.sh"
cd "$ROOT"
if [[ $# -eq 0 ]]; then set -- -m "not slow" tests; fi
exec "$ROOT/.venv/bin/python" -m pytest "$@"

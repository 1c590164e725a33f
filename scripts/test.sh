#!/usr/bin/env bash
# The test command: set up (seconds when nothing changed), then run the test suite in the same Python
# environment (scripts/python_env.sh). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
source scripts/python_env.sh >/dev/null
exec "$PY" -m pytest tests "$@"

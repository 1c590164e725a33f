#!/usr/bin/env bash
# The main job: set up (seconds when nothing changed), then `ptl demo`, a transfer experiment on synthetic
# data (a cached pre-trained backbone; fine-tuned, PTL, STD and rolling back from it), in the same Python
# environment (scripts/python_env.sh). Extra arguments go to the demo (see `ptl demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
source scripts/python_env.sh >/dev/null
exec "$PY" -m ptl_ext demo "$@"

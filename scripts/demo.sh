#!/usr/bin/env bash
# The main job: set up (idempotent), then `ptl demo` (synthetic data, PTL network vs its backbone).
# Extra arguments go to the demo (see `ptl demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup_env.sh
exec "${PYTHON:-python3}" -m ptl_ext demo "$@"

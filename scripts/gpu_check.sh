#!/usr/bin/env bash
# One-call validation of the GPU path: scripts/gpu_check.sh [--cpu-smoke] OUT_DIR
#
# Runs, under one deadline (GPU_CHECK_DEADLINE seconds, default 450; each step also has its own cap):
#   env        nvidia-smi, nvcc, torch / CUDA / cuDNN versions, device, SMs
#   build      forced CUDA build in place (PTL_EXT_FORCE_CUDA=1, no registry access), for this GPU's
#              architecture unless TORCH_CUDA_ARCH_LIST is set; then a C++ error of the op must reach
#              Python as ValueError. If the library does not link libstdc++ dynamically (setup.py refuses
#              it) or that check crashes, it is rebuilt once with /usr/bin/g++ (some machines set CXX to a
#              wrapper that links libstdc++ statically); OUT_DIR/build.json names the compiler used
#   rerank     re-ranking at Market (3,368 x 15,913) and MSMT17 (11,659 x 82,161) scale, d = 2048:
#              time and peak memory above the features; Market compared with the CPU
#   cell       fused-op rows (float32, bfloat16, float16): % of a same-bytes copy, vs torch.compile
#   models     one AMP (bf16) train step of every network in list_models(), batch 32: ms, peak, parameters
#   then, side by side (they measure no time):
#   tests      the whole suite, pytest -n TEST_WORKERS (default 12, when pytest-xdist is installed), tests
#              marked cuda first; once PTL_EXT_TEST_DEADLINE passes the rest are skipped, so the run
#              ends in time and OUT_DIR/junit.xml says how far it got
#   memcheck   compute-sanitizer --tool memcheck over small calls of every kernel
#   racecheck  compute-sanitizer --tool racecheck over the same calls
# Results: OUT_DIR/summary.md (tables, then a few summary lines), summary.json, env.json, rerank.json,
# cell.json, models.json, junit.xml, failures.md (when tests failed); steps/NN-name.{json,log}.
# summary.md / summary.json are rewritten after every step, so a run killed at any point still reports.
# Statuses: pass, fail, timeout, deadline (no time left to start it), not-run (no CUDA build), skipped.
#
# --cpu-smoke: no GPU needed; every step's code at small size on the CPU (the extension as built, whose
# C++ errors must reach Python, the sanitizer cases without compute-sanitizer, a few tests), for CI
# (tests/test_gpu_check.py).
# Without a GPU and without --cpu-smoke it exits at once (status 2). Exit status: 0 when every step passed.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PY=${PYTHON:-python3}
SMOKE=0
if [ "${1:-}" = "--cpu-smoke" ]; then
    SMOKE=1
    shift
fi
if [ $# -ne 1 ] || [ -z "$1" ]; then
    echo "usage: scripts/gpu_check.sh [--cpu-smoke] OUT_DIR   (deadline: GPU_CHECK_DEADLINE seconds, default 450)" >&2
    exit 64
fi
if [ "$SMOKE" = 0 ] && { ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L 2>/dev/null | grep -q "^GPU"; }; then
    echo "gpu_check: no NVIDIA GPU is visible on this machine (nvidia-smi missing or lists no GPU):" \
         "nothing to validate. Run scripts/gpu_check.sh on a machine with a GPU (or --cpu-smoke)." >&2
    exit 2
fi
DEADLINE=${GPU_CHECK_DEADLINE:-450}
WORKERS=${TEST_WORKERS:-12}
for pair in "GPU_CHECK_DEADLINE:$DEADLINE" "TEST_WORKERS:$WORKERS"; do
    case "${pair#*:}" in
        ''|*[!0-9]*) echo "gpu_check: ${pair%%:*} must be a whole number, got '${pair#*:}'" >&2; exit 64;;
    esac
done
OUT=$(mkdir -p "$1" && cd "$1" && pwd)
mkdir -p "$OUT/steps"
START=$(date +%s)
STEP=0
BUILT=0
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"

record() {  # number name status seconds note
    printf '{"name": "%s", "status": "%s", "seconds": %s, "note": "%s"}\n' "$2" "$3" "$4" "$5" \
        > "$OUT/steps/$(printf '%02d' "$1")-$2.json"
    "$PY" scripts/gpu_validate.py summary "$OUT" >/dev/null 2>&1 || true
}

left() { echo $((DEADLINE - ($(date +%s) - START))); }

run_numbered() {  # number name cap_seconds command...: status 0 only when the step ran and passed
    local num=$1 name=$2 cap=$3
    shift 3
    local limit rest
    rest=$(left)
    limit=$(( cap < rest ? cap : rest ))
    local log="$OUT/steps/$(printf '%02d' "$num")-$name.log"
    if [ "$limit" -lt 10 ]; then
        echo "gpu_check: $name not run (deadline reached)"
        record "$num" "$name" deadline 0 "deadline reached"
        return 1
    fi
    echo "gpu_check: $name (at most ${limit}s) ..."
    local t0 rc status note
    t0=$(date +%s)
    STEP_LOG=$log STEP_LIMIT=$limit timeout --kill-after=10 "$limit" "$@" > "$log" 2>&1
    rc=$?
    case $rc in
        0) status=pass; note="";;
        124|137) status=timeout; note="stopped after ${limit}s";;
        *) status=fail; note="exit $rc; see $(basename "$log")";;
    esac
    echo "gpu_check: $name $status ($(( $(date +%s) - t0 ))s)"
    record "$num" "$name" "$status" "$(( $(date +%s) - t0 ))" "$note"
    [ "$status" = pass ]
}

run_step() {  # name cap_seconds command...
    STEP=$((STEP + 1))
    run_numbered "$STEP" "$@"
}

mark_step() {  # name status note: a step that does not run
    STEP=$((STEP + 1))
    echo "gpu_check: $1 $2 ($3)"
    record "$STEP" "$1" "$2" 0 "$3"
}

validate() {  # scripts/gpu_validate.py, with --cpu-smoke on the CPU smoke
    if [ "$SMOKE" = 1 ]; then
        "$PY" scripts/gpu_validate.py --cpu-smoke "$@"
    else
        "$PY" scripts/gpu_validate.py "$@"
    fi
}

env_info() {
    if [ "$SMOKE" = 0 ]; then
        nvidia-smi
        echo
        (command -v nvcc >/dev/null && nvcc --version) || "${CUDA_HOME:-/usr/local/cuda}/bin/nvcc" --version ||
            echo "nvcc: not found"
        echo
    fi
    validate env "$OUT"
}

errors_reach_python() {  # a C++ error of the op (TORCH_CHECK) must arrive as ValueError, not crash Python
    local rc
    "$PY" -c "
import torch
from ptl_ext import ops
try:
    ops.bconv_cell_update(torch.randn(2, 6, 3, 3))
except ValueError as exc:
    print('C++ errors reach Python:', str(exc).splitlines()[0])
else:
    raise SystemExit('bconv_cell_update accepted a 3-D gates tensor')
"
    rc=$?
    if [ "$rc" -gt 128 ]; then
        echo "gpu_check: C++ error check crashed (signal $((rc - 128))): the library cannot raise C++ errors"
    fi
    return "$rc"
}

build_with() {  # CXX: build in place for this GPU (or TORCH_CUDA_ARCH_LIST), then check the result
    local arch
    arch=${TORCH_CUDA_ARCH_LIST:-$("$PY" -c "import torch; print('%d.%d' % torch.cuda.get_device_capability())")}
    echo "gpu_check: C++ compiler: ${1:-the default (CXX unset)}"
    env ${1:+CXX="$1"} ${2:+CC="$2"} PTL_EXT_FORCE_CUDA=1 TORCH_CUDA_ARCH_LIST="$arch" \
        MAX_JOBS=${MAX_JOBS:-$(nproc)} "$PY" setup.py build_ext --inplace &&
    "$PY" -c "from ptl_ext import ops; assert ops.CELL_HAS_CUDA, 'the build has no CUDA kernels'; print('CUDA kernels')" &&
    errors_reach_python
}

build() {  # with the machine's compiler; if its library cannot raise C++ errors, with the system g++
    local used=${CXX:-default} rc
    build_with "${CXX:-}" "${CC:-}"
    rc=$?
    if [ "$rc" != 0 ] && [ -x /usr/bin/g++ ] && [ "${CXX:-}" != /usr/bin/g++ ] &&
        grep -q "does not link libstdc++ dynamically\|C++ error check crashed" "$STEP_LOG"; then
        echo "gpu_check: rebuilding with the system compiler /usr/bin/g++"
        used=/usr/bin/g++
        build_with /usr/bin/g++ /usr/bin/gcc
        rc=$?
    fi
    printf '{"cxx": "%s", "ok": %s}\n' "$used" "$([ "$rc" = 0 ] && echo true || echo false)" > "$OUT/build.json"
    return "$rc"
}

suite() {  # the test suite; stops starting tests 25 s before its step's limit so junit.xml gets written
    local extra=()
    if "$PY" -c "import xdist" 2>/dev/null; then
        extra+=(-n "$WORKERS")
    fi
    if "$PY" -c "import pytest_timeout" 2>/dev/null; then
        extra+=(--timeout=150)  # a hung test fails alone instead of holding the run
    fi
    local files=(tests)
    [ "$SMOKE" = 1 ] && files=(tests/test_info.py tests/test_package.py)  # the command, not the suite
    # one thread per worker: 12 workers x a thread per core each would oversubscribe the host
    OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 PTL_EXT_TEST_DEADLINE=$(( $(date +%s) + STEP_LIMIT - 25 )) \
        "$PY" -m pytest "${files[@]}" "${extra[@]}" -q -rfE --durations=15 -p no:cacheprovider \
        --junitxml="$OUT/junit.xml"
}

sanitizer() {  # tool: compute-sanitizer over the sanitize cases (the cases alone on the CPU smoke)
    if [ "$SMOKE" = 1 ]; then
        validate sanitize
        return
    fi
    local tool=$1 exe
    exe=$(command -v compute-sanitizer || echo "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer")
    # without the caching allocator every tensor is its own allocation, so reads past one are caught
    PYTORCH_NO_CUDA_MEMORY_CACHING=1 "$exe" --tool "$tool" --error-exitcode 1 "$PY" scripts/gpu_validate.py sanitize
}

export -f validate env_info errors_reach_python build_with build suite sanitizer
export PY OUT SMOKE WORKERS
run_step env 30 bash -c env_info
if [ "$SMOKE" = 1 ]; then  # the extension as built: only the check that its C++ errors reach Python
    run_step build 60 bash -c errors_reach_python && BUILT=1
else
    run_step build 200 bash -c build && BUILT=1
fi
SANITIZER_OK=1
if [ "$SMOKE" = 0 ] && ! command -v compute-sanitizer >/dev/null 2>&1 &&
    [ ! -x "${CUDA_HOME:-/usr/local/cuda}/bin/compute-sanitizer" ]; then
    SANITIZER_OK=0
fi
if [ "$BUILT" = 1 ]; then
    run_step rerank 90 bash -c 'validate rerank "$OUT"'
    run_step cell 100 bash -c 'validate cell "$OUT"'
    run_step models 100 bash -c 'validate models "$OUT"'
    # the rest measures no time: side by side, each to at most its cap and the deadline
    pids=()
    cap=$(( $(left) - 5 ))
    cap=$(( cap < 200 ? cap : 200 ))
    STEP=$((STEP + 1)); run_numbered "$STEP" tests "$cap" bash -c suite & pids+=($!)
    for tool in memcheck racecheck; do
        if [ "$SANITIZER_OK" = 1 ]; then
            STEP=$((STEP + 1)); run_numbered "$STEP" "$tool" "$cap" bash -c "sanitizer $tool" &
            pids+=($!)
        else
            mark_step "$tool" skipped "compute-sanitizer not found"
        fi
    done
    wait "${pids[@]}"
else
    for name in rerank cell models tests memcheck racecheck; do mark_step "$name" not-run "no CUDA build"; done
fi
"$PY" scripts/gpu_validate.py summary "$OUT" > /dev/null
echo "gpu_check: summary in $OUT/summary.md"
cat "$OUT/summary.md"
"$PY" -c "import json, sys; sys.exit(0 if json.load(open(sys.argv[1]))['ok'] else 1)" "$OUT/summary.json"

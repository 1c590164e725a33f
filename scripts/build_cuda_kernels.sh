#!/usr/bin/env bash
# Compiles the CUDA kernel files with nvcc alone (sm_80, sm_90) and runs the host-side math test.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH=/usr/local/cuda/bin:$PATH
fi
cmake -S . -B cmake-build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$(command -v nvcc)"
cmake --build cmake-build -j "${MAX_JOBS:-2}"
ctest --test-dir cmake-build --output-on-failure

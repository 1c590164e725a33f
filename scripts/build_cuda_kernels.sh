#!/usr/bin/env bash
# Compiles the CUDA kernel files with nvcc alone and runs the host-side math test. The architectures are
# those setup.py builds by default (see ptl_ext/_build_config.py; without a CUDA torch its fallback list),
# unless CUDA_ARCHITECTURES gives a CMake list ("80-real;90"). ptxas spills are errors.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
    export PATH=/usr/local/cuda/bin:$PATH
fi
NVCC=$(command -v nvcc)
ARCHS=${CUDA_ARCHITECTURES:-$("${PYTHON:-python3}" ptl_ext/_build_config.py --cmake-architectures "$NVCC")}
echo "build_cuda_kernels: CMAKE_CUDA_ARCHITECTURES=$ARCHS"
cmake -S . -B cmake-build -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_COMPILER="$NVCC" -DCMAKE_CUDA_ARCHITECTURES="$ARCHS"
cmake --build cmake-build -j "${MAX_JOBS:-2}"
ctest --test-dir cmake-build --output-on-failure
# float and double keep accurate activations: no tanh.approx.f32 in their kernels' PTX (fast math, or
# the 16-bit types' fast policy leaking into them, would put it there).
PTX=$(mktemp)
trap 'rm -f "$PTX"' EXIT
"$NVCC" -std=c++17 -O3 -I csrc -arch=compute_90 --ptx csrc/cell/cell_cuda.cu -o "$PTX"
approx=$(awk '/^\.entry/ {name = $2} /tanh\.approx\.f32/ && name ~ /kernelI[fd]Li/ {print name}' "$PTX" | sort -u)
if [ -n "$approx" ]; then
    echo "build_cuda_kernels: approximate tanh in float/double kernels:" >&2
    echo "$approx" >&2
    exit 1
fi
echo "build_cuda_kernels: float/double cell kernels use accurate activations"

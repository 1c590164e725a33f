#!/usr/bin/env bash
# Type-checks the torch-facing CUDA glue (csrc/**/*_cuda_glue.cpp) without a CUDA build of torch:
# g++ -fsyntax-only against the installed torch headers and the CUDA toolkit's headers. The CPU
# wheel lacks one generated header, and a bare toolkit lacks cuBLAS/cuSPARSE/cuSOLVER, whose handle
# and status types torch's CUDA headers name; a temporary folder declares just those (the glue uses
# none of them), so every line of the glue itself is compiled. Needs torch and the CUDA headers.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python_env.sh >/dev/null
CUDA_INCLUDE=${CUDA_HOME:-/usr/local/cuda}/include
if ! TORCH_INCLUDE=$("$PY" -c "import os, torch; print(os.path.join(os.path.dirname(torch.__file__), 'include'))"); then
    echo "check_cuda_glue: torch is not importable (run scripts/setup_env.sh first)" >&2
    exit 1
fi
if [ ! -f "$CUDA_INCLUDE/cuda_runtime.h" ] || [ ! -f "$TORCH_INCLUDE/ATen/cuda/CUDAContext.h" ]; then
    echo "check_cuda_glue: no CUDA toolkit headers or no torch CUDA headers: skipped"
    exit 0
fi
SHIM=$(mktemp -d)
trap 'rm -rf "$SHIM"' EXIT
mkdir -p "$SHIM/c10/cuda/impl"
declare_if_missing() {  # header, declarations
    if [ ! -f "$CUDA_INCLUDE/$1" ] && [ ! -f "$TORCH_INCLUDE/$1" ]; then
        printf '#pragma once\n%s\n' "$2" > "$SHIM/$1"
    fi
}
declare_if_missing c10/cuda/impl/cuda_cmake_macros.h '#define C10_CUDA_BUILD_SHARED_LIBS'
declare_if_missing cublas_v2.h '#include <cuda_runtime.h>
typedef struct cublasContext* cublasHandle_t;
typedef enum { CUBLAS_STATUS_SUCCESS = 0 } cublasStatus_t;'
declare_if_missing cublasLt.h 'typedef struct cublasLtContext* cublasLtHandle_t;'
declare_if_missing cusparse.h 'typedef struct cusparseContext* cusparseHandle_t;
typedef enum { CUSPARSE_STATUS_SUCCESS = 0 } cusparseStatus_t;'
declare_if_missing cusolverDn.h 'typedef struct cusolverDnContext* cusolverDnHandle_t;'
declare_if_missing cusolver_common.h 'typedef enum { CUSOLVER_STATUS_SUCCESS = 0 } cusolverStatus_t;'
PY_INCLUDE=$("$PY" -c "import sysconfig; print(sysconfig.get_paths()['include'])")
status=0
for glue in $(find csrc -name '*_cuda_glue.cpp' | sort); do
    if g++ -std=c++20 -fsyntax-only -DTORCH_EXTENSION_NAME=_C -I "$SHIM" -I csrc \
        -isystem "$TORCH_INCLUDE" -isystem "$TORCH_INCLUDE/torch/csrc/api/include" -isystem "$CUDA_INCLUDE" \
        -isystem "$PY_INCLUDE" -Wall -Wextra -Werror "$glue"; then
        echo "check_cuda_glue: $glue compiles"
    else
        status=1
    fi
done
exit $status

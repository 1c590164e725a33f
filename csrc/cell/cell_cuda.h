// CUDA launchers of the BConv-Cell update over raw pointers and a stream. No torch header: this file
// and cell_cuda.cu compile with nvcc alone (see CMakeLists.txt).
//
// T is float, double, __half or __nv_bfloat16 (math in float for the 16-bit types). Tensors are
// contiguous: gates [B, 4K, H, W], the others [B, K, H, W]; khw = K*H*W. Null c_prev: zero state;
// null dy / dc: zero incoming gradient; null dc_prev: that gradient is not written.
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

namespace ptl_ext {
namespace cell {
namespace cuda {

template <typename T>
cudaError_t launch_forward(const T* gates, const T* c_prev, T* y, T* c, int64_t batch, int64_t khw,
                           cudaStream_t stream);

template <typename T>
cudaError_t launch_backward(const T* gates, const T* c_prev, const T* c, const T* dy, const T* dc, T* dgates,
                            T* dc_prev, int64_t batch, int64_t khw, cudaStream_t stream);

}  // namespace cuda
}  // namespace cell
}  // namespace ptl_ext

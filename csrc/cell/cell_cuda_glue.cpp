// CUDA implementation of ptl_ext::bconv_cell_update(_backward): checks, then the launchers of
// cell_cuda.cu on the current stream. Compiled only in a CUDA build (setup.py adds the *_cuda_glue.cpp files).
// The checks (devices included) run before the device guard is taken: one CPU tensor among CUDA ones
// dispatches here and must get a ValueError naming it, not the guard's error about a CPU device.
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <torch/library.h>

#include "cell/cell_cuda.h"
#include "cell/cell_op.h"

namespace ptl_ext {
namespace cell {
namespace {

// The CUDA type that has the memory layout of each ATen scalar type.
template <typename T>
struct CudaType {
  using type = T;
};
template <>
struct CudaType<at::Half> {
  using type = __half;
};
template <>
struct CudaType<at::BFloat16> {
  using type = __nv_bfloat16;
};

template <typename T>
const typename CudaType<T>::type* cuda_ptr(const T* p) {
  return reinterpret_cast<const typename CudaType<T>::type*>(p);
}

template <typename T>
typename CudaType<T>::type* cuda_ptr(T* p) {
  return reinterpret_cast<typename CudaType<T>::type*>(p);
}

std::tuple<at::Tensor, at::Tensor> bconv_cell_update_cuda(const at::Tensor& gates,
                                                          const c10::optional<at::Tensor>& c_prev) {
  auto t = prepare_forward(gates, c_prev);
  const c10::cuda::CUDAGuard guard(gates.device());
  const auto stream = c10::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, t.gates.scalar_type(), "bconv_cell_update_cuda", [&] {
    C10_CUDA_CHECK(cuda::launch_forward(cuda_ptr(t.gates.const_data_ptr<scalar_t>()),
                                        cuda_ptr(data_or_null<scalar_t>(t.c_prev)),
                                        cuda_ptr(t.y.mutable_data_ptr<scalar_t>()),
                                        cuda_ptr(t.c.mutable_data_ptr<scalar_t>()), t.batch, t.khw, stream));
  });
  return {t.y, t.c};
}

std::tuple<at::Tensor, at::Tensor> bconv_cell_update_backward_cuda(
    const at::Tensor& gates, const c10::optional<at::Tensor>& c_prev, const at::Tensor& c,
    const c10::optional<at::Tensor>& grad_y, const c10::optional<at::Tensor>& grad_c, bool need_grad_c_prev) {
  auto t = prepare_backward(gates, c_prev, c, grad_y, grad_c, need_grad_c_prev);
  const c10::cuda::CUDAGuard guard(gates.device());
  const auto stream = c10::cuda::getCurrentCUDAStream().stream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, t.gates.scalar_type(), "bconv_cell_update_backward_cuda", [&] {
        C10_CUDA_CHECK(cuda::launch_backward(
            cuda_ptr(t.gates.const_data_ptr<scalar_t>()), cuda_ptr(data_or_null<scalar_t>(t.c_prev)),
            cuda_ptr(t.c.const_data_ptr<scalar_t>()), cuda_ptr(data_or_null<scalar_t>(t.dy)),
            cuda_ptr(data_or_null<scalar_t>(t.dc)), cuda_ptr(t.dgates.mutable_data_ptr<scalar_t>()),
            cuda_ptr(mutable_data_or_null<scalar_t>(t.dc_prev)), t.batch, t.khw, stream));
      });
  return {t.dgates, t.dc_prev};
}

}  // namespace
}  // namespace cell
}  // namespace ptl_ext

TORCH_LIBRARY_IMPL(ptl_ext, CUDA, m) {
  m.impl("bconv_cell_update", &ptl_ext::cell::bconv_cell_update_cuda);
  m.impl("bconv_cell_update_backward", &ptl_ext::cell::bconv_cell_update_backward_cuda);
}

// CPU implementation of ptl_ext::bconv_cell_update(_backward): checks, then the SIMD kernel family
// that this CPU supports (chosen at run time, see common/cpu_isa.h).
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include "cell/cell_cpu_kernels.h"
#include "cell/cell_op.h"
#include "common/cpu_isa.h"

namespace ptl_ext {
namespace cell {
namespace {

template <typename T>
void forward_cpu(const ForwardTensors& t, T* y, T* c) {
  const T* gates = t.gates.const_data_ptr<T>();
  const T* c_prev = data_or_null<T>(t.c_prev);
  switch (cpu_isa()) {
#if defined(__x86_64__) || defined(_M_X64)
    case CpuIsa::Avx512:
      return AVX512::forward<T>(gates, c_prev, y, c, t.batch, t.khw);
    case CpuIsa::Avx2:
      return AVX2::forward<T>(gates, c_prev, y, c, t.batch, t.khw);
#endif
    default:
      return DEFAULT::forward<T>(gates, c_prev, y, c, t.batch, t.khw);
  }
}

template <typename T>
void backward_cpu(BackwardTensors& t) {
  const T* gates = t.gates.const_data_ptr<T>();
  const T* c_prev = data_or_null<T>(t.c_prev);
  const T* c = t.c.const_data_ptr<T>();
  const T* dy = data_or_null<T>(t.dy);
  const T* dc = data_or_null<T>(t.dc);
  T* dgates = t.dgates.mutable_data_ptr<T>();
  T* dc_prev = mutable_data_or_null<T>(t.dc_prev);
  switch (cpu_isa()) {
#if defined(__x86_64__) || defined(_M_X64)
    case CpuIsa::Avx512:
      return AVX512::backward<T>(gates, c_prev, c, dy, dc, dgates, dc_prev, t.batch, t.khw);
    case CpuIsa::Avx2:
      return AVX2::backward<T>(gates, c_prev, c, dy, dc, dgates, dc_prev, t.batch, t.khw);
#endif
    default:
      return DEFAULT::backward<T>(gates, c_prev, c, dy, dc, dgates, dc_prev, t.batch, t.khw);
  }
}

std::tuple<at::Tensor, at::Tensor> bconv_cell_update_cpu(const at::Tensor& gates,
                                                         const c10::optional<at::Tensor>& c_prev) {
  auto t = prepare_forward(gates, c_prev);
  if (t.y.numel() > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, t.gates.scalar_type(), "bconv_cell_update_cpu", [&] {
      forward_cpu<scalar_t>(t, t.y.mutable_data_ptr<scalar_t>(), t.c.mutable_data_ptr<scalar_t>());
    });
  }
  return {t.y, t.c};
}

std::tuple<at::Tensor, at::Tensor> bconv_cell_update_backward_cpu(
    const at::Tensor& gates, const c10::optional<at::Tensor>& c_prev, const at::Tensor& c,
    const c10::optional<at::Tensor>& grad_y, const c10::optional<at::Tensor>& grad_c, bool need_grad_c_prev) {
  auto t = prepare_backward(gates, c_prev, c, grad_y, grad_c, need_grad_c_prev);
  if (t.dgates.numel() > 0) {
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, t.gates.scalar_type(), "bconv_cell_update_backward_cpu",
                                   [&] { backward_cpu<scalar_t>(t); });
  }
  return {t.dgates, t.dc_prev};
}

}  // namespace
}  // namespace cell
}  // namespace ptl_ext

TORCH_LIBRARY_IMPL(ptl_ext, CPU, m) {
  m.impl("bconv_cell_update", &ptl_ext::cell::bconv_cell_update_cpu);
  m.impl("bconv_cell_update_backward", &ptl_ext::cell::bconv_cell_update_backward_cpu);
}

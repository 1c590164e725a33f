// Device-independent half of the BConv-Cell op: argument checks, contiguous views and output
// allocation. The CPU and CUDA glue call these, then map the kernels over the raw pointers.
#pragma once

#include <ATen/ATen.h>

namespace ptl_ext {
namespace cell {

struct ForwardTensors {
  at::Tensor gates;   // contiguous [B, 4K, H, W]
  at::Tensor c_prev;  // contiguous [B, K, H, W], or undefined for a zero state
  at::Tensor y, c;    // freshly allocated contiguous outputs
  int64_t batch, khw;
};

struct BackwardTensors {
  at::Tensor gates, c_prev, c;  // as saved by the forward (c_prev may be undefined)
  at::Tensor dy, dc;            // contiguous incoming gradients, each possibly undefined
  at::Tensor dgates;            // [B, 4K, H, W] output
  at::Tensor dc_prev;           // [B, K, H, W] output, or a [0] tensor when not wanted
  int64_t batch, khw;
};

// Dtypes: float32, float64, bfloat16, and on CUDA also float16.
ForwardTensors prepare_forward(const at::Tensor& gates, const c10::optional<at::Tensor>& c_prev);

BackwardTensors prepare_backward(const at::Tensor& gates, const c10::optional<at::Tensor>& c_prev, const at::Tensor& c,
                                 const c10::optional<at::Tensor>& grad_y, const c10::optional<at::Tensor>& grad_c,
                                 bool need_grad_c_prev);

// Raw pointer of an optional input: nullptr when undefined.
template <typename T>
const T* data_or_null(const at::Tensor& t) {
  return t.defined() ? t.const_data_ptr<T>() : nullptr;
}

template <typename T>
T* mutable_data_or_null(at::Tensor& t) {
  return t.numel() > 0 ? t.mutable_data_ptr<T>() : nullptr;
}

}  // namespace cell
}  // namespace ptl_ext

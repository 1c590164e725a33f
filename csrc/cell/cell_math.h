// Per-element math of the fused BConv-Cell update, written once.
//
// Every function is a template over the value type T and an activation policy Act that supplies
// Act::sigmoid and Act::tanh for T. The CUDA kernels and the scalar CPU tail map these with
// ScalarAct over float/double; the SIMD CPU kernels map the very same functions with a policy
// over at::vec::Vectorized<float/double>. No torch header is included here.
#pragma once

#include <cmath>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define PTL_HD __host__ __device__ __forceinline__
#else
#define PTL_HD inline
#endif

namespace ptl_ext {
namespace cell {

// sigmoid and tanh for plain float/double, on host and device.
struct ScalarAct {
  PTL_HD static float sigmoid(float x) { return 1.0f / (1.0f + ::expf(-x)); }
  PTL_HD static double sigmoid(double x) { return 1.0 / (1.0 + ::exp(-x)); }
  PTL_HD static float tanh(float x) { return ::tanhf(x); }
  PTL_HD static double tanh(double x) { return ::tanh(x); }
};

// Forward: (a_i, a_f, a_o, a_g, c_prev) -> (y, c).
template <typename Act, typename T>
PTL_HD void forward(T a_i, T a_f, T a_o, T a_g, T c_prev, T& y, T& c) {
  const T i = Act::sigmoid(a_i);
  const T f = Act::sigmoid(a_f);
  const T o = Act::sigmoid(a_o);
  const T g = Act::tanh(a_g);
  c = f * c_prev + i * g;
  y = o * Act::tanh(c);
}

// Backward from the saved (gates, c_prev, c) and the incoming (dy, dc_out).
template <typename Act, typename T>
PTL_HD void backward(T a_i, T a_f, T a_o, T a_g, T c_prev, T c, T dy, T dc_out, T& da_i, T& da_f, T& da_o, T& da_g,
                     T& dc_prev) {
  const T one(1);
  const T i = Act::sigmoid(a_i);
  const T f = Act::sigmoid(a_f);
  const T o = Act::sigmoid(a_o);
  const T g = Act::tanh(a_g);
  const T t = Act::tanh(c);
  const T dc = dc_out + dy * o * (one - t * t);
  da_i = dc * g * i * (one - i);
  da_f = dc * c_prev * f * (one - f);
  da_o = dy * t * o * (one - o);
  da_g = dc * i * (one - g * g);
  dc_prev = dc * f;
}

}  // namespace cell
}  // namespace ptl_ext

// CUDA kernels of the BConv-Cell update: cell_math.h mapped over tensors, one thread per pack of
// 16 bytes (8 halves / bfloat16s, 4 floats) when every pointer and the row length allow it, else one
// element per thread, with 32-bit indexing (and a multiply-shift division by the row length) whenever
// the largest tensor fits.
//
// Activations, per type (the build uses no --use_fast_math): float and double use the accurate
// tanhf/expf (within a few ulp, as the CPU kernels). The 16-bit types compute in float with hardware
// approximations whose error lies below their rounding step. The 16-bit forward moves 14 bytes an
// element, so it is bounded by the special-function unit (16 results per clock per SM) unless it
// issues few of them: sigmoid takes one ex2 and one rcp, tanh the single tanh.approx.f32 (relative
// error 2^-11; 8 special-function results an element instead of 10). The backward needs 1 - tanh^2
// accurate near saturation, where tanh.approx's relative error would dominate, and moves 26 bytes an
// element: it keeps tanh from ex2 and rcp (FastFloatAct).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <type_traits>

#include "cell/cell_cuda.h"
#include "cell/cell_math.h"
#include "cell/index_math.h"

namespace ptl_ext {
namespace cell {
namespace cuda {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t(1) << 20;

template <typename T>
struct Acc {
  using type = T;
  static __device__ __forceinline__ T load(T x) { return x; }
  static __device__ __forceinline__ T store(T x) { return x; }
};
template <>
struct Acc<__half> {
  using type = float;
  static __device__ __forceinline__ float load(__half x) { return __half2float(x); }
  static __device__ __forceinline__ __half store(float x) { return __float2half_rn(x); }
};
template <>
struct Acc<__nv_bfloat16> {
  using type = float;
  static __device__ __forceinline__ float load(__nv_bfloat16 x) { return __bfloat162float(x); }
  static __device__ __forceinline__ __nv_bfloat16 store(float x) { return __float2bfloat16_rn(x); }
};

// sigmoid and tanh of float from the hardware exponential (__expf) and a fast division, for the 16-bit
// types only. tanh(x) = 1 - 2 / (1 + e^2x) keeps an absolute error of ~1e-7 everywhere, also near
// saturation where the backward's 1 - tanh^2 needs it (tanh.approx.f32 is only ~2^-11 relative);
// +-inf give +-1 and NaN stays NaN.
struct FastFloatAct {
  static __device__ __forceinline__ float sigmoid(float x) { return __fdividef(1.0f, 1.0f + __expf(-x)); }
  static __device__ __forceinline__ float tanh(float x) { return 1.0f - __fdividef(2.0f, 1.0f + __expf(2.0f * x)); }
};

__device__ __forceinline__ float ex2_approx(float x) {
  float r;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
}

__device__ __forceinline__ float rcp_approx(float x) {
  float r;
  asm("rcp.approx.ftz.f32 %0, %1;" : "=f"(r) : "f"(x));
  return r;
}

// The 16-bit forward's activations (see the file comment): two special-function results for a sigmoid
// (ex2, rcp), one for tanh. +-inf give 0 or 1 and +-1; NaN stays NaN.
struct FastForwardAct {
  static __device__ __forceinline__ float sigmoid(float x) {
    return rcp_approx(1.0f + ex2_approx(-1.4426950408889634f * x));
  }
  static __device__ __forceinline__ float tanh(float x) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 750
    float r;
    asm("tanh.approx.f32 %0, %1;" : "=f"(r) : "f"(x));
    return r;
#else
    return FastFloatAct::tanh(x);
#endif
  }
};

// The activation policies of each storage type: accurate where the type carries the precision.
template <typename T>
constexpr bool kAccurate = std::is_same_v<typename Acc<T>::type, T>;
template <typename T>
using ActFor = std::conditional_t<kAccurate<T>, ScalarAct, FastFloatAct>;

// Pack stores of float values into a 16-bit type: pairs are converted by one instruction.
template <typename T, int V>
struct Store;
template <int V>
struct Store<__half, V> {
  static __device__ __forceinline__ void pack(__half (&out)[V], const float (&v)[V]) {
    if constexpr (V % 2 == 0) {
#pragma unroll
      for (int k = 0; k < V; k += 2) *reinterpret_cast<__half2*>(&out[k]) = __floats2half2_rn(v[k], v[k + 1]);
    } else {
#pragma unroll
      for (int k = 0; k < V; ++k) out[k] = __float2half_rn(v[k]);
    }
  }
};
template <int V>
struct Store<__nv_bfloat16, V> {
  static __device__ __forceinline__ void pack(__nv_bfloat16 (&out)[V], const float (&v)[V]) {
    if constexpr (V % 2 == 0) {
#pragma unroll
      for (int k = 0; k < V; k += 2) {
        *reinterpret_cast<__nv_bfloat162*>(&out[k]) = __floats2bfloat162_rn(v[k], v[k + 1]);
      }
    } else {
#pragma unroll
      for (int k = 0; k < V; ++k) out[k] = __float2bfloat16_rn(v[k]);
    }
  }
};

// Batch row of pack n (`row` packs a row): a multiply-shift for 32-bit indices, a division for 64-bit ones.
template <typename I>
struct RowOf {
  explicit RowOf(I) {}
  __device__ __forceinline__ I operator()(I n, I row) const { return n / row; }
};
template <>
struct RowOf<uint32_t> {
  FastDivider div;
  explicit RowOf(uint32_t row) : div(row) {}
  __device__ __forceinline__ uint32_t operator()(uint32_t n, uint32_t) const { return div.div(n); }
};

template <typename T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

// Index space: packs of V elements; `row` packs per batch row of a [B, K, H, W] tensor.
template <typename T, int V, typename I>
__global__ void __launch_bounds__(kThreads)
    forward_kernel(const T* __restrict__ gates, const T* __restrict__ c_prev, T* __restrict__ y, T* __restrict__ c,
                   I row, RowOf<I> row_of, I total) {
  using P = Pack<T, V>;
  using A = Acc<T>;
  using F = typename A::type;
  const P* g = reinterpret_cast<const P*>(gates);
  for (I n = I(blockIdx.x) * kThreads + threadIdx.x; n < total; n += I(gridDim.x) * kThreads) {
    const I gi = n + 3 * row_of(n, row) * row;  // = b * 4 * row + (n - b * row): the i-chunk of this row
    const P ai = g[gi], af = g[gi + row], ao = g[gi + 2 * row], ag = g[gi + 3 * row];
    P cp;
    if (c_prev != nullptr) {
      cp = reinterpret_cast<const P*>(c_prev)[n];
    }
    P yo, co;
    if constexpr (kAccurate<T>) {
#pragma unroll
      for (int k = 0; k < V; ++k) {
        forward<ScalarAct>(ai.v[k], af.v[k], ao.v[k], ag.v[k], c_prev != nullptr ? cp.v[k] : T(0), yo.v[k], co.v[k]);
      }
    } else {
      F yk[V], ck[V];
#pragma unroll
      for (int k = 0; k < V; ++k) {
        forward<FastForwardAct>(A::load(ai.v[k]), A::load(af.v[k]), A::load(ao.v[k]), A::load(ag.v[k]),
                                c_prev != nullptr ? A::load(cp.v[k]) : F(0), yk[k], ck[k]);
      }
      Store<T, V>::pack(yo.v, yk);
      Store<T, V>::pack(co.v, ck);
    }
    reinterpret_cast<P*>(y)[n] = yo;
    reinterpret_cast<P*>(c)[n] = co;
  }
}

template <typename T, int V, typename I>
__global__ void __launch_bounds__(kThreads)
    backward_kernel(const T* __restrict__ gates, const T* __restrict__ c_prev, const T* __restrict__ c,
                    const T* __restrict__ dy, const T* __restrict__ dc, T* __restrict__ dgates, T* __restrict__ dc_prev,
                    I row, RowOf<I> row_of, I total) {
  using P = Pack<T, V>;
  using A = Acc<T>;
  using F = typename A::type;
  const P* g = reinterpret_cast<const P*>(gates);
  P* dg = reinterpret_cast<P*>(dgates);
  for (I n = I(blockIdx.x) * kThreads + threadIdx.x; n < total; n += I(gridDim.x) * kThreads) {
    const I gi = n + 3 * row_of(n, row) * row;
    const P ai = g[gi], af = g[gi + row], ao = g[gi + 2 * row], ag = g[gi + 3 * row];
    const P cv = reinterpret_cast<const P*>(c)[n];
    P cp, dyv, dcv;
    if (c_prev != nullptr) cp = reinterpret_cast<const P*>(c_prev)[n];
    if (dy != nullptr) dyv = reinterpret_cast<const P*>(dy)[n];
    if (dc != nullptr) dcv = reinterpret_cast<const P*>(dc)[n];
    P d_i, d_f, d_o, d_g, d_cp;
#pragma unroll
    for (int k = 0; k < V; ++k) {
      F ri, rf, ro, rg, rcp;
      backward<ActFor<T>>(A::load(ai.v[k]), A::load(af.v[k]), A::load(ao.v[k]), A::load(ag.v[k]),
                          c_prev != nullptr ? A::load(cp.v[k]) : F(0), A::load(cv.v[k]),
                          dy != nullptr ? A::load(dyv.v[k]) : F(0), dc != nullptr ? A::load(dcv.v[k]) : F(0), ri, rf,
                          ro, rg, rcp);
      d_i.v[k] = A::store(ri);
      d_f.v[k] = A::store(rf);
      d_o.v[k] = A::store(ro);
      d_g.v[k] = A::store(rg);
      d_cp.v[k] = A::store(rcp);
    }
    dg[gi] = d_i;
    dg[gi + row] = d_f;
    dg[gi + 2 * row] = d_o;
    dg[gi + 3 * row] = d_g;
    if (dc_prev != nullptr) {
      reinterpret_cast<P*>(dc_prev)[n] = d_cp;
    }
  }
}

bool aligned(const void* p, int bytes) {
  return p == nullptr || reinterpret_cast<uintptr_t>(p) % bytes == 0;
}

int blocks_for(int64_t total) {
  return static_cast<int>(std::min((total + kThreads - 1) / kThreads, kMaxBlocks));
}

// Picks the pack width (16 bytes when possible) and the index type, then runs `launch(V, I)`.
// double stays at one element per thread: its tanh/exp need the registers two would spill.
template <typename T, typename Launch>
cudaError_t dispatch(int64_t batch, int64_t khw, bool all_aligned, Launch&& launch) {
  constexpr int kVec = sizeof(T) == 8 ? 1 : 16 / sizeof(T);
  const bool vec = all_aligned && khw % kVec == 0;
  const bool small = batch * 4 * khw < int64_t(std::numeric_limits<int32_t>::max());
  if (vec && small) return launch(std::integral_constant<int, kVec>(), uint32_t(0));
  if (vec) return launch(std::integral_constant<int, kVec>(), int64_t(0));
  if (small) return launch(std::integral_constant<int, 1>(), uint32_t(0));
  return launch(std::integral_constant<int, 1>(), int64_t(0));
}

}  // namespace

template <typename T>
cudaError_t launch_forward(const T* gates, const T* c_prev, T* y, T* c, int64_t batch, int64_t khw,
                           cudaStream_t stream) {
  if (batch * khw == 0) return cudaSuccess;
  const bool all_aligned = aligned(gates, 16) && aligned(c_prev, 16) && aligned(y, 16) && aligned(c, 16);
  return dispatch<T>(batch, khw, all_aligned, [&](auto vec, auto index) {
    constexpr int V = decltype(vec)::value;
    using I = decltype(index);
    const int64_t total = batch * khw / V;
    const I row = I(khw / V);
    forward_kernel<T, V, I>
        <<<blocks_for(total), kThreads, 0, stream>>>(gates, c_prev, y, c, row, RowOf<I>(row), I(total));
    return cudaGetLastError();
  });
}

template <typename T>
cudaError_t launch_backward(const T* gates, const T* c_prev, const T* c, const T* dy, const T* dc, T* dgates,
                            T* dc_prev, int64_t batch, int64_t khw, cudaStream_t stream) {
  if (batch * khw == 0) return cudaSuccess;
  const bool all_aligned = aligned(gates, 16) && aligned(c_prev, 16) && aligned(c, 16) && aligned(dy, 16) &&
                           aligned(dc, 16) && aligned(dgates, 16) && aligned(dc_prev, 16);
  return dispatch<T>(batch, khw, all_aligned, [&](auto vec, auto index) {
    constexpr int V = decltype(vec)::value;
    using I = decltype(index);
    const int64_t total = batch * khw / V;
    const I row = I(khw / V);
    backward_kernel<T, V, I><<<blocks_for(total), kThreads, 0, stream>>>(gates, c_prev, c, dy, dc, dgates, dc_prev, row,
                                                                         RowOf<I>(row), I(total));
    return cudaGetLastError();
  });
}

#define PTL_INSTANTIATE_CELL_CUDA(T)                                                                                  \
  template cudaError_t launch_forward<T>(const T*, const T*, T*, T*, int64_t, int64_t, cudaStream_t);                 \
  template cudaError_t launch_backward<T>(const T*, const T*, const T*, const T*, const T*, T*, T*, int64_t, int64_t, \
                                          cudaStream_t);

PTL_INSTANTIATE_CELL_CUDA(float)
PTL_INSTANTIATE_CELL_CUDA(double)
PTL_INSTANTIATE_CELL_CUDA(__half)
PTL_INSTANTIATE_CELL_CUDA(__nv_bfloat16)

}  // namespace cuda
}  // namespace cell
}  // namespace ptl_ext

// Entry points of the CPU BConv-Cell kernels, one set per instruction-set family.
//
// All tensors are contiguous: gates [B, 4K, H, W], the others [B, K, H, W]; khw = K*H*W.
// Null c_prev means a zero state; null dy / dc mean a zero incoming gradient; null dc_prev means
// that gradient is not wanted. No torch tensor crosses this boundary.
#pragma once

#include <cstdint>

#include <c10/util/BFloat16.h>

#define PTL_DECLARE_CELL_CPU_KERNELS(ISA)                                                                     \
  namespace ptl_ext {                                                                                         \
  namespace cell {                                                                                            \
  namespace ISA {                                                                                             \
  template <typename T>                                                                                       \
  void forward(const T* gates, const T* c_prev, T* y, T* c, int64_t batch, int64_t khw);                      \
  template <typename T>                                                                                       \
  void backward(const T* gates, const T* c_prev, const T* c, const T* dy, const T* dc, T* dgates, T* dc_prev, \
                int64_t batch, int64_t khw);                                                                  \
  }                                                                                                           \
  }                                                                                                           \
  }

PTL_DECLARE_CELL_CPU_KERNELS(DEFAULT)
PTL_DECLARE_CELL_CPU_KERNELS(AVX2)
PTL_DECLARE_CELL_CPU_KERNELS(AVX512)

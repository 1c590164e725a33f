// Division by a fixed 32-bit divisor with a multiply-high, an add and a shift (the divisor's magic
// number is found once on the host), for the kernels' index math. Valid for numerators and divisors
// below 2^31, which the 32-bit index path guarantees. No torch header is included here.
#pragma once

#include <cstdint>

#if defined(__CUDACC__) || defined(__HIPCC__)
#define PTL_IDX_HD __host__ __device__ __forceinline__
#else
#define PTL_IDX_HD inline
#endif

namespace ptl_ext {
namespace cell {

struct FastDivider {
  uint32_t divisor, magic, shift;

  explicit FastDivider(uint32_t d) : divisor(d), magic(0), shift(0) {
    while (shift < 32 && (uint64_t(1) << shift) < d) ++shift;
    magic = static_cast<uint32_t>(((uint64_t(1) << 32) * ((uint64_t(1) << shift) - d)) / d + 1);
  }

  PTL_IDX_HD uint32_t div(uint32_t n) const {
#if defined(__CUDA_ARCH__)
    const uint32_t t = __umulhi(n, magic);
#else
    const uint32_t t = static_cast<uint32_t>((uint64_t(n) * magic) >> 32);
#endif
    return (t + n) >> shift;
  }
};

}  // namespace cell
}  // namespace ptl_ext

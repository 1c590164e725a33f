#include "common/cpu_isa.h"

#include <cstdlib>
#include <cstring>

namespace ptl_ext {
namespace {

// What the CPU and the OS support (libgcc's check includes the OS saving the wide registers).
CpuIsa detected_isa() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("fma")) {
    return CpuIsa::Avx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) {
    return CpuIsa::Avx2;
  }
#endif
  return CpuIsa::Default;
}

// ATEN_CPU_CAPABILITY ("default", "avx2", "avx512") lowers the choice, as it does for ATen's kernels.
CpuIsa requested_cap() {
  const char* env = std::getenv("ATEN_CPU_CAPABILITY");
  if (env == nullptr) {
    return CpuIsa::Avx512;
  }
  if (std::strcmp(env, "default") == 0) {
    return CpuIsa::Default;
  }
  if (std::strcmp(env, "avx2") == 0) {
    return CpuIsa::Avx2;
  }
  return CpuIsa::Avx512;
}

}  // namespace

CpuIsa cpu_isa() {
  static const CpuIsa isa = [] {
    const CpuIsa detected = detected_isa();
    const CpuIsa cap = requested_cap();
    return static_cast<int>(detected) < static_cast<int>(cap) ? detected : cap;
  }();
  return isa;
}

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::Avx512:
      return "avx512";
    case CpuIsa::Avx2:
      return "avx2";
    default:
      return "default";
  }
}

}  // namespace ptl_ext

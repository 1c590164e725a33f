// AVX2 + FMA build of the CPU cell kernels; only called on CPUs that report it (common/cpu_isa.h).
#define CPU_CAPABILITY AVX2
#define CPU_CAPABILITY_AVX2
#include "common/isa_prelude.h"
#if defined(__x86_64__) || defined(_M_X64)
#include "cell/cell_cpu_simd.h"
#endif

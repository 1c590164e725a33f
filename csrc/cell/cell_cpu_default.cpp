// Portable build of the CPU cell kernels (no instruction-set extension assumed).
#define CPU_CAPABILITY DEFAULT
#define CPU_CAPABILITY_DEFAULT
#include "common/isa_prelude.h"
#include "cell/cell_cpu_simd.h"

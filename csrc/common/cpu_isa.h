// Run-time choice among the CPU kernel families compiled for several instruction sets.
//
// A kernel source is compiled once per family (DEFAULT, AVX2, AVX512) by small translation units
// that set CPU_CAPABILITY and a matching `#pragma GCC target` before including it (see
// isa_prelude.h); the family is picked at run time from what this CPU supports, honouring
// ATEN_CPU_CAPABILITY like ATen does, so a binary never executes instructions the CPU lacks.
#pragma once

namespace ptl_ext {

enum class CpuIsa { Default = 0, Avx2 = 1, Avx512 = 2 };

// The best family this CPU (and ATEN_CPU_CAPABILITY, if set) allows. Computed once.
CpuIsa cpu_isa();

const char* cpu_isa_name(CpuIsa isa);

}  // namespace ptl_ext

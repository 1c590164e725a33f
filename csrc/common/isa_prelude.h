// Included first by every per-instruction-set translation unit (cell_cpu_avx2.cpp, ...).
//
// Each such unit defines CPU_CAPABILITY (DEFAULT, AVX2 or AVX512) and the matching
// CPU_CAPABILITY_<ISA> macro, then includes this file and its kernel source; this file switches the
// compiler to that instruction set for the rest of the unit. Everything that is not ISA-specific is included here
// BEFORE the target pragma, so inline functions shared with other translation units (std::, c10::) are compiled for the
// baseline ISA only and the linker can never pick a wide-register copy of them for the portable path. Only at::vec
// (namespaced by CPU_CAPABILITY), our kernels, namespaced the same way, and sleef.h (plain declarations, which it only
// makes when the target macros such as __AVX2__ are on) follow the pragma.
#pragma once

#include <algorithm>
#include <cassert>
#include <cfloat>
#include <climits>
#include <cmath>
#include <complex>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <tuple>
#include <type_traits>

#include <ATen/AccumulateType.h>
#include <ATen/NumericUtils.h>
#include <ATen/Parallel.h>
#include <ATen/native/Math.h>
#include <ATen/native/cpu/zmath.h>
#include <ATen/native/quantized/AffineQuantizerBase.h>
#include <c10/util/BFloat16-math.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <c10/util/TypeCast.h>
#include <c10/util/complex.h>
#include <c10/util/irange.h>

#if !defined(CPU_CAPABILITY)
#error "define CPU_CAPABILITY (DEFAULT, AVX2 or AVX512) before including isa_prelude.h"
#endif

// g++ does not announce a pragma target to the preprocessor, while at::vec and sleef.h test the
// feature macros: define those that each target implies.
#if defined(__x86_64__) && (defined(CPU_CAPABILITY_AVX2) || defined(CPU_CAPABILITY_AVX512))
#if defined(CPU_CAPABILITY_AVX512)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt")
#ifndef __AVX512F__
#define __AVX512F__ 1
#endif
#ifndef __AVX512BW__
#define __AVX512BW__ 1
#endif
#ifndef __AVX512VL__
#define __AVX512VL__ 1
#endif
#ifndef __AVX512DQ__
#define __AVX512DQ__ 1
#endif
#else
#pragma GCC target("avx2,fma,f16c,bmi,bmi2,lzcnt,popcnt")
#endif
#ifndef __AVX__
#define __AVX__ 1
#endif
#ifndef __AVX2__
#define __AVX2__ 1
#endif
#ifndef __FMA__
#define __FMA__ 1
#endif
#ifndef __F16C__
#define __F16C__ 1
#endif
#ifndef __BMI__
#define __BMI__ 1
#endif
#ifndef __BMI2__
#define __BMI2__ 1
#endif
#ifndef __LZCNT__
#define __LZCNT__ 1
#endif
#ifndef __POPCNT__
#define __POPCNT__ 1
#endif
#endif

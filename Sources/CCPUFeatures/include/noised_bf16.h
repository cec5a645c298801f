#ifndef NOISED_BF16_H
#define NOISED_BF16_H

#if defined(__x86_64__) && defined(__AVX512BF16__)
#include <immintrin.h>

/// vcvtne2ps2bf16: 32 f32 values to bf16, round to nearest even, `low` first in memory. Swift
/// cannot import the intrinsic itself (it returns a vector of __bf16), so this returns the bits.
/// The instruction flushes subnormals to zero: callers check for them first. Only for modules
/// built with -mavx512bf16, on CPUs where noised_cpu_supports_avx512_bf16() says yes.
static inline __attribute__((always_inline)) __m512i noised_bf16_round_pack(__m512 low, __m512 high) {
    return (__m512i)_mm512_cvtne2ps_pbh(high, low);
}

/// The lanes of `x` holding a subnormal (vfpclassps category 0x20), where the instruction above
/// and round-to-nearest-even on the bit pattern differ. (A macro in C, so not importable either.)
static inline __attribute__((always_inline)) __mmask16 noised_subnormal_lanes(__m512 x) {
    return _mm512_fpclass_ps_mask(x, 0x20);
}
#endif

#endif

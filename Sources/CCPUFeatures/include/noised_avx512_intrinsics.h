#ifndef NOISED_AVX512_INTRINSICS_H
#define NOISED_AVX512_INTRINSICS_H

// Intrinsics the 512-bit kernel needs that Swift cannot import (macros taking an immediate, or
// functions of __bf16 vectors), as inline functions it can; they inline into the Swift code of a
// module built with the same target features.

#if defined(__x86_64__) && defined(__F16C__)
#include <immintrin.h>

/// vcvtps2ph: 8 f32 values to f16, rounded as MXCSR says (to nearest even unless changed), for the
/// 256-bit kernel (Swift's SIMD8 conversion is left out of line in large functions).
static inline __attribute__((always_inline)) __m128i noised_f16_round8(__m256 x) {
    return _mm256_cvtps_ph(x, _MM_FROUND_CUR_DIRECTION);
}
#endif

#if defined(__x86_64__) && defined(__AVX512F__)
#include <immintrin.h>

/// vcvtps2ph: 16 f32 values to f16, rounded as MXCSR says (to nearest even unless changed), as
/// the 256-bit form the AVX2 kernel uses.
static inline __attribute__((always_inline)) __m256i noised_f16_round(__m512 x) {
    return _mm512_cvtps_ph(x, _MM_FROUND_CUR_DIRECTION);
}
#endif

#if defined(__x86_64__) && defined(__AVX512BF16__)

/// vcvtne2ps2bf16: 32 f32 values to bf16, round to nearest even, `low` first in memory. Swift
/// cannot import the intrinsic itself (it returns a vector of __bf16), so this returns the bits.
/// The instruction flushes subnormals to zero: callers check for them first. Only for modules
/// built with -mavx512bf16, on CPUs where noised_cpu_supports_avx512_bf16() says yes.
static inline __attribute__((always_inline)) __m512i noised_bf16_round_pack(__m512 low, __m512 high) {
    return (__m512i)_mm512_cvtne2ps_pbh(high, low);
}

/// The lanes of `x` holding a subnormal (vfpclassps category 0x20), where the instruction above
/// and round-to-nearest-even on the bit pattern differ.
static inline __attribute__((always_inline)) __mmask16 noised_subnormal_lanes(__m512 x) {
    return _mm512_fpclass_ps_mask(x, 0x20);
}
#endif

#endif

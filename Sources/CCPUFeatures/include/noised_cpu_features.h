#ifndef NOISED_CPU_FEATURES_H
#define NOISED_CPU_FEATURES_H

/// 1 when this CPU and the OS support the AVX-512 subsets the wide noise kernel is built for
/// (F, BW, DQ, VL: x86-64-v4) and save the ZMM registers across context switches; 0 otherwise.
int noised_cpu_supports_x86_64_v4(void);

/// 1 when, in addition, the CPU has AVX512_BF16 (vcvtne2ps2bf16); 0 otherwise.
int noised_cpu_supports_avx512_bf16(void);

#endif

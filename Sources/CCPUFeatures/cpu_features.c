#include "noised_cpu_features.h"

#if defined(__x86_64__)
#include <cpuid.h>

static unsigned long long read_xcr0(void) {
    unsigned int eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((unsigned long long)edx << 32) | eax;
}

int noised_cpu_supports_x86_64_v4(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned int osxsave = 1u << 27, avx = 1u << 28, fma = 1u << 12, f16c = 1u << 29;
    if ((ecx & (osxsave | avx | fma | f16c)) != (osxsave | avx | fma | f16c)) return 0;
    // XMM, YMM, opmask, ZMM_Hi256 and Hi16_ZMM state all enabled by the OS.
    if ((read_xcr0() & 0xe6) != 0xe6) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    const unsigned int avx2 = 1u << 5, bmi2 = 1u << 8, avx512f = 1u << 16, avx512dq = 1u << 17,
                       avx512bw = 1u << 30, avx512vl = 1u << 31;
    const unsigned int wanted = avx2 | bmi2 | avx512f | avx512dq | avx512bw | avx512vl;
    return (ebx & wanted) == wanted;
}

int noised_cpu_supports_avx512_bf16(void) {
    unsigned int eax, ebx, ecx, edx;
    if (!noised_cpu_supports_x86_64_v4()) return 0;
    // Leaf 7 sub-leaf 1, EAX bit 5.
    if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx)) return 0;
    return (eax >> 5) & 1;
}
#else
int noised_cpu_supports_x86_64_v4(void) { return 0; }
int noised_cpu_supports_avx512_bf16(void) { return 0; }
#endif

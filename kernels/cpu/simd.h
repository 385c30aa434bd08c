#pragma once
// Hot loops are compiled twice, for AVX2 and for the x86-64 baseline, and the loader picks the
// best the CPU has. The arithmetic is the same sequence of IEEE operations in both (FMA
// contraction is off), so the results are identical on every machine.
//
// Element-wise loops (no reduction, so no lane order to keep) also get an AVX-512 clone.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define FLASHLINE_SIMD_CLONES __attribute__((target_clones("avx2", "default")))
#define FLASHLINE_ELEMENTWISE_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define FLASHLINE_SIMD_CLONES
#define FLASHLINE_ELEMENTWISE_CLONES
#endif

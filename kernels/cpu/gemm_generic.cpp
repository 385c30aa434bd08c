// Fast-mode GEMMs for CPUs without the AVX-512 level: one body written with 8-lane vector
// extensions, compiled twice, for AVX2+FMA (function target attribute) and for the x86-64
// baseline. FMA contraction is off for this library and every operation is the same IEEE
// operation in both builds, so the AVX2 and portable paths give identical results.
//
// - FP4: the exact integer scheme of gemm_avx512.cpp in fp32 lanes: a = q * 2^9 and w = 2 * e2m1
//   are integers, a lane sums 4 products (< 2^24, exact), lanes are summed as int32 and the
//   block converted to fp32 once; then the reference's scale and K-order steps. Bit-identical
//   to exact mode.
// - FP8: per 128-wide block, lane l (of 8) sums the products of inputs l, l+8, ... in order
//   (products of e4m3 values are exact in fp32), the lanes are combined in a fixed tree; then the
//   reference's scale and K-order steps.
// - BF16 weights: 8 fp32 lanes over the whole K (lane l takes inputs l, l+8, ...), fixed tree.
#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cpu/block_dot.h"
#include "kernels/cpu/gemm_kernels.h"
#include "kernels/cpu/threads.h"

#define FL_ALWAYS inline __attribute__((always_inline))

namespace flashline::gemm_detail {
namespace {
using I32x8 = int32_t __attribute__((vector_size(32)));
}  // namespace

// Everything defined in the first inclusion, lambdas and OpenMP regions included, is compiled for
// AVX2+FMA; the second inclusion for the baseline.
namespace avx2_body {
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#include "kernels/cpu/gemm_generic_body.inc"
#if defined(__x86_64__) && defined(__GNUC__)
#pragma GCC pop_options
#endif
}  // namespace avx2_body

namespace portable_body {
#include "kernels/cpu/gemm_generic_body.inc"
}  // namespace portable_body

void fp4_avx2(const QuantizedRows& x, const Fp4Weight& w, float* y) { avx2_body::fp4_body(x, w, y); }
void fp8_avx2(const QuantizedRows& x, const Fp8Weight& w, float* y) { avx2_body::fp8_body(x, w, y); }
void bf16_avx2(const float* x, int m, int k, const uint16_t* w, int n, float* y) {
  avx2_body::bf16_body(x, m, k, w, n, y);
}

void fp4_portable(const QuantizedRows& x, const Fp4Weight& w, float* y) { portable_body::fp4_body(x, w, y); }
void fp8_portable(const QuantizedRows& x, const Fp8Weight& w, float* y) { portable_body::fp8_body(x, w, y); }
void bf16_portable(const float* x, int m, int k, const uint16_t* w, int n, float* y) {
  portable_body::bf16_body(x, m, k, w, n, y);
}

}  // namespace flashline::gemm_detail

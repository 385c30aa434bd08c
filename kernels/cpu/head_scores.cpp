#include "kernels/cpu/head_scores.h"

// GCC 12 reports its own _mm512_undefined_* helpers as uninitialised once inlined here.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include "kernels/cpu/isa.h"

namespace flashline {

PackedHeads8 pack_heads8(const float* q, int D) {
  PackedHeads8 p;
  p.D = D;
  p.steps = D / 8 + 1;  // dot() always adds one zero-padded tail step
  p.v.assign(std::size_t(4) * p.steps * 16, 0.0f);
  for (int j = 0; j < 4; ++j)
    for (int s = 0; s < p.steps; ++s)
      for (int half = 0; half < 2; ++half)
        for (int l = 0; l < 8; ++l) {
          const int i = 8 * s + l;
          if (i < D) p.v[(std::size_t(j) * p.steps + s) * 16 + 8 * half + l] = q[std::size_t(2 * j + half) * D + i];
        }
  return p;
}

bool head_scores8_available() { return active_isa() == Isa::Avx512; }

#if defined(__x86_64__) && defined(__GNUC__)
#define FL_AVX512 __attribute__((target("avx512f,avx512dq,avx512vl")))

namespace {

// Each 8-lane half of v reduced by combine8's tree: ((l0 + l4) + (l2 + l6)) + ((l1 + l5) + (l3 + l7)),
// left in lanes 0 and 8.
FL_AVX512 inline __m512 combine8_halves(__m512 v) {
  const __m512 t = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xB1));  // lane l (< 4) + lane l + 4
  const __m512 u = _mm512_add_ps(t, _mm512_permute_ps(t, 0x4E));        // (l0 + l4) + (l2 + l6), ...
  return _mm512_add_ps(u, _mm512_permute_ps(u, 0xB1));                  // ... + ((l1 + l5) + (l3 + l7))
}

}  // namespace

FL_AVX512 void head_scores8(const PackedHeads8& q, const float* k, float* out) {
  // Four named accumulators (an array of them was kept in memory by the compiler).
  __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  const float* qv = q.v.data();
  const std::size_t js = std::size_t(q.steps) * 16;
  auto step = [&](int s, __m256 k8) FL_AVX512 {
    const __m512 kk = _mm512_insertf32x8(_mm512_castps256_ps512(k8), k8, 1);
    const float* p = qv + std::size_t(s) * 16;
    a0 = _mm512_add_ps(a0, _mm512_mul_ps(_mm512_loadu_ps(p), kk));
    a1 = _mm512_add_ps(a1, _mm512_mul_ps(_mm512_loadu_ps(p + js), kk));
    a2 = _mm512_add_ps(a2, _mm512_mul_ps(_mm512_loadu_ps(p + 2 * js), kk));
    a3 = _mm512_add_ps(a3, _mm512_mul_ps(_mm512_loadu_ps(p + 3 * js), kk));
  };
  const int full = q.D / 8;
  for (int s = 0; s < full; ++s) step(s, _mm256_loadu_ps(k + 8 * s));
  step(full, _mm256_maskz_loadu_ps(__mmask8((1u << (q.D - 8 * full)) - 1), k + 8 * full));  // the tail step
  const __m512 acc[4] = {combine8_halves(a0), combine8_halves(a1), combine8_halves(a2), combine8_halves(a3)};
  for (int j = 0; j < 4; ++j) {
    out[2 * j] = _mm512_cvtss_f32(acc[j]);
    out[2 * j + 1] = _mm512_cvtss_f32(_mm512_shuffle_f32x4(acc[j], acc[j], 0x02));
  }
}

FL_AVX512 void head_values8(const float* p, int pstride, const int* b, const float* const* rows, int n, int D,
                            const float* alpha, const bool* active, float* acc) {
  for (int d0 = 0; d0 < D; d0 += 16) {
    const __mmask16 m = D - d0 >= 16 ? __mmask16(0xFFFF) : __mmask16((1u << (D - d0)) - 1);
    __m512 v[8];
    for (int h = 0; h < 8; ++h) v[h] = _mm512_setzero_ps();
    for (int i = 0; i < n; ++i) {
      const __m512 k = _mm512_maskz_loadu_ps(m, rows[i] + d0);
      for (int h = 0; h < 8; ++h) v[h] = _mm512_add_ps(v[h], _mm512_mul_ps(_mm512_set1_ps(p[h * pstride + b[i]]), k));
    }
    for (int h = 0; h < 8; ++h) {
      if (!active[h]) continue;
      float* a = acc + std::size_t(h) * D + d0;
      const __m512 scaled = _mm512_mul_ps(_mm512_maskz_loadu_ps(m, a), _mm512_set1_ps(alpha[h]));
      _mm512_mask_storeu_ps(a, m, _mm512_add_ps(scaled, v[h]));
    }
  }
}

#else
void head_scores8(const PackedHeads8&, const float*, float*) {}
void head_values8(const float*, int, const int*, const float* const*, int, int, const float*, const bool*, float*) {}
#endif

}  // namespace flashline

#include "kernels/cpu/hc_rows.h"

#include <cstdint>

#include "kernels/cpu/numerics.h"
#include "kernels/cpu/simd.h"

namespace flashline {
namespace {

// y[d] = bf16([pk * a[d] +] sum_j(c[j] * x[j][d])), element by element the scalar code's formula
// (products, sum()'s 8-lane tree with +0 lanes past hc, the bf16 rounding), with the loop over d
// innermost so that the compiler runs several elements per instruction; per element nothing is
// reordered. Lanes past hc are cleared with a bit mask rather than a select: the select on a
// run-time count kept the loop scalar (GCC: "control flow in loop").
template <bool kBias>
[[gnu::always_inline]] inline void mix_row(const float* x, const float* c, int hc, int dim, float pk, const float* a,
                                           float* y) {
  const float* xj[8];
  uint32_t keep[8];
  for (int j = 0; j < 8; ++j) {
    xj[j] = x + (j < hc ? j : 0) * dim;
    keep[j] = j < hc ? 0xFFFFFFFFu : 0u;
  }
  for (int d = 0; d < dim; ++d) {
    float p[8];
    for (int j = 0; j < 8; ++j) p[j] = 0.0f + bits_to_float(float_to_bits(c[j] * xj[j][d]) & keep[j]);
    const float s = (((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]))) + 0.0f;
    if constexpr (kBias)
      y[d] = bf16_round(pk * a[d] + s);
    else
      y[d] = bf16_round(s);
  }
}

}  // namespace

FLASHLINE_ELEMENTWISE_CLONES
void hc_post_fast_row(const float* a, const float* x, const float* comb, const float* post, int hc, int dim,
                      float* out) {
  for (int k = 0; k < hc; ++k) {
    float c[8];
    for (int j = 0; j < 8; ++j) c[j] = j < hc ? comb[j * hc + k] : 0.0f;
    mix_row<true>(x, c, hc, dim, post[k], a, out + k * dim);
  }
}

FLASHLINE_ELEMENTWISE_CLONES
void hc_collapse_fast_row(const float* x, const float* w, int hc, int dim, float* y) {
  float c[8];
  for (int j = 0; j < 8; ++j) c[j] = j < hc ? w[j] : 0.0f;
  mix_row<false>(x, c, hc, dim, 0.0f, nullptr, y);
}

}  // namespace flashline

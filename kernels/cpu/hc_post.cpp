#include "kernels/cpu/hc_post.h"

#include "kernels/cpu/numerics.h"
#include "kernels/cpu/simd.h"

namespace flashline {

// Element by element the operations of the scalar code (products, the 8-lane tree of sum() with
// +0 lanes, the bf16 rounding), written as straight-line code over d so that the compiler runs
// eight or sixteen elements per instruction; per element nothing is reordered.
FLASHLINE_SIMD_CLONES
void hc_post_fast_row(const float* a, const float* x, const float* comb, const float* post, int hc, int dim,
                      float* out) {
  for (int k = 0; k < hc; ++k) {
    float c[8];
    const float* xj[8];
    for (int j = 0; j < 8; ++j) {
      c[j] = j < hc ? comb[j * hc + k] : 0.0f;
      xj[j] = x + (j < hc ? j : 0) * dim;
    }
    const float pk = post[k];
    float* o = out + k * dim;
    for (int d = 0; d < dim; ++d) {
      float p[8];
      for (int j = 0; j < 8; ++j) p[j] = 0.0f + (j < hc ? c[j] * xj[j][d] : 0.0f);
      const float s = (((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]))) + 0.0f;
      const float v = pk * a[d] + s;
      // bf16_round without a branch: NaN -> quiet NaN, else round to nearest even.
      const uint32_t u = float_to_bits(v);
      const uint32_t r = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
      o[d] = bits_to_float((u & 0x7FFFFFFFu) > 0x7F800000u ? 0x7FC00000u : r);
    }
  }
}

}  // namespace flashline

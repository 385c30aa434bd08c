#include "kernels/cpu/hc_post.h"

#include "kernels/cpu/numerics.h"
#include "kernels/cpu/simd.h"

namespace flashline {

// Element by element the scalar code's formula (products, sum() in fast mode, the bf16 rounding),
// with the loop over d innermost so that the compiler runs several elements per instruction; per
// element nothing is reordered. sum()'s tree is spelled out with its +0 lanes: called with a
// run-time count it keeps the loop scalar (2.2x slower, measured).
FLASHLINE_ELEMENTWISE_CLONES
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
      o[d] = bf16_round(pk * a[d] + s);
    }
  }
}

}  // namespace flashline

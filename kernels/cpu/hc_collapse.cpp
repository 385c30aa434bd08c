#include "kernels/cpu/hc_collapse.h"

#include "kernels/cpu/numerics.h"
#include "kernels/cpu/simd.h"

namespace flashline {

// Element by element the scalar code's formula, the loop over d innermost (as hc_post_fast_row):
// per element nothing is reordered, so every clone gives the same bits.
FLASHLINE_ELEMENTWISE_CLONES
void hc_collapse_fast_row(const float* x, const float* w, int hc, int dim, float* y) {
  float c[8];
  const float* xj[8];
  for (int j = 0; j < 8; ++j) {
    c[j] = j < hc ? w[j] : 0.0f;
    xj[j] = x + (j < hc ? j : 0) * dim;
  }
  for (int d = 0; d < dim; ++d) {
    float p[8];
    for (int j = 0; j < 8; ++j) p[j] = 0.0f + (j < hc ? c[j] * xj[j][d] : 0.0f);
    y[d] = bf16_round((((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]))) + 0.0f);
  }
}

}  // namespace flashline

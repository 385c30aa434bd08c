#include "kernels/cpu/hc_split.h"

#include <algorithm>
#include <vector>

#include "kernels/cpu/reduce.h"

namespace flashline {
namespace {

// comb[j][k] /= (sum over k of row j + eps)
void normalise_rows(float* c, int hc, float eps, Numerics num) {
  for (int j = 0; j < hc; ++j) {
    float d = sum(c + j * hc, hc, num) + eps;
    for (int k = 0; k < hc; ++k) c[j * hc + k] = c[j * hc + k] / d;
  }
}

// comb[j][k] /= (sum over j of column k + eps)
void normalise_columns(float* c, int hc, float eps, Numerics num) {
  std::vector<float> col(hc);
  for (int k = 0; k < hc; ++k) {
    for (int j = 0; j < hc; ++j) col[j] = c[j * hc + k];
    float d = sum(col.data(), hc, num) + eps;
    for (int j = 0; j < hc; ++j) c[j * hc + k] = c[j * hc + k] / d;
  }
}

}  // namespace

void hc_split_sinkhorn(const float* mixes, const float* scale, const float* base, int hc, int iters, float eps,
                       float* pre, float* post, float* comb, Numerics num) {
  for (int j = 0; j < hc; ++j) {
    pre[j] = sigmoid_f(mixes[j] * scale[0] + base[j], num) + eps;
    post[j] = 2.0f * sigmoid_f(mixes[hc + j] * scale[1] + base[hc + j], num);
  }
  for (int j = 0; j < hc; ++j) {
    float* row = comb + j * hc;
    for (int k = 0; k < hc; ++k) row[k] = mixes[2 * hc + j * hc + k] * scale[2] + base[2 * hc + j * hc + k];
    float mx = *std::max_element(row, row + hc);
    for (int k = 0; k < hc; ++k) row[k] = exp_f(row[k] - mx, num);
    float s = sum(row, hc, num);
    for (int k = 0; k < hc; ++k) row[k] = row[k] / s + eps;
  }
  normalise_columns(comb, hc, eps, num);
  for (int it = 0; it < iters - 1; ++it) {
    normalise_rows(comb, hc, eps, num);
    normalise_columns(comb, hc, eps, num);
  }
}

}  // namespace flashline

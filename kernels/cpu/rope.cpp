#include "kernels/cpu/rope.h"

#include <algorithm>
#include <cmath>

#include "kernels/cpu/numerics.h"

namespace flashline {

RopeTable::RopeTable(const RopeParams& p) : dim_(p.dim), inv_freq_(p.dim / 2) {
  const int half = p.dim / 2;
  for (int i = 0; i < half; ++i) {
    float expo = float(2 * i) / float(p.dim);
    float powv = float(std::pow(p.base, double(expo)));
    inv_freq_[i] = 1.0f / powv;
  }
  if (p.original_len > 0) {
    auto corr_dim = [&](double rot) {
      return p.dim * std::log(p.original_len / (rot * 2 * M_PI)) / (2 * std::log(p.base));
    };
    double low = std::max(std::floor(corr_dim(p.beta_fast)), 0.0);
    double high = std::min(std::ceil(corr_dim(p.beta_slow)), double(p.dim - 1));
    if (low == high) high += 0.001;
    const float lowf = float(low), span = float(high - low), factor = float(p.factor);
    for (int i = 0; i < half; ++i) {
      float ramp = std::clamp((float(i) - lowf) / span, 0.0f, 1.0f);
      float smooth = 1.0f - ramp;
      float f = inv_freq_[i];
      float a = (f / factor) * (1.0f - smooth);
      float b = f * smooth;
      inv_freq_[i] = a + b;
    }
  }
}

void RopeTable::angles(int64_t pos, float* cos, float* sin) const {
  const float pf = float(pos);
  for (std::size_t i = 0; i < inv_freq_.size(); ++i) {
    float ang = pf * inv_freq_[i];
    cos[i] = float(std::cos(double(ang)));
    sin[i] = float(std::sin(double(ang)));
  }
}

void apply_rope(float* x, const float* cos, const float* sin, int dim, bool inverse) {
  for (int i = 0; i < dim / 2; ++i) {
    float c = cos[i], s = inverse ? -sin[i] : sin[i];
    float a = x[2 * i], b = x[2 * i + 1];
    // Each product is rounded to fp32 (the build disables FMA contraction).
    float ac = a * c, bs = b * s, as = a * s, bc = b * c;
    x[2 * i] = bf16_round(ac - bs);
    x[2 * i + 1] = bf16_round(as + bc);
  }
}

}  // namespace flashline

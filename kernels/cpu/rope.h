#pragma once
// Rotary embedding on interleaved pairs (x[2i], x[2i+1]) of the last `dim` values, with the
// YaRN frequency blend when `original_len` > 0. Tables are computed like the reference in
// fp32: inv_freq = 1 / base^(2i/dim), angle = fp32(pos * inv_freq), cos/sin rounded to fp32.
#include <cstdint>
#include <vector>

namespace flashline {

struct RopeParams {
  int dim = 0;          // rotated dims (even)
  double base = 10000;  // theta
  int original_len = 0; // 0: no YaRN
  double factor = 1.0;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
};

class RopeTable {
 public:
  explicit RopeTable(const RopeParams& p);
  int dim() const { return dim_; }
  const std::vector<float>& inv_freq() const { return inv_freq_; }
  // cos/sin of the dim/2 angles at `pos`.
  void angles(int64_t pos, float* cos, float* sin) const;

 private:
  int dim_;
  std::vector<float> inv_freq_;
};

// Rotate x[0..dim) in place by the angles (conjugate when inverse); products rounded to fp32
// (no FMA), result rounded to bf16.
void apply_rope(float* x, const float* cos, const float* sin, int dim, bool inverse);

}  // namespace flashline

#include "kernels/cpu/hadamard.h"

#include <cmath>
#include <vector>

namespace flashline {
namespace {

template <typename T>
void fwht(T* v, int n) {
  for (int h = 1; h < n; h *= 2)
    for (int i = 0; i < n; i += 2 * h)
      for (int j = i; j < i + h; ++j) {
        T a = v[j], b = v[j + h];
        v[j] = a + b;
        v[j + h] = a - b;
      }
}

}  // namespace

void hadamard_bf16(float* x, int n, Numerics num) {
  const float norm = float(std::pow(double(n), -0.5));
  if (num == Numerics::Exact) {
    std::vector<double> v(x, x + n);
    fwht(v.data(), n);
    for (int i = 0; i < n; ++i) x[i] = bf16_round(float(v[i]) * norm);
  } else {
    fwht(x, n);
    for (int i = 0; i < n; ++i) x[i] = bf16_round(x[i] * norm);
  }
}

}  // namespace flashline

#include "kernels/cpu/rms_norm.h"

#include "kernels/cpu/reduce.h"
#include "kernels/cpu/threads.h"

namespace flashline {

void rms_norm(const float* x, int n, const float* w, float eps, float* out, Numerics num) {
  const float r = rsqrt_f(mean_square(x, n, num) + eps, num);
  for (int i = 0; i < n; ++i) out[i] = bf16_round(w[i] * (x[i] * r));
}

void rms_norm_rows(const float* x, int m, int n, const float* w, float eps, float* out, Numerics num) {
#pragma omp parallel for num_threads(kernel_threads(m)) schedule(static)
  for (int i = 0; i < m; ++i) rms_norm(x + std::size_t(i) * n, n, w, eps, out + std::size_t(i) * n, num);
}

}  // namespace flashline

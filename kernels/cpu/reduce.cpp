#include "kernels/cpu/reduce.h"

#include <cmath>

#include "kernels/cpu/block_dot.h"
#include "kernels/cpu/simd.h"

namespace flashline {
namespace {

constexpr int kLanes = 8;

// Tail elements go to lanes 0, 1, ... in order, after the full groups of eight.
[[gnu::always_inline]] inline Lanes8 tail(const float* a, int i, int n) {
  Lanes8 t = {};
  for (int j = 0; i < n; ++i, ++j) t[j] = a[i];
  return t;
}

}  // namespace

FLASHLINE_SIMD_CLONES
float dot(const float* a, const float* b, int n, Numerics m) {
  if (m == Numerics::Exact) {
    double acc = 0.0;
    for (int i = 0; i < n; ++i) acc += double(a[i]) * double(b[i]);
    return float(acc + 0.0);
  }
  Lanes8 p = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) p += load8(a + i) * load8(b + i);
  p += tail(a, i, n) * tail(b, i, n);
  return combine8(p);
}

FLASHLINE_SIMD_CLONES
void dot4_fast(const float* a, const float* b0, const float* b1, const float* b2, const float* b3, int n, float* out) {
  Lanes8 p0 = {}, p1 = {}, p2 = {}, p3 = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Lanes8 x = load8(a + i);
    p0 += x * load8(b0 + i);
    p1 += x * load8(b1 + i);
    p2 += x * load8(b2 + i);
    p3 += x * load8(b3 + i);
  }
  const Lanes8 t = tail(a, i, n);
  p0 += t * tail(b0, i, n);
  p1 += t * tail(b1, i, n);
  p2 += t * tail(b2, i, n);
  p3 += t * tail(b3, i, n);
  out[0] = combine8(p0), out[1] = combine8(p1), out[2] = combine8(p2), out[3] = combine8(p3);
}

FLASHLINE_SIMD_CLONES
float sum_any(const float* a, int n, Numerics m) {
  if (m == Numerics::Exact) {
    double acc = 0.0;
    for (int i = 0; i < n; ++i) acc += double(a[i]);
    return float(acc + 0.0);
  }
  Lanes8 p = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) p += load8(a + i);
  p += tail(a, i, n);
  return combine8(p) + 0.0f;
}

float mean(const float* a, int n, Numerics m) {
  if (m == Numerics::Exact) {
    double acc = 0.0;
    for (int i = 0; i < n; ++i) acc += double(a[i]);
    return float(acc / n + 0.0);
  }
  return sum(a, n, m) / float(n);
}

FLASHLINE_SIMD_CLONES
float mean_square(const float* a, int n, Numerics m) {
  if (m == Numerics::Exact) {
    double acc = 0.0;
    for (int i = 0; i < n; ++i) acc += double(a[i] * a[i]);
    return float(acc / n + 0.0);
  }
  Lanes8 p = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Lanes8 v = load8(a + i);
    p += v * v;
  }
  const Lanes8 t = tail(a, i, n);
  p += t * t;
  return combine8(p) / float(n);
}

float exp_f(float x, Numerics m) { return m == Numerics::Exact ? float(std::exp(double(x))) : std::exp(x); }

float sigmoid_f(float x, Numerics m) {
  if (m == Numerics::Exact) return float(1.0 / (1.0 + std::exp(-double(x))));
  return 1.0f / (1.0f + std::exp(-x));
}

float silu_f(float x, Numerics m) {
  if (m == Numerics::Exact) return float(double(x) / (1.0 + std::exp(-double(x))));
  return x / (1.0f + std::exp(-x));
}

float rsqrt_f(float x, Numerics m) {
  if (m == Numerics::Exact) return float(1.0 / std::sqrt(double(x)));
  return 1.0f / std::sqrt(x);
}

float sqrt_f(float x, Numerics m) { return m == Numerics::Exact ? float(std::sqrt(double(x))) : std::sqrt(x); }

float softplus_f(float x, Numerics m) {
  if (x > 20.0f) return x;
  if (m == Numerics::Exact) return float(std::log1p(std::exp(double(x))));
  return std::log1p(std::exp(x));
}

}  // namespace flashline

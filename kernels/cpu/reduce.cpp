#include "kernels/cpu/reduce.h"

#include <cmath>

namespace flashline {
namespace {

constexpr int kLanes = 8;

inline float combine(const float* p) {
  return ((p[0] + p[4]) + (p[2] + p[6])) + ((p[1] + p[5]) + (p[3] + p[7]));
}

}  // namespace

float dot(const float* a, const float* b, int n, Numerics m) {
  if (m == Numerics::Exact) {
    double acc = 0.0;
    for (int i = 0; i < n; ++i) acc += double(a[i]) * double(b[i]);
    return float(acc + 0.0);
  }
  float p[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) p[j] += a[i + j] * b[i + j];
  for (int j = 0; i < n; ++i, ++j) p[j] += a[i] * b[i];
  return combine(p);
}

float sum(const float* a, int n, Numerics m) {
  if (m == Numerics::Exact) {
    double acc = 0.0;
    for (int i = 0; i < n; ++i) acc += double(a[i]);
    return float(acc + 0.0);
  }
  float p[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) p[j] += a[i + j];
  for (int j = 0; i < n; ++i, ++j) p[j] += a[i];
  return combine(p) + 0.0f;
}

float mean(const float* a, int n, Numerics m) {
  if (m == Numerics::Exact) {
    double acc = 0.0;
    for (int i = 0; i < n; ++i) acc += double(a[i]);
    return float(acc / n + 0.0);
  }
  return sum(a, n, m) / float(n);
}

float mean_square(const float* a, int n, Numerics m) {
  if (m == Numerics::Exact) {
    double acc = 0.0;
    for (int i = 0; i < n; ++i) acc += double(a[i] * a[i]);
    return float(acc / n + 0.0);
  }
  float p[kLanes] = {};
  int i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int j = 0; j < kLanes; ++j) p[j] += a[i + j] * a[i + j];
  for (int j = 0; i < n; ++i, ++j) p[j] += a[i] * a[i];
  return combine(p) / float(n);
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

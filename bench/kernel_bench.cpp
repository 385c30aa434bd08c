// Microbenchmarks of the CPU GEMM kernels at decode (M = 1) and prefill shapes, reported as
// weight bytes streamed per second so they read against the memory roofline.
#include <benchmark/benchmark.h>

#include <random>
#include <vector>

#include "kernels/cpu/gemm.h"

namespace flashline {
namespace {

struct Data {
  std::vector<float> x;
  std::vector<uint8_t> codes, scales;
  Data(int m, int n, int k, std::size_t code_bytes, std::size_t scale_bytes) : x(std::size_t(m) * k) {
    std::mt19937 g(7);
    std::normal_distribution<float> d;
    for (auto& v : x) v = bf16_round(d(g));
    codes.resize(code_bytes);
    scales.resize(scale_bytes);
    for (auto& c : codes) c = uint8_t(g() % 0x7E);
    for (auto& s : scales) s = uint8_t(120 + g() % 6);
  }
};

void BM_Fp8Gemm(benchmark::State& st) {
  const int m = int(st.range(0)), n = int(st.range(1)), k = int(st.range(2));
  Data d(m, n, k, std::size_t(n) * k, std::size_t((n + 127) / 128) * (k / 128));
  const auto xq = quantize_rows(d.x.data(), m, k);
  std::vector<float> y(std::size_t(m) * n);
  const Fp8Weight w{d.codes.data(), d.scales.data(), n, k};
  for (auto _ : st) {
    gemm_fp8(xq, w, y.data(), Numerics::Fast);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * n * k);
}

void BM_Fp4Gemm(benchmark::State& st) {
  const int m = int(st.range(0)), n = int(st.range(1)), k = int(st.range(2));
  Data d(m, n, k, std::size_t(n) * k / 2, std::size_t(n) * (k / 32));
  const auto xq = quantize_rows(d.x.data(), m, k);
  std::vector<float> y(std::size_t(m) * n);
  const Fp4Weight w{d.codes.data(), d.scales.data(), n, k};
  for (auto _ : st) {
    gemm_fp4(xq, w, y.data(), Numerics::Fast);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * n * k / 2);
}

void BM_Bf16Gemm(benchmark::State& st) {
  const int m = int(st.range(0)), n = int(st.range(1)), k = int(st.range(2));
  std::vector<float> x(std::size_t(m) * k, 0.5f), y(std::size_t(m) * n);
  std::vector<uint16_t> w(std::size_t(n) * k, 0x3F80);
  for (auto _ : st) {
    gemm_f32(x.data(), m, k, w.data(), n, y.data(), Numerics::Fast);
    benchmark::DoNotOptimize(y.data());
  }
  st.SetBytesProcessed(int64_t(st.iterations()) * n * k * 2);
}

// DeepSeek-V4-Flash shapes: expert w1 [2048, 4096] (FP4), wq_b [32768, 1024] (FP8), head rows.
BENCHMARK(BM_Fp4Gemm)->Args({1, 2048, 4096})->Args({16, 2048, 4096});
BENCHMARK(BM_Fp8Gemm)->Args({1, 4096, 1024})->Args({16, 4096, 1024});
BENCHMARK(BM_Bf16Gemm)->Args({1, 4096, 4096});

}  // namespace
}  // namespace flashline

BENCHMARK_MAIN();

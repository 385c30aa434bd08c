// Fast-mode GEMM kernels at DeepSeek-V4-Flash shapes (kernel_bench.h): random weights in the
// release formats, median time per call, weight GB/s against the measured memory-read bandwidth,
// GFLOP/s against a measured fp32 FMA peak, and act_quant of the same activations on its own.
// GCC 12 reports its own _mm512_undefined_* helpers as uninitialised once inlined here.
#pragma GCC diagnostic ignored "-Wuninitialized"
#include "bench/kernel_bench.h"

#include <immintrin.h>
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fmt/format.h>
#include <random>
#include <string>
#include <vector>

#include "bench/memory_bandwidth.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/isa.h"
#include "kernels/cpu/threads.h"

namespace flashline {
namespace {

double now_s() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }
double cpu_s() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return double(t.tv_sec) + 1e-9 * double(t.tv_nsec);
}

struct Shape {
  std::string name, dtype;
  int n = 0, k = 0, tokens = 1;
};

struct Result {
  Shape s;
  double us = 0, cpu_us = 0, quant_us = 0, weight_bytes = 0, flops = 0;
  int reps = 0;
};

// One GEMM problem with random weights in the release format and bf16 activations.
struct Problem {
  Shape s;
  std::vector<float> x, y;
  std::vector<uint8_t> codes, scales;
  std::vector<uint16_t> wb;
  QuantizedRows xq;

  // Copies of the weights the calls cycle through (--cold): the copy a call reads was last read
  // some 512 MB of weights earlier, so it comes from memory, as a decode step's weights do.
  int copies = 1, next = 0;
  std::vector<Fp8Weight> w8s;

  explicit Problem(const Shape& shape, bool cold) : s(shape) {
    std::mt19937 g(7);
    std::normal_distribution<float> d;
    x.resize(std::size_t(s.tokens) * s.k);
    for (auto& v : x) v = bf16_round(d(g));
    y.resize(std::size_t(s.tokens) * s.n);
    if (s.dtype == "fp8") {
      codes.resize(std::size_t(s.n) * s.k);
      scales.resize(std::size_t((s.n + 127) / 128) * (s.k / 128));
    } else if (s.dtype == "fp4") {
      codes.resize(std::size_t(s.n) * s.k / 2);
      scales.resize(std::size_t(s.n) * (s.k / 32));
    } else {
      wb.resize(std::size_t(s.n) * s.k);
    }
    if (s.dtype == "fp8") {
      // Like a checkpoint's: normal e4m3 codes, and a few subnormals in each 128 x 128 block (a
      // block's largest weight maps to 448, so its smallest fall below 2^-6), which send their
      // rows' blocks to the table decoder (fp8_table_blocks).
      for (auto& c : codes) c = uint8_t(8 + g() % 0x77) | uint8_t(g() & 0x80);
      for (std::size_t b = 0; b < codes.size(); b += 128 * 128)
        for (int j = 0; j < 2; ++j) codes[b + g() % std::min<std::size_t>(codes.size() - b, 128 * 128)] = uint8_t(1 + g() % 7);
    } else {
      for (auto& c : codes) c = uint8_t(g() % 0x7E) | uint8_t(g() & 0x80);
    }
    for (auto& c : scales) c = uint8_t(118 + g() % 8);
    for (auto& w : wb) w = float_to_bf16_bits(0.05f * d(g));
    if (s.dtype != "bf16") xq = quantize_rows(x.data(), s.tokens, s.k);
    const double bytes = weight_bytes();
    if (cold) {
      copies = int(std::max(2.0, std::ceil(512e6 / bytes)));
      replicate(codes);
      replicate(scales);
      replicate(wb);
    }
    if (s.dtype == "fp8") {
      const Fp8Weight w8{codes.data(), scales.data(), s.n, s.k};
      const auto map = fp8_table_blocks(w8);  // as the model's weights carry it (the copies share it)
      for (int c = 0; c < copies; ++c)
        w8s.emplace_back(codes.data() + c * codes.size() / copies, scales.data() + c * scales.size() / copies, s.n, s.k,
                         map);
    }
  }
  template <typename T>
  void replicate(std::vector<T>& v) {
    const std::size_t n = v.size();
    v.resize(n * copies);
    for (int c = 1; c < copies; ++c) std::copy_n(v.begin(), n, v.begin() + c * n);
  }
  // Bytes of one copy.
  double weight_bytes() const { return double(codes.size() + scales.size() + 2 * wb.size()) / copies; }
  // One GEMM call on already quantised activations (act_quant is timed on its own).
  void run() {
    const int c = next;
    next = (next + 1) % copies;
    if (s.dtype == "fp8") {
      gemm_fp8(xq, w8s[c], y.data(), Numerics::Fast);
    } else if (s.dtype == "fp4") {
      const std::size_t cs = codes.size() / copies, ss = scales.size() / copies;
      gemm_fp4(xq, Fp4Weight{codes.data() + c * cs, scales.data() + c * ss, s.n, s.k}, y.data(), Numerics::Fast);
    } else {
      gemm_f32(x.data(), s.tokens, s.k, wb.data() + c * (wb.size() / copies), s.n, y.data(), Numerics::Fast);
    }
  }
};

Result measure(const Shape& s, int reps, double min_seconds, bool cold) {
  Problem p(s, cold);
  p.run();  // warm-up (page faults, first-touch)
  std::vector<double> wall, cpu;
  const double start = now_s();
  while (int(wall.size()) < reps || (now_s() - start < min_seconds && wall.size() < 10000)) {
    const double t0 = now_s(), c0 = cpu_s();
    p.run();
    wall.push_back(now_s() - t0);
    cpu.push_back(cpu_s() - c0);
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  Result r;
  if (s.dtype != "bf16") {
    std::vector<double> q;
    for (int i = 0; i < 9; ++i) {
      const double t0 = now_s();
      p.xq = quantize_rows(p.x.data(), s.tokens, s.k);
      q.push_back(now_s() - t0);
    }
    std::sort(q.begin(), q.end());
    r.quant_us = 1e6 * q[q.size() / 2];
  }
  r.s = s;
  r.reps = int(wall.size());
  r.us = 1e6 * wall[wall.size() / 2];
  r.cpu_us = 1e6 * cpu[cpu.size() / 2];
  r.weight_bytes = p.weight_bytes();
  r.flops = 2.0 * s.tokens * double(s.n) * s.k;
  return r;
}

// fp32 FMA peak of the active threads: independent multiply-adds on the widest vectors the
// active level has (no loads).
__attribute__((target("avx512f"))) double fma_loop_avx512(long iters) {
  __m512 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(float(i));
  __m512 m = _mm512_set1_ps(0.999f), c = _mm512_set1_ps(1e-3f);
  for (long i = 0; i < iters; ++i) {
    for (int j = 0; j < 12; ++j) a[j] = _mm512_fmadd_ps(a[j], m, c);
    __asm__ volatile("" : "+v"(m));
  }
  __m512 s = a[0];
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, a[i]);
  return _mm512_reduce_add_ps(s) + 0.0 * iters;
}
__attribute__((target("avx2,fma"))) double fma_loop_avx2(long iters) {
  __m256 a[12];
  for (int i = 0; i < 12; ++i) a[i] = _mm256_set1_ps(float(i));
  __m256 m = _mm256_set1_ps(0.999f), c = _mm256_set1_ps(1e-3f);
  for (long i = 0; i < iters; ++i) {
    for (int j = 0; j < 12; ++j) a[j] = _mm256_fmadd_ps(a[j], m, c);
    __asm__ volatile("" : "+x"(m));
  }
  float out[8];
  _mm256_storeu_ps(out, a[0]);
  return out[0];
}

std::vector<Shape> v4_table() {
  const std::vector<Shape> shapes = {
      {"expert w1/w3", "fp4", 2048, 4096}, {"expert w2", "fp4", 4096, 2048}, {"wq_a", "fp8", 1024, 4096},
      {"wq_b", "fp8", 32768, 1024},         {"wkv", "fp8", 512, 4096},        {"wo_b", "fp8", 4096, 8192},
      {"issue fp8", "fp8", 4096, 1024},     {"issue bf16", "bf16", 4096, 4096}, {"head", "bf16", 129280, 4096},
  };
  std::vector<Shape> out;
  for (const Shape& s : shapes)
    for (int t : {1, 16, 512}) {
      // 512 tokens only where one call stays under about a second
      if (t == 512 && double(s.n) * s.k > 2.0e7) continue;
      Shape x = s;
      x.tokens = t;
      out.push_back(x);
    }
  return out;
}

}  // namespace

double fma_peak_gflops() {
  const Isa isa = active_isa();
  if (isa == Isa::Portable) return 0;
  const int lanes = isa == Isa::Avx512 ? 16 : 8;
  const long iters = 20'000'000;
  double best = 0;
  for (int rep = 0; rep < 3; ++rep) {
    // process CPU time per thread: time slices lost to other processes do not count
    const double c0 = cpu_s();
    double sink = 0;
#pragma omp parallel reduction(+ : sink)
    sink += isa == Isa::Avx512 ? fma_loop_avx512(iters) : fma_loop_avx2(iters);
    const double s = (cpu_s() - c0) / omp_get_max_threads();
    best = std::max(best, 2.0 * lanes * 12 * double(iters) * omp_get_max_threads() / s / 1e9);
    if (sink == 12345.0) std::puts("");
  }
  return best;
}

void add_kernel_bench_options(CLI::App& app, KernelBenchOptions& o) {
  app.add_option("--dtype", o.dtype, "fp4 | fp8 | bf16")->check(CLI::IsMember({"fp4", "fp8", "bf16"}));
  app.add_option("--tokens", o.tokens, "activation rows (M)")->check(CLI::PositiveNumber);
  app.add_option("--out-features", o.n, "weight rows (N)")->check(CLI::PositiveNumber);
  app.add_option("--in-features", o.k, "weight columns (K; a multiple of 128 for fp4/fp8)")->check(CLI::PositiveNumber);
  app.add_option("--threads", o.threads, "compute threads (default: every CPU this process may use)")
      ->check(CLI::PositiveNumber);
  app.add_option("--isa", o.isa, "force a lower instruction-set path")->check(CLI::IsMember({"avx512", "avx2", "portable"}));
  app.add_option("--reps", o.reps, "minimum timed calls per shape")->capture_default_str();
  app.add_option("--min-seconds", o.min_seconds, "minimum timed seconds per shape")->capture_default_str();
  app.add_flag("--json", o.json, "one JSON object per line");
  app.add_flag("--no-roofline", o.no_roofline, "skip the bandwidth and FMA peak measurements");
  app.add_flag("--cold", o.cold,
               "weights from memory: calls cycle through copies of the weights filling 512 MB (default: one "
               "copy, which stays in cache when it fits)");
}

void run_kernel_bench(const KernelBenchOptions& o) {
  std::vector<Shape> shapes;
  if (!o.dtype.empty() || o.n || o.k) {
    if (o.dtype.empty() || !o.n || !o.k)
      throw CLI::ValidationError("--dtype, --out-features and --in-features go together");
    if (o.dtype != "bf16" && o.k % 128 != 0)
      throw CLI::ValidationError("--in-features", "must be a multiple of 128 for " + o.dtype);
    shapes.push_back({"custom", o.dtype, o.n, o.k, o.tokens});
  } else {
    shapes = v4_table();
  }
  if (o.threads > 0) {
    omp_set_num_threads(o.threads);
    set_kernel_threads(o.threads);
  }
  if (!o.isa.empty()) set_isa(*parse_isa(o.isa));
  const int nthreads = kernel_threads();
  double bw = 0, peak = 0;
  if (!o.no_roofline) {
    bw = measure_read_bandwidth(std::size_t(1) << 30, 5);
    peak = fma_peak_gflops();
  }
  if (o.json) {
    std::printf("%s\n", fmt::format(R"({{"isa":"{}","threads":{},"read_bandwidth_gbs":{:.2f},"fma_peak_gflops":{:.1f}}})",
                                     isa_name(active_isa()), nthreads, bw / 1e9, peak)
                            .c_str());
  } else {
    std::printf("isa %s, %d thread(s); memory read bandwidth %.1f GB/s, fp32 FMA peak %.1f GFLOP/s\n",
                isa_name(active_isa()), nthreads, bw / 1e9, peak);
    std::printf("%-14s %-5s %7s %6s %6s %11s %11s %8s %6s %9s %6s %9s\n", "shape", "dtype", "N", "K", "tokens", "us/call",
                "cpu us", "GB/s", "%bw", "GFLOP/s", "%peak", "quant us");
  }
  for (const Shape& s : shapes) {
    const Result r = measure(s, o.reps, o.min_seconds, o.cold);
    const double gbs = r.weight_bytes / (r.us * 1e-6) / 1e9, gflops = r.flops / (r.us * 1e-6) / 1e9;
    if (o.json) {
      std::printf("%s\n", fmt::format(R"({{"shape":"{}","dtype":"{}","out_features":{},"in_features":{},"tokens":{},)"
                                      R"("median_us":{:.1f},"median_cpu_us":{:.1f},"weight_gbs":{:.2f},)"
                                      R"("gflops":{:.2f},"bandwidth_share":{:.3f},"peak_share":{:.3f},"act_quant_us":{:.1f},"reps":{}}})",
                                      s.name, s.dtype, s.n, s.k, s.tokens, r.us, r.cpu_us, gbs, gflops,
                                      bw > 0 ? gbs * 1e9 / bw : 0.0, peak > 0 ? gflops / peak : 0.0, r.quant_us, r.reps)
                              .c_str());
    } else {
      std::printf("%-14s %-5s %7d %6d %6d %11.1f %11.1f %8.2f %5.0f%% %9.2f %5.1f%% %9.1f\n", s.name.c_str(),
                  s.dtype.c_str(), s.n, s.k, s.tokens, r.us, r.cpu_us, gbs, bw > 0 ? 100 * gbs * 1e9 / bw : 0.0, gflops,
                  peak > 0 ? 100 * gflops / peak : 0.0, r.quant_us);
    }
    std::fflush(stdout);
  }
}

}  // namespace flashline


#pragma once
// The GEMM kernel benchmark, shared by the kernel_bench program and `flashline bench kernels`:
// one shape (--dtype, --out-features, --in-features, --tokens) or, without them, the table of
// DeepSeek-V4-Flash shapes at 1, 16 and 512 tokens.
#include <CLI/CLI.hpp>
#include <string>

namespace flashline {

struct KernelBenchOptions {
  std::string dtype, isa;  // dtype: fp4 | fp8 | bf16 (empty: the V4 table); isa: force a lower path
  int tokens = 1, n = 0, k = 0;
  int threads = 0;  // 0: every CPU the process may use (OpenMP's default)
  int reps = 20;
  double min_seconds = 0.5;
  bool json = false, no_roofline = false;
  bool cold = false;  // each call reads its weights from memory (a copy not read since ~512 MB ago)
};

// Registers the options above on a command.
void add_kernel_bench_options(CLI::App& app, KernelBenchOptions& o);
// Measures and prints (a table, or JSON lines). Throws CLI::ValidationError for option
// combinations the parser cannot check (shape options given partly, K not a multiple of 128).
void run_kernel_bench(const KernelBenchOptions& o);
// fp32 FMA peak of the current threads on the active instruction-set path, GFLOP/s (process
// CPU time, so slices lost to other processes do not count); 0 on the portable path.
double fma_peak_gflops();

}  // namespace flashline

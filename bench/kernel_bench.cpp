// Fast-mode GEMM kernels at DeepSeek-V4-Flash shapes: median time per call, weight bytes
// streamed per second (read against the measured memory-read bandwidth) and GFLOP/s (read
// against a measured fp32 FMA peak). The same benchmark is `flashline bench kernels`.
//
//   kernel_bench                                   default table of the V4 shapes
//   kernel_bench --dtype fp4 --tokens 16 --out-features 2048 --in-features 4096
//   options: --threads N, --isa avx512|avx2|portable, --json, --reps N, --no-roofline
#include <CLI/CLI.hpp>

#include "bench/kernel_bench.h"

int main(int argc, char** argv) {
  CLI::App app{"fast-mode GEMM kernels at DeepSeek-V4-Flash shapes"};
  flashline::KernelBenchOptions o;
  flashline::add_kernel_bench_options(app, o);
  try {
    app.parse(argc, argv);
    flashline::run_kernel_bench(o);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return 0;
}

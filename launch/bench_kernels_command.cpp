// `flashline bench`: benchmarks as subcommands. `bench kernels` measures the fast-mode GEMMs
// (bench/kernel_bench.h): one shape or the table of DeepSeek-V4-Flash shapes; `serve`, `sweep`
// and `offline` are the serving benchmarks (bench_serve_command.cpp, bench_offline_command.cpp).
#include <memory>

#include "bench/kernel_bench.h"
#include "launch/commands.h"

namespace flashline {

void add_bench_kernels_command(CLI::App& bench) {
  auto o = std::make_shared<KernelBenchOptions>();
  auto* cmd = bench.add_subcommand(
      "kernels",
      "Fast-mode GEMM kernels: median time per call, weight GB/s against the measured memory bandwidth, "
      "GFLOP/s against the measured fp32 FMA peak (one shape, or the V4-Flash table without --dtype)");
  add_kernel_bench_options(*cmd, *o);
  cmd->callback([o] { run_kernel_bench(*o); });
}

void add_bench_command(CLI::App& app) {
  auto* bench = app.add_subcommand("bench", "Benchmarks");
  bench->require_subcommand(1);
  add_bench_kernels_command(*bench);
  add_bench_serve_command(*bench);
  add_bench_sweep_command(*bench);
  add_bench_offline_command(*bench);
}

}  // namespace flashline

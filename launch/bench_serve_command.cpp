// `flashline bench serve` and `bench sweep`: the serving benchmark against any OpenAI-compatible
// server (bench/serve_bench.h). Both take every serve flag; sweep adds its points and folder.
#include <memory>

#include "bench/serve_bench.h"
#include "launch/commands.h"

namespace flashline {
namespace {

void add_serving_benchmark(CLI::App& bench, const char* name, const char* description, bool sweep) {
  auto o = std::make_shared<ServeBenchOptions>();
  auto* cmd = bench.add_subcommand(name, description);
  add_serve_bench_options(*cmd, *o);
  if (sweep) {
    add_sweep_options(*cmd, *o);
  } else {
    cmd->add_option("--save-result", o->save_result, "Write the result JSON here (vLLM's keys and units)");
    cmd->add_option("--plot", o->plot, "Write latency CDF charts (TTFT, end-to-end, ITL) here as SVG");
  }
  cmd->callback([o, cmd, sweep] {
    finish_serve_bench_options(*cmd, *o);
    sweep ? run_serve_sweep(*o) : run_serve_bench(*o);
  });
}

}  // namespace

void add_bench_serve_command(CLI::App& bench) {
  add_serving_benchmark(
      bench, "serve",
      "Load an OpenAI-compatible server with streamed requests (vLLM's `bench serve`): throughput, TTFT, TPOT, ITL, "
      "end-to-end latency, goodput; the summary table, and the same JSON as vLLM's --save-result",
      false);
}

void add_bench_sweep_command(CLI::App& bench) {
  add_serving_benchmark(
      bench, "sweep",
      "`bench serve` at several concurrencies or request rates: one JSON per point, sweep.txt and sweep.svg (throughput "
      "vs load, TTFT/ITL percentiles vs load, latency CDFs) in --out-dir",
      true);
}

}  // namespace flashline

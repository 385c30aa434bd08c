// `flashline bench serve` and `bench sweep`: the serving benchmark against any OpenAI-compatible
// server (bench/serve_bench.h).
#include <memory>

#include "bench/serve_bench.h"
#include "launch/commands.h"

namespace flashline {

void add_bench_serve_command(CLI::App& bench) {
  auto o = std::make_shared<ServeBenchOptions>();
  auto* cmd = bench.add_subcommand(
      "serve",
      "Load an OpenAI-compatible server with streamed requests (vLLM's `bench serve`): throughput, TTFT, TPOT, ITL, "
      "end-to-end latency, goodput; the summary table, and the same JSON as vLLM's --save-result");
  add_serve_bench_options(*cmd, *o);
  cmd->add_option("--save-result", o->save_result, "Write the result JSON here (vLLM's keys and units)");
  cmd->add_option("--plot", o->plot, "Write latency CDF charts (TTFT, end-to-end, ITL) here as SVG");
  cmd->callback([o, cmd] {
    finish_serve_bench_options(*cmd, *o);
    run_serve_bench(*o);
  });
}

void add_bench_sweep_command(CLI::App& bench) {
  auto o = std::make_shared<ServeBenchOptions>();
  auto* cmd = bench.add_subcommand(
      "sweep",
      "`bench serve` at several concurrencies or request rates: one JSON per point, sweep.txt and sweep.svg (throughput "
      "vs load, TTFT/ITL percentiles vs load, latency CDFs) in --out-dir");
  add_serve_bench_options(*cmd, *o);
  add_sweep_options(*cmd, *o);
  cmd->callback([o, cmd] {
    finish_serve_bench_options(*cmd, *o);
    run_serve_sweep(*o);
  });
}

}  // namespace flashline

// `flashline plan`: cluster description + model config -> plan file, table, JSON, SVG.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "base/input_error.h"
#include "cluster/cluster_spec.h"
#include "base/quantity.h"
#include "launch/commands.h"
#include "launch/engine_bootstrap.h"
#include "launch/engine_run.h"
#include "partition/cost_calibration.h"
#include "partition/model_preset.h"
#include "partition/plan_report.h"

namespace flashline {
namespace {

struct PlanOptions {
  std::string cluster;
  std::string model_dir;
  std::string preset;
  std::string output = "plan.yaml";
  std::string svg;
  std::string expert_load;
  std::string kv_format = "fp8";
  bool json = false;
  bool calibrate = false;
  std::string calibration;  // file written by --calibrate, read otherwise
  int calibrate_prompt = 256, calibrate_steps = 32, calibrate_repeats = 3;
  PlannerOptions planner;
};

// One request in this process, fast numerics: prefill of `prompt` tokens, then `steps` decode
// steps; after a warm-up, the best of `repeats` runs (the machine may be shared).
MeasuredRun measure_run(const PlanOptions& o) {
  EngineOptions eo;
  eo.model = o.model_dir;
  eo.prefill_chunk = 0;  // the planner's prefill is one step
  auto engine = start_engine(eo);
  const ModelConfig c = engine_model_config(eo);
  TimedRequest q;
  for (int i = 0; i < o.calibrate_prompt; ++i) q.request.prompt.push_back(int32_t((7919LL * (i + 3)) % c.vocab));
  q.request.sampling.max_tokens = o.calibrate_steps + 1;  // the first id comes from the prefill
  q.request.sampling.ignore_eos = true;
  q.request.debug.mtp_logits = c.n_mtp > 0;  // the planner's last stage runs the MTP block
  TimedRequest warm = q;
  warm.request.prompt.resize(std::min<std::size_t>(q.request.prompt.size(), 16));
  warm.request.sampling.max_tokens = 2;
  run_requests(*engine, {warm});
  MeasuredRun m;
  m.model = o.model_dir;
  char host[256] = {};
  gethostname(host, sizeof host - 1);
  m.host = host;
  m.prompt_tokens = o.calibrate_prompt;
  m.decode_steps = o.calibrate_steps;
  for (int i = 0; i < o.calibrate_repeats; ++i) {
    const auto r = run_requests(*engine, {q}).at(0);
    const double prefill = r.first_token_s - r.submitted_s, decode = (r.finished_s - r.first_token_s) / o.calibrate_steps;
    m.prefill_s = i == 0 ? prefill : std::min(m.prefill_s, prefill);
    m.decode_step_s = i == 0 ? decode : std::min(m.decode_step_s, decode);
  }
  engine->shutdown(0);
  return m;
}

std::string versus(double predicted, double measured) {
  return fmt::format("{:>10} ({:+.1f}%)", format_seconds(predicted), 100 * (predicted / measured - 1));
}

// Measures, fits, writes the calibration file and prints predicted vs measured; returns the
// fitted constants for the plan that follows.
CostConstants run_calibration(const PlanOptions& o, const CostModel& cost) {
  if (o.model_dir.empty()) throw InputError("plan --calibrate: needs --model DIR (a model to run on this machine)");
  if (o.calibrate_prompt < 1 || o.calibrate_steps < 1 || o.calibrate_repeats < 1)
    throw InputError("plan --calibrate: --calibrate-prompt, --calibrate-steps and --calibrate-repeats must be >= 1");
  ClusterSpec machine = ClusterSpec::local_cpu(1);
  fmt::print(stderr, "calibrating on this machine ({} cores, one rank): {} prompt tokens, {} decode steps, best of {}...\n",
             machine.nodes[0].cpus, o.calibrate_prompt, o.calibrate_steps, o.calibrate_repeats);
  Calibration c = calibrate(cost, machine, measure_run(o));
  const std::string file = o.calibration.empty() ? "calibration.yaml" : o.calibration;
  c.save(file);
  FILE* out = o.json ? stderr : stdout;
  const auto& m = c.measured;
  fmt::print(out, "calibration ({}, {} prompt tokens, {} decode steps, localhost:1):\n", o.model_dir, m.prompt_tokens,
             m.decode_steps);
  fmt::print(out, "  {:<12} {:>10} {:>20} {:>20}\n", "", "measured", "predicted before", "predicted after");
  fmt::print(out, "  {:<12} {:>10} {:>20} {:>20}\n", "prefill", format_seconds(m.prefill_s),
             versus(c.before.prefill_s, m.prefill_s), versus(c.after.prefill_s, m.prefill_s));
  fmt::print(out, "  {:<12} {:>10} {:>20} {:>20}\n", "decode step", format_seconds(m.decode_step_s),
             versus(c.before.decode_step_s, m.decode_step_s), versus(c.after.decode_step_s, m.decode_step_s));
  fmt::print(out, "  cpu compute efficiency {:.4g} -> {:.4g}, cpu memory efficiency {:.4g} -> {:.4g}\n",
             cost.constants().cpu_compute_efficiency, c.constants.cpu_compute_efficiency,
             cost.constants().cpu_memory_efficiency, c.constants.cpu_memory_efficiency);
  if (!c.exact)
    fmt::print(out, "  the fit is not exact: an efficiency reached its bound (see docs/planner.md, calibration)\n");
  fmt::print(out, "  wrote {} (apply with --calibration {})\n\n", file, file);
  return c.constants;
}

void run_plan(PlanOptions& o) {
  if (o.model_dir.empty() == o.preset.empty()) throw InputError("plan: give exactly one of --model DIR or --preset NAME");
  ModelConfig config = o.preset.empty() ? ModelConfig::load(std::filesystem::path(o.model_dir) / "config.json")
                                        : model_preset(o.preset);
  o.planner.model_name = o.preset.empty() ? o.model_dir : o.preset;
  ClusterSpec cluster = ClusterSpec::from_argument(o.cluster);
  ExpertLoad load;
  if (!o.expert_load.empty()) {
    load = ExpertLoad::load(o.expert_load, config.total_layers(), config.n_experts);
    o.planner.expert_load = &load;
  }
  CostModel cost(config, parse_kv_format(o.kv_format));
  if (o.calibrate)
    cost.set_constants(run_calibration(o, cost));
  else if (!o.calibration.empty())
    cost.set_constants(Calibration::load(o.calibration, cost.constants()));
  if (!o.json)
    fmt::print(stderr, "planning {} on {} ({} ranks)...\n", o.planner.model_name, cluster.name, cluster.rank_count());
  PlanResult r = StagePlanner(cost, cluster, o.planner).plan();
  r.plan.save(o.output);
  if (!o.svg.empty()) {
    std::ofstream f(o.svg);
    if (!(f << plan_svg(r))) throw InputError(fmt::format("{}: cannot write SVG", o.svg));
  }
  if (o.json) {
    fmt::print("{}\n", plan_json(r).dump(2));
    return;
  }
  fmt::print("{}", plan_table(r));
  fmt::print("\nwrote {}{}\n", o.output, o.svg.empty() ? "" : fmt::format(" and {}", o.svg));
}

}  // namespace

void add_plan_command(CLI::App& app) {
  auto o = std::make_shared<PlanOptions>();
  auto* cmd = app.add_subcommand("plan", "Partition the model over a cluster: stages, lanes, experts, KV budget");
  cmd->add_option("--cluster", o->cluster, "Cluster YAML (docs/planner.md), or localhost:N for N CPU ranks here")
      ->required();
  auto* m = cmd->add_option("--model", o->model_dir, "Model directory (its config.json is read; weights are not)");
  auto* p = cmd->add_option("--preset", o->preset, "Built-in model config: deepseek-v4-flash");
  m->excludes(p);
  cmd->add_option("--context", o->planner.context, "Tokens of context per request to budget KV for")
      ->capture_default_str();
  cmd->add_option("--batch", o->planner.batch, "Concurrent requests (default: as many as fit, at most 256 per lane)");
  cmd->add_option("-o,--output", o->output, "Plan file to write")->capture_default_str();
  cmd->add_flag("--json", o->json, "Print the result as JSON instead of a table");
  cmd->add_option("--svg", o->svg, "Also draw the plan to this SVG file");
  cmd->add_option("--stages", o->planner.stages, "Force the number of pipeline stages");
  cmd->add_option("--lanes", o->planner.lanes, "Force the number of lanes (ranks per stage)");
  cmd->add_option("--expert-load", o->expert_load,
                  "Expert-load histogram JSON: replicate and balance hot experts (docs/planner.md)");
  cmd->add_option("--redundant-experts", o->planner.redundant_experts,
                  "Expert replicas per layer and stage with --expert-load (default: one per lane)");
  cmd->add_option("--kv-format", o->kv_format, "KV storage: fp8 or bf16")->capture_default_str();
  cmd->add_option("--reserve", o->planner.reserve, "Fraction of device memory kept free for activations and workspace")
      ->capture_default_str();
  cmd->add_option("--prefill-chunk", o->planner.prefill_chunk, "Tokens per prefill micro-batch")->capture_default_str();
  cmd->add_flag("--calibrate", o->calibrate,
                "Run --model here (one process), fit the CPU efficiencies of the cost model to the measured prefill "
                "and decode step times, write them to the --calibration file, then plan with them");
  cmd->add_option("--calibration", o->calibration,
                  "Calibration file: written by --calibrate (default calibration.yaml), otherwise read and applied "
                  "to every CPU rank");
  cmd->add_option("--calibrate-prompt", o->calibrate_prompt, "Prompt tokens of the measured run")->capture_default_str();
  cmd->add_option("--calibrate-steps", o->calibrate_steps, "Decode steps of the measured run")->capture_default_str();
  cmd->add_option("--calibrate-repeats", o->calibrate_repeats, "Measured runs; the fastest is kept")
      ->capture_default_str();
  cmd->callback([o] { run_plan(*o); });
}

}  // namespace flashline

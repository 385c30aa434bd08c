// `flashline plan`: cluster description + model config -> plan file, table, JSON, SVG.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "cluster/cluster_spec.h"
#include "launch/commands.h"
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
  PlannerOptions planner;
};

void run_plan(PlanOptions& o) {
  if (o.calibrate)
    throw InputError(
        "plan --calibrate: fitting the cost model needs measured step times from the pipeline runtime, which this "
        "build does not have yet; the constants in docs/planner.md are used");
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
  cmd->add_flag("--calibrate", o->calibrate, "Fit the cost model from a short measured run (needs the pipeline runtime)");
  cmd->callback([o] { run_plan(*o); });
}

}  // namespace flashline

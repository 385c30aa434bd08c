#include "partition/cost_calibration.h"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <functional>

#include "base/yaml_reader.h"
#include "partition/stage_planner.h"
#include "base/input_error.h"

namespace flashline {
namespace {

constexpr double kMinEfficiency = 1e-6, kMaxEfficiency = 100;

// x in [lo, hi] with f(x) = target for a non-increasing f, by bisection on log x; the bound
// nearest to the target when it is out of reach.
double solve_decreasing(const std::function<double(double)>& f, double target) {
  double lo = std::log(kMinEfficiency), hi = std::log(kMaxEfficiency);
  if (f(std::exp(hi)) >= target) return std::exp(hi);
  if (f(std::exp(lo)) <= target) return std::exp(lo);
  for (int i = 0; i < 60; ++i) {
    double mid = (lo + hi) / 2;
    (f(std::exp(mid)) > target ? lo : hi) = mid;
  }
  return std::exp((lo + hi) / 2);
}

double relative_error(double predicted, double measured) { return std::abs(predicted / measured - 1); }

}  // namespace

StepPrediction predict_run(const CostModel& cost, const ClusterSpec& machine, const MeasuredRun& run) {
  PlannerOptions o;
  o.stages = o.lanes = 1;
  o.batch = 1;
  o.context = run.prompt_tokens;
  o.prefill_chunk = run.prompt_tokens;
  o.model_name = run.model;
  Plan p = StagePlanner(cost, machine, o).plan().plan;
  return {p.predicted.prefill_step_s, p.predicted.decode_step_s};
}

Calibration calibrate(const CostModel& cost, const ClusterSpec& machine, const MeasuredRun& run) {
  if (machine.rank_count() != 1 || machine.nodes.empty() || machine.nodes[0].devices.empty() ||
      machine.nodes[0].devices[0].gpu)
    throw InputError(fmt::format("calibration: {} is not a one-rank CPU cluster", machine.name));
  if (run.prompt_tokens < 1 || run.decode_steps < 1 || !(run.prefill_s > 0) || !(run.decode_step_s > 0))
    throw InputError("calibration: the measured run needs a prompt, decode steps and positive times");
  Calibration c;
  c.measured = run;
  c.before = predict_run(cost, machine, run);
  CostModel m = cost;
  CostConstants k = cost.constants();
  auto predict = [&](double compute, double memory) {
    k.cpu_compute_efficiency = compute;
    k.cpu_memory_efficiency = memory;
    m.set_constants(k);
    return predict_run(m, machine, run);
  };
  // Prefill is mostly compute, decode mostly memory: solve one equation for each efficiency in
  // turn with the other held, until both step times match.
  double compute = k.cpu_compute_efficiency, memory = k.cpu_memory_efficiency;
  for (int round = 0; round < 50; ++round) {
    compute = solve_decreasing([&](double x) { return predict(x, memory).prefill_s; }, run.prefill_s);
    memory = solve_decreasing([&](double x) { return predict(compute, x).decode_step_s; }, run.decode_step_s);
    c.after = predict(compute, memory);
    if (relative_error(c.after.prefill_s, run.prefill_s) < 1e-6 &&
        relative_error(c.after.decode_step_s, run.decode_step_s) < 1e-6)
      break;
  }
  c.constants = k;
  c.exact = relative_error(c.after.prefill_s, run.prefill_s) < 1e-3 &&
            relative_error(c.after.decode_step_s, run.decode_step_s) < 1e-3;
  return c;
}

void Calibration::save(const std::filesystem::path& path) const {
  std::string s = fmt::format(
      "# flashline plan --calibrate: CPU efficiencies of the cost model fitted to a measured run;\n"
      "# apply with `flashline plan --calibration {}` (docs/planner.md). Times in seconds.\n"
      "format: 1\n"
      "cpu_compute_efficiency: {}\n"
      "cpu_memory_efficiency: {}\n"
      "measured:\n"
      "  host: \"{}\"\n"
      "  model: \"{}\"\n"
      "  prompt_tokens: {}\n"
      "  decode_steps: {}\n"
      "  prefill: {:.6g}\n"
      "  decode_step: {:.6g}\n"
      "predicted_before: {{prefill: {:.6g}, decode_step: {:.6g}}}\n"
      "predicted_after: {{prefill: {:.6g}, decode_step: {:.6g}}}\n",
      path.filename().string(), constants.cpu_compute_efficiency, constants.cpu_memory_efficiency, measured.host,
      measured.model, measured.prompt_tokens, measured.decode_steps, measured.prefill_s, measured.decode_step_s,
      before.prefill_s, before.decode_step_s, after.prefill_s, after.decode_step_s);
  std::ofstream f(path);
  if (!(f << s)) throw InputError(fmt::format("{}: cannot write the calibration file", path.string()));
}

CostConstants Calibration::load(const std::filesystem::path& path, CostConstants base) {
  YamlReader r(load_yaml_file(path), path.string());
  r.allow_only({"format", "cpu_compute_efficiency", "cpu_memory_efficiency", "measured", "predicted_before",
                "predicted_after"});
  if (r.integer("format", 1) != 1) r.fail(r.get("format"), "format", "expected format 1");
  auto efficiency = [&](std::string_view key) {
    double v = r.number(key);
    if (!(v >= kMinEfficiency && v <= kMaxEfficiency))
      r.fail(r.get(key), key, fmt::format("expected an efficiency in [{:g}, {:g}], got {:g}", kMinEfficiency,
                                          kMaxEfficiency, v));
    return v;
  };
  base.cpu_compute_efficiency = efficiency("cpu_compute_efficiency");
  base.cpu_memory_efficiency = efficiency("cpu_memory_efficiency");
  return base;
}

}  // namespace flashline

#include "bench/plan_comparison.h"

#include <fmt/format.h>

namespace flashline {
namespace {

std::string ms_or_dash(std::optional<double> s) { return s ? fmt::format("{:.2f}", *s * 1000) : "-"; }

nlohmann::json number_or_null(std::optional<double> v, double scale = 1) {
  if (v) return *v * scale;
  return nullptr;
}

std::optional<double> at(const std::vector<double>& v, std::size_t i) {
  return i < v.size() ? std::optional<double>(v[i]) : std::nullopt;
}

}  // namespace

std::string plan_comparison_table(const Plan& plan, const PhaseThroughput& measured, const MeasuredStages& stages,
                                  int64_t batch) {
  const Prediction& p = plan.predicted;
  std::string out = fmt::format("{:=^78}\n", " Planner prediction vs measured ");
  out += fmt::format("plan: {} stages x {} lanes; predicted for batch {} and prefill chunks of {}; measured at {} at once\n",
                     plan.stages.size(), plan.lanes, p.batch, p.prefill_chunk, batch);
  if (p.batch != batch)
    out += fmt::format("(like with like: `flashline plan ... --batch {}` predicts this run's batch)\n", batch);
  out += fmt::format("{:<34} {:>14} {:>14} {:>12}\n", "", "predicted", "measured", "meas/pred");
  auto row = [&](const std::string& name, double pred, double meas) {
    out += fmt::format("{:<34} {:>14.2f} {:>14.2f} {:>12}\n", name, pred, meas,
                       pred > 0 && meas > 0 ? fmt::format("{:.3f}", meas / pred) : "-");
  };
  row("Decode throughput (tok/s):", p.decode_tokens_per_s, measured.decode_tokens_per_s);
  row("Prefill throughput (tok/s):", p.prefill_tokens_per_s, measured.prefill_tokens_per_s);
  out += fmt::format("{:<6} {:>7} {:>16} {:>16} {:>16} {:>10}\n", "stage", "layers", "pred decode ms",
                     "pred prefill ms", "measured step ms", "idle share");
  for (std::size_t s = 0; s < plan.stages.size(); ++s) {
    const auto& st = plan.stages[s];
    const auto idle = at(stages.idle_share, s);
    out += fmt::format("{:<6} {:>7} {:>16.2f} {:>16.2f} {:>16} {:>10}\n", s,
                       fmt::format("{}-{}", st.first_layer, st.last_layer), st.estimate.decode_step_s * 1000,
                       st.estimate.prefill_step_s * 1000, ms_or_dash(at(stages.step_s, s)),
                       idle ? fmt::format("{:.1f}%", *idle * 100) : "-");
  }
  out += std::string(78, '=') + "\n";
  return out;
}

nlohmann::json plan_comparison_json(const Plan& plan, const PhaseThroughput& measured, const MeasuredStages& stages) {
  using nlohmann::json;
  const Prediction& p = plan.predicted;
  json j = {{"stages", plan.stages.size()},
            {"lanes", plan.lanes},
            {"predicted_batch", p.batch},
            {"predicted_prefill_chunk", p.prefill_chunk},
            {"predicted_decode_tokens_per_s", p.decode_tokens_per_s},
            {"predicted_prefill_tokens_per_s", p.prefill_tokens_per_s},
            {"predicted_decode_step_ms", p.decode_step_s * 1000},
            {"predicted_prefill_step_ms", p.prefill_step_s * 1000},
            {"measured_decode_tokens_per_s", measured.decode_tokens_per_s},
            {"measured_prefill_tokens_per_s", measured.prefill_tokens_per_s}};
  json per_stage = json::array();
  for (std::size_t s = 0; s < plan.stages.size(); ++s) {
    const auto& st = plan.stages[s];
    const auto step = at(stages.step_s, s);
    const auto idle = at(stages.idle_share, s);
    per_stage.push_back({{"stage", s},
                         {"first_layer", st.first_layer},
                         {"last_layer", st.last_layer},
                         {"predicted_decode_step_ms", st.estimate.decode_step_s * 1000},
                         {"predicted_prefill_step_ms", st.estimate.prefill_step_s * 1000},
                         {"bottleneck", st.estimate.bottleneck},
                         {"measured_step_ms", number_or_null(step, 1000)},
                         {"measured_idle_share", number_or_null(idle)}});
  }
  j["per_stage"] = per_stage;
  return j;
}

}  // namespace flashline

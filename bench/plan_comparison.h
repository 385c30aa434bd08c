#pragma once
// The planner's predictions next to what a run measured: decode and prefill tokens/s and step
// times, per stage (step time, and the share of the run a stage's ranks sat idle: the pipeline
// bubble plus any wait for work).
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/serve_result.h"
#include "partition/plan.h"

namespace flashline {

struct MeasuredStages {
  std::vector<double> step_s;                 // mean compute time of a step, per stage
  std::vector<double> idle_share;             // 1 - busy / wall, per stage; empty: not measured
};

// `batch`: requests of the measured run at once (the concurrency), said beside the plan's own.
std::string plan_comparison_table(const Plan& plan, const PhaseThroughput& measured, const MeasuredStages& stages,
                                  int64_t batch);
nlohmann::json plan_comparison_json(const Plan& plan, const PhaseThroughput& measured, const MeasuredStages& stages);

}  // namespace flashline

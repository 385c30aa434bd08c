#pragma once
// The planner: stages x lanes for a cluster, contiguous layer ranges minimising the slowest
// stage (exact dynamic programming), experts per lane, the KV budget per rank, predicted
// throughput, and an explanation naming stage, node and sizes when nothing fits.
#include <functional>
#include <string>
#include <vector>

#include "base/input_error.h"
#include "cluster/cluster_spec.h"
#include "partition/cost_model.h"
#include "partition/expert_placement.h"
#include "partition/plan.h"

namespace flashline {

// Splits items 0..n-1 into `parts` non-empty contiguous ranges minimising the largest
// cost(part, begin, end) (end exclusive); a cost of +infinity marks a range that cannot be
// used. Exact: dynamic programming over (part, prefix), O(parts * n^2) cost calls.
struct ContiguousSplit {
  std::vector<int> begin;  // first item of each part; empty when no split is feasible
  double cost = 0;         // the largest part cost (+infinity when infeasible)
};
ContiguousSplit optimal_contiguous_split(int n, int parts, const std::function<double(int, int, int)>& cost);

struct PlannerOptions {
  int stages = 0;                   // 0: search
  int lanes = 0;                    // 0: search
  int64_t context = 65536;          // tokens of context per request
  int64_t batch = 0;                // concurrent requests; 0: as many as fit, capped per lane
  int64_t max_requests_per_lane = 256;
  int64_t prefill_chunk = 4096;     // tokens per prefill micro-batch
  double reserve = 0.10;            // device memory kept for activations, workspace, fragmentation
  const ExpertLoad* expert_load = nullptr;
  int redundant_experts = -1;       // replicas per layer beyond one per expert; -1: one per lane with a histogram
  std::string model_name;
};

// Per stage figures the report prints beyond what the plan file stores.
struct StageDetail {
  std::vector<std::string> hosts;
  int min_experts = 0, max_experts = 0;  // experts per rank over the stage's layers and lanes
  int64_t usable_bytes = 0;              // smallest over the stage's ranks
  double compute_s = 0, memory_s = 0, all_to_all_s = 0, pipeline_s = 0;  // decode step parts
};

struct PlanResult {
  Plan plan;
  std::vector<StageDetail> stages;
  int64_t max_requests = 0;     // at the plan's context, all lanes
  int64_t max_context = 0;      // for the planned batch
  int ranks_used = 0, ranks_total = 0;
  std::vector<std::string> notes;
};

class StagePlanner {
 public:
  StagePlanner(const CostModel& cost, const ClusterSpec& cluster, PlannerOptions options);
  // Throws InputError explaining what does not fit and what to change.
  PlanResult plan() const;

 private:
  struct Shape;
  struct Evaluation;
  Shape make_shape(int stages, int lanes) const;
  double stage_bytes(const Shape& sh, int s, int lane, int first, int last, int64_t requests) const;
  double stage_time(const Shape& sh, int s, int first, int last, bool prefill, int64_t requests, StageDetail* d) const;
  Evaluation evaluate(const Shape& sh, int64_t requests_per_lane) const;
  int64_t max_requests_per_lane(const Shape& sh) const;
  [[noreturn]] void explain_failure(const std::vector<Shape>& shapes) const;
  PlanResult build(const Shape& sh, const Evaluation& ev) const;

  const CostModel& cost_;
  const ClusterSpec& cluster_;
  PlannerOptions o_;
  std::vector<RankSlot> ranks_;
};

}  // namespace flashline

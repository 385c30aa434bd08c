#pragma once
// The MoE sub-block as route -> dispatch -> local experts -> combine. Dispatch and combine go
// through the ExpertExchange (all-to-all-v among the stage's lanes); every lane calls
// moe_forward for every MoE layer, with or without tokens. Expert outputs are added per token
// in increasing expert id, never in arrival order, so results do not depend on placement.
#include <map>
#include <vector>

#include "comms/expert_exchange.h"
#include "stages/layer_context.h"
#include "stages/model_weights.h"
#include "stages/step_batch.h"

namespace flashline {

// owner[e] = the lane this rank sends routed expert e's tokens to; layer_owner overrides it for
// single layers (per-layer expert maps). With replicas a rank picks one copy deterministically;
// every copy computes the same thing, so the choice never changes results.
struct ExpertRoutes {
  std::vector<int> owner;
  std::map<int, std::vector<int>> layer_owner;
  static ExpertRoutes single(int n_experts) { return {std::vector<int>(n_experts, 0), {}}; }
  int owner_of(int layer, int expert) const {
    auto it = layer_owner.find(layer);
    return (it == layer_owner.end() ? owner : it->second).at(expert);
  }
  // lanes[j] = experts held by lane j. Each expert goes to `own_lane` when it holds a copy
  // (no transfer), else to the lowest lane holding one; -1 where no lane holds it.
  static std::vector<int> choose(const std::vector<std::vector<int>>& lanes, int own_lane, int n_experts);
};

void moe_forward(const BlockWeights& bw, const StepBatch& batch, const float* x, float* out,
                 const LayerContext& ctx, ExpertExchange& exchange, const ExpertRoutes& placement,
                 Trace* trace);

// The routing of each row: k experts and their weights.
struct Routing {
  int k = 0;
  std::vector<int32_t> experts;  // [rows, k] in the gate's order
  std::vector<float> weights;    // [rows, k]
};
Routing route(const MoeWeights& w, bool hash, const int32_t* ids, const float* x, int rows, const LayerContext& ctx);

}  // namespace flashline

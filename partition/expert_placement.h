#pragma once
// Which lane of a stage holds which routed experts. Uniform load: contiguous, equal blocks.
// With a measured load histogram: EPLB-style, the hottest experts get replicas (each replica
// takes an equal share of its expert's load) and replicas are packed so that every lane
// holds the same number of expert slots and as equal a load as the greedy packing finds.
#include <filesystem>
#include <map>
#include <optional>
#include <vector>

#include "partition/plan.h"

namespace flashline {

struct ExpertPlacement {
  ExpertMap map;
  std::vector<double> lane_load;  // share of the layer's token-expert pairs each lane serves (sums to 1)
  double max_lane_load() const;
  int max_slots() const;  // most experts held by one lane
};

ExpertPlacement place_experts_uniform(int experts, int lanes);
// `load[e]`: relative load of expert e; `redundant`: replicas to add beyond one per expert.
ExpertPlacement place_experts_balanced(const std::vector<double>& load, int lanes, int redundant);

// Expert-load histogram (JSON): {"load": [n experts]} applies to every layer, and/or
// {"layers": {"5": [n experts], ...}} per layer; layers not named use "load" or uniform.
struct ExpertLoad {
  std::vector<double> all_layers;
  std::map<int, std::vector<double>> by_layer;

  static ExpertLoad load(const std::filesystem::path& path, int layers, int experts);
  const std::vector<double>* of(int layer) const;  // nullptr: uniform
};

}  // namespace flashline

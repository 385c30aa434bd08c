#pragma once
// The plan file: which rank runs which layers and experts, and where each rank lives. The
// planner writes it, the launcher turns it into an mpirun command, and the pipeline runtime
// reads it on every rank. This library needs nothing but yaml-cpp, so the runtime links it
// without the planner. Format: docs/plan-format.md.
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "model/model_config.h"

namespace flashline {

// Routed experts held by each lane for one layer. An expert may sit on several lanes
// (replicas of hot experts); every expert must sit on at least one.
struct ExpertMap {
  std::vector<std::vector<int>> lanes;  // lanes[j] = sorted expert ids on lane j
  bool operator==(const ExpertMap&) const = default;
};

// What the planner predicted for a stage; informational, the runtime does not need it.
struct StageEstimate {
  int64_t weight_bytes = 0;  // largest over the stage's ranks
  int64_t kv_bytes = 0;      // KV + compressor state of the planned batch, per rank
  int64_t free_bytes = 0;    // smallest over the stage's ranks, after weights, KV and reserve
  double decode_step_s = 0;  // one decode micro-batch through this stage
  double prefill_step_s = 0; // one prefill chunk through this stage
  std::string bottleneck;    // what dominates decode_step_s: "memory", "compute", "all-to-all", "pipeline"
  bool operator==(const StageEstimate&) const = default;
};

struct StagePlan {
  int first_layer = 0;  // inclusive range of main layers [first_layer, last_layer]
  int last_layer = 0;
  std::vector<int> ranks;  // world rank of lane 0, 1, ...
  bool embedding = false;  // holds embed.weight (stage 0; the MTP stage loads a copy too)
  bool head = false;       // holds hc_head, norm, head (last stage)
  bool mtp = false;        // holds the MTP block(s) (last stage)
  ExpertMap experts;                     // every layer of the stage unless overridden
  std::map<int, ExpertMap> layer_experts;  // per-layer maps (expert-load balancing)
  StageEstimate estimate;

  const ExpertMap& experts_of(int layer) const;
  int layer_count() const { return last_layer - first_layer + 1; }
  bool operator==(const StagePlan&) const = default;
};

struct RankPlacement {
  int rank = 0;
  int stage = 0;
  int lane = 0;
  std::string node;
  std::string host;
  std::string device;  // "cuda:3", "cpu:0"
  bool operator==(const RankPlacement&) const = default;
};

struct PlanNode {  // what the launcher needs to write hostfile and rankfile
  std::string name;
  std::string host;
  int slots = 0;
  int cpus = 0;  // 0: unknown, ranks are not bound to cores
  bool operator==(const PlanNode&) const = default;
};

struct PlanModel {
  std::string name;  // preset name or the model directory the plan was made for
  int layers = 0;    // main layers (MTP blocks follow)
  int mtp_layers = 0;
  int routed_experts = 0;
  bool operator==(const PlanModel&) const = default;
};

struct KvBudget {
  std::string format = "fp8";   // how KV entries are stored (see docs/planner.md)
  int64_t context = 0;          // tokens of context per request the budget was made for
  int64_t requests_per_lane = 0;  // concurrent requests of `context` tokens each lane can hold
  int64_t bytes_per_rank = 0;   // KV pages to allocate on every rank (smallest over ranks)
  bool operator==(const KvBudget&) const = default;
};

struct Prediction {
  int64_t batch = 0;                // concurrent requests the figures assume
  int64_t prefill_chunk = 0;        // tokens per prefill micro-batch
  double decode_tokens_per_s = 0;
  double prefill_tokens_per_s = 0;
  double decode_step_s = 0;         // slowest stage, one decode micro-batch
  double prefill_step_s = 0;
  bool operator==(const Prediction&) const = default;
};

struct Plan {
  static constexpr int kFormat = 1;
  PlanModel model;
  std::string cluster;           // cluster name
  bool localhost = false;        // every rank on this machine, CPU cores oversubscribed
  std::vector<PlanNode> nodes;
  int lanes = 0;
  std::vector<StagePlan> stages;
  std::vector<RankPlacement> ranks;  // indexed by world rank
  std::string pipeline_transport = "mpi";  // mpi | nccl
  std::string expert_transport = "mpi";
  KvBudget kv;
  Prediction predicted;

  int world_size() const { return int(ranks.size()); }
  bool operator==(const Plan&) const = default;

  std::string to_yaml() const;
  void save(const std::filesystem::path& path) const;
  // Parse and validate; errors name source:line:column and the plan entry.
  static Plan from_yaml(const std::string& text, const std::string& source);
  static Plan load(const std::filesystem::path& path);
  // Layer gaps/overlaps, experts owned by nobody, lane counts vs ranks, rank table consistency.
  void validate(const std::string& source) const;

  // Filled by from_yaml: the file position of each stage entry, for validation messages.
  // Where a plan was read from is not part of what it says, so it never compares unequal.
  struct SourcePositions {
    std::vector<std::string> stages;
    bool operator==(const SourcePositions&) const { return true; }
  } positions;
};

// The plan was made for this model: layer, MTP block and routed expert counts agree. Throws
// InputError naming `source` (the plan file), the plan's model name and both numbers.
void check_plan_matches_model(const Plan& plan, const ModelConfig& c, const std::string& source);

// "0-31,40,42-43" <-> sorted ids; parse throws std::invalid_argument on bad text.
std::string format_id_ranges(const std::vector<int>& ids);
std::vector<int> parse_id_ranges(const std::string& text);

}  // namespace flashline

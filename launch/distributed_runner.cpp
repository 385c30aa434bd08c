#include "launch/distributed_runner.h"

#include <fmt/format.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

#include "base/input_error.h"
#include "comms/mpi/mpi_expert_exchange.h"
#include "comms/mpi/mpi_pipeline_link.h"
#include "comms/mpi/mpi_world.h"
#include "runtime/pipeline_runner.h"
#ifdef FLASHLINE_HAVE_NCCL
#include "comms/nccl/nccl_expert_exchange.h"
#include "comms/nccl/nccl_pipeline_link.h"
#endif

namespace flashline {
namespace {

std::set<int> to_set(const std::vector<int>& v) { return {v.begin(), v.end()}; }

#ifdef FLASHLINE_HAVE_NCCL
constexpr bool kHaveNccl = true;
#else
constexpr bool kHaveNccl = false;
#endif

// Every directed route the pipeline sends on (PipelineRunner): forward to the next stage of the
// lane, sampled ids from the last stage back to stage 0, results from each lane's last stage to
// rank 0. The NCCL link opens one communicator per route.
[[maybe_unused]] std::vector<std::pair<int, int>> pipeline_routes(const Plan& plan) {
  std::vector<std::pair<int, int>> routes;
  const auto& st = plan.stages;
  for (int j = 0; j < plan.lanes; ++j) {
    for (std::size_t s = 0; s + 1 < st.size(); ++s) routes.emplace_back(st[s].ranks[j], st[s + 1].ranks[j]);
    routes.emplace_back(st.back().ranks[j], st.front().ranks[j]);
    routes.emplace_back(st.back().ranks[j], 0);
  }
  return routes;
}

// "cuda:3" -> 3; -1 for anything else.
int cuda_device_of(const std::string& device) {
  if (!device.starts_with("cuda:") || device.size() == 5) return -1;
  int n = 0;
  for (char c : device.substr(5)) {
    if (c < '0' || c > '9' || n > 100000) return -1;
    n = n * 10 + (c - '0');
  }
  return n;
}

class DistributedRunner final : public RequestRunner {
 public:
  explicit DistributedRunner(const RunnerOptions& o) : world_(nullptr, nullptr), options_(o) {
    startup_checks();
    try {
      load();
    } catch (const std::exception& e) {
      world_.abort(fmt::format("stage {} lane {}: failed to load {}: {}", stage_, lane_, o.model, e.what()), 3);
    }
  }

  const ModelConfig& config() const override { return config_; }
  bool writes_output() const override { return world_.rank() == 0; }

  std::vector<GenerationResult> run(const std::vector<GenerationRequest>& requests) override {
    try {
      PipelineTopology topo;
      for (const auto& st : plan_.stages) topo.ranks.push_back(st.ranks);
      PipelineRunner runner(*executor_, topo, stage_, lane_, *link_, *exchange_, options_.micro_batches);
      return runner.run(requests);
    } catch (const std::exception& e) {
      world_.abort(fmt::format("stage {} lane {}: {}", stage_, lane_, e.what()), 4);
    }
  }

 private:
  // Everything that can be decided from the plan, the config and the world: agreed on by all
  // ranks, so a bad plan stops every rank with one message and before any weight is read.
  void startup_checks() {
    std::string error;
    try {
      plan_ = Plan::load(options_.plan);
      config_ = ModelConfig::load(std::filesystem::path(options_.model) / "config.json");
      check_plan_against_model(plan_, config_, world_.size(), options_.plan);
      const auto& me = plan_.ranks.at(world_.rank());
      stage_ = me.stage, lane_ = me.lane;
      for (const auto& t : {plan_.pipeline_transport, plan_.expert_transport}) {
        if (t == "mpi") continue;
        if (t == "nccl" && !kHaveNccl)
          throw InputError(fmt::format("{}: transports: \"nccl\" is not available: this flashline was built "
                                       "without CUDA and NCCL (use mpi)",
                                       options_.plan));
        if (t != "nccl")
          throw InputError(fmt::format("{}: transports: \"{}\" is not available to this runtime (use mpi{})",
                                       options_.plan, t, kHaveNccl ? " or nccl" : ""));
        device_ = cuda_device_of(me.device);
        if (device_ < 0)
          throw InputError(fmt::format("{}: transports: nccl needs a CUDA device on every rank, but rank {} is on "
                                       "\"{}\" (expected cuda:N)",
                                       options_.plan, world_.rank(), me.device));
#ifdef FLASHLINE_HAVE_NCCL
        if (const int n = cuda_device_count(); device_ >= n)
          throw InputError(fmt::format("{}: rank {} (stage {} lane {}) is on cuda:{}, but {} CUDA devices are visible on {}",
                                       options_.plan, world_.rank(), stage_, lane_, device_, n, world_.host()));
#endif
      }
    } catch (const std::exception& e) {
      error = e.what();
    }
    int mine = error.empty() ? INT_MAX : world_.rank(), first = INT_MAX;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == INT_MAX) return;
    if (first == world_.rank()) fmt::print(stderr, "flashline: error: {}\n", error);
    world_.finalize_and_exit(2);  // every rank stops here, none is left waiting
  }

  void load() {
    const auto sel = selection_for(plan_, stage_, lane_, config_);
    ck_ = std::make_unique<Checkpoint>(Checkpoint::open(options_.model, sel));
    const auto& st = plan_.stages[stage_];
    ExpertRoutes placement{ExpertRoutes::choose(st.experts.lanes, lane_, config_.n_experts), {}};
    for (const auto& [layer, m] : st.layer_experts)
      placement.layer_owner[layer] = ExpertRoutes::choose(m.lanes, lane_, config_.n_experts);
    stage_comm_ = world_.split(stage_, lane_);
#ifdef FLASHLINE_HAVE_NCCL
    if (plan_.expert_transport == "nccl") exchange_ = std::make_unique<NcclExpertExchange>(stage_comm_, device_);
    if (plan_.pipeline_transport == "nccl")
      link_ = std::make_unique<NcclPipelineLink>(MPI_COMM_WORLD, device_, pipeline_routes(plan_));
#endif
    if (!exchange_) exchange_ = std::make_unique<MpiExpertExchange>(stage_comm_);
    if (!link_) link_ = std::make_unique<MpiPipelineLink>(MPI_COMM_WORLD);
    tf_ = std::make_unique<Transformer>(*ck_, options_.numerics, *exchange_, std::move(placement));
    executor_ = std::make_unique<StageExecutor>(*tf_, st.first_layer, st.last_layer + 1, stage_ == 0,
                                                stage_ + 1 == int(plan_.stages.size()));
    // Every rank loaded: from here on a failure is an abort, before it a clean stop.
    if (!world_.all_ok(true)) world_.abort("a peer failed to load", 3);
  }

  MpiWorld world_;
  RunnerOptions options_;
  Plan plan_;
  ModelConfig config_;
  int stage_ = 0, lane_ = 0;
  int device_ = -1;  // CUDA device of the NCCL transports
  MPI_Comm stage_comm_ = MPI_COMM_NULL;
  std::unique_ptr<Checkpoint> ck_;
  std::unique_ptr<ExpertExchange> exchange_;
  std::unique_ptr<PipelineLink> link_;
  std::unique_ptr<Transformer> tf_;
  std::unique_ptr<StageExecutor> executor_;
};

}  // namespace

std::unique_ptr<RequestRunner> make_distributed_runner(const RunnerOptions& options) {
  return std::make_unique<DistributedRunner>(options);
}

void check_plan_against_model(const Plan& plan, const ModelConfig& c, int world_size, const std::string& source) {
  if (plan.model.layers != c.n_layers)
    throw InputError(fmt::format("{}: model.layers = {}, but the model has {} layers", source, plan.model.layers,
                                 c.n_layers));
  if (plan.model.routed_experts != c.n_experts)
    throw InputError(fmt::format("{}: model.routed_experts = {}, but the model has {} routed experts", source,
                                 plan.model.routed_experts, c.n_experts));
  if (plan.model.mtp_layers != c.n_mtp)
    throw InputError(fmt::format("{}: model.mtp_layers = {}, but the model has {} MTP blocks", source,
                                 plan.model.mtp_layers, c.n_mtp));
  if (plan.world_size() != world_size)
    throw InputError(fmt::format("{}: the plan has {} ranks ({} stages x {} lanes), but {} processes were started "
                                 "(mpirun -np {})",
                                 source, plan.world_size(), plan.stages.size(), plan.lanes, world_size,
                                 plan.world_size()));
}

CheckpointSelection selection_for(const Plan& plan, int stage, int lane, const ModelConfig& c) {
  const auto& st = plan.stages.at(stage);
  CheckpointSelection sel;
  sel.layer_begin = st.first_layer;
  sel.layer_end = st.last_layer + 1;
  sel.experts = to_set(st.experts.lanes.at(lane));
  for (const auto& [layer, m] : st.layer_experts) sel.layer_experts[layer] = to_set(m.lanes.at(lane));
  sel.embedding = st.embedding;
  sel.head = st.head;
  sel.mtp = st.mtp && c.n_mtp > 0;
  return sel;
}

}  // namespace flashline

#include "launch/engine_bootstrap.h"

#include <fmt/format.h>

#include <climits>
#include <cstdio>
#include <cstdlib>

#include "base/input_error.h"
#include "comms/mpi/mpi_expert_exchange.h"
#include "comms/mpi/mpi_pipeline_link.h"
#include "comms/mpi/mpi_world.h"
#include "base/input_error.h"
#include "base/quantity.h"
#include "launch/thread_count.h"
#include "launch/token_ids_arg.h"
#include "partition/plan.h"
#include "runtime/serving_engine.h"
#include "stages/checkpoint.h"
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

constexpr int64_t kDefaultKvBytes = int64_t(1) << 30;

int64_t kv_budget(const EngineOptions& o, const Plan* plan) {
  if (!o.kv_cache_memory.empty()) {
    const auto b = parse_quantity(o.kv_cache_memory, QuantityKind::Bytes);
    if (!b || *b < double(o.kv_page_bytes))
      throw InputError(fmt::format("--kv-cache-memory: expected a size of at least one {}-byte page (e.g. 4GiB), got "
                                   "\"{}\"",
                                   o.kv_page_bytes, o.kv_cache_memory));
    return int64_t(*b);
  }
  if (plan && plan->kv.bytes_per_rank > 0) return plan->kv.bytes_per_rank;
  return kDefaultKvBytes;
}

// "rank:R:step:N" -> N for this rank (a test-only switch: the rank throws at its N-th step).
int64_t fault_step_for(int rank) {
  const char* v = std::getenv("FLASHLINE_TEST_FAULT");
  if (!v) return -1;
  int r = -1;
  long long n = -1;
  if (std::sscanf(v, "rank:%d:step:%lld", &r, &n) != 2 || n < 0)
    throw InputError(fmt::format("FLASHLINE_TEST_FAULT: expected rank:R:step:N, got \"{}\"", v));
  return r == rank ? n : -1;
}

SchedulerLimits limits_of(const EngineOptions& o, int stages) {
  SchedulerLimits l;
  l.max_batch_tokens = o.max_batch_tokens;
  l.max_seqs = o.max_seqs;
  l.prefill_chunk = o.prefill_chunk;
  l.max_in_flight = o.micro_batches > 0 ? o.micro_batches : stages;
  l.speculative_min_acceptance = o.speculative_min_acceptance;
  return l;
}

int context_limit(const ModelConfig& c) { return c.max_positions > 0 ? c.max_positions : 1 << 30; }

CheckpointSelection whole_model(const EngineOptions& o) {
  CheckpointSelection sel;
  sel.check_values = !o.skip_weight_check;
  return sel;
}

// An Engine that owns what its engine needs (checkpoint, model, transports, rank loop); the
// engine is stopped before they go.
class HostedEngine final : public Engine {
 public:
  struct Parts {
    virtual ~Parts() = default;
  };
  HostedEngine(std::unique_ptr<Parts> parts, std::unique_ptr<ServingEngine> engine)
      : parts_(std::move(parts)), engine_(std::move(engine)) {}
  ~HostedEngine() override { engine_.reset(); }
  int64_t submit(EngineRequest r) override { return engine_->submit(std::move(r)); }
  void abort(int64_t id) override { engine_->abort(id); }
  EngineStats stats() const override { return engine_->stats(); }
  int context_limit() const override { return engine_->context_limit(); }
  int vocab_size() const override { return engine_->vocab_size(); }
  int eos_id() const override { return engine_->eos_id(); }
  bool healthy() const override { return engine_->healthy(); }
  void shutdown(double timeout_s) override { engine_->shutdown(timeout_s); }
  std::vector<RankStats> rank_stats() const override { return engine_->rank_stats(); }

 private:
  std::unique_ptr<Parts> parts_;
  std::unique_ptr<ServingEngine> engine_;
};

// Sizes this rank's compute pool before any weight is read (the value check at load is parallel):
// --threads, else OMP_NUM_THREADS, else the plan's share of the host, else the machine
// (launch/thread_count.h). Kernel and stage regions use it from whichever thread runs the model.
int size_compute_pool(int flag_threads, const Plan* plan, int world_rank) {
  const int n = compute_threads(requested_threads(flag_threads, std::getenv("OMP_NUM_THREADS")), plan, world_rank);
  apply_compute_threads(n);
  return n;
}

// One process: the whole model, loopback transports, one stage and one lane.
struct LocalParts final : HostedEngine::Parts {
  explicit LocalParts(const EngineOptions& o)
      : threads(size_compute_pool(o.threads, nullptr, 0)),
        ck(Checkpoint::open(o.model, whole_model(o))),
        tf(ck, o.numerics, exchange, ExpertRoutes::single(ck.config().n_experts)) {
    const auto& c = ck.config();
    const int64_t budget = kv_budget(o, nullptr);
    executor = std::make_unique<StageExecutor>(tf, 0, c.n_layers, true, true,
                                               std::make_unique<KvStorage>(c, std::size_t(budget), std::size_t(o.kv_page_bytes)));
    RankLoopConfig rc;
    rc.topology = LaneTopology::single();
    rc.limits = limits_of(o, 1);
    rc.stage_pools = {{0, c.n_layers, executor->pages_total(), o.speculative_tokens > 0 ? c.n_mtp : 0}};
    rc.page_bytes = std::size_t(o.kv_page_bytes);
    rc.context_limit = context_limit(c);
    rc.speculative_tokens = o.speculative_tokens;
    rc.fault_step = fault_step_for(0);
    loop = std::make_unique<RankLoop>(*executor, link, nullptr, exchange, rc);
  }
  int threads;  // first member: the pool is sized before the checkpoint below is read
  LoopbackExpertExchange exchange;
  LoopbackPipelineLink link;
  Checkpoint ck;
  Transformer tf;
  std::unique_ptr<StageExecutor> executor;
  std::unique_ptr<RankLoop> loop;
};

// One rank of a plan's world under mpirun.
struct WorldParts final : HostedEngine::Parts {
  explicit WorldParts(const EngineOptions& o) : world(nullptr, nullptr), options(o) {
    startup_checks();
    try {
      load();
    } catch (const std::exception& e) {
      world.abort(fmt::format("stage {} lane {}: failed to load {}: {}", stage, lane, o.model, e.what()), 3);
    }
  }
  [[noreturn]] void fatal(const std::string& cause) const {
    world.abort(fmt::format("stage {} lane {}: {}", stage, lane, cause), 4);
  }

  // Everything that can be decided from the plan, the config and the world: agreed on by all
  // ranks, so a bad plan stops every rank with one message and before any weight is read.
  void startup_checks() {
    std::string error;
    try {
      plan = Plan::load(options.plan);
      config = ModelConfig::load(std::filesystem::path(options.model) / "config.json");
      check_plan_against_model(plan, config, world.size(), options.plan);
      const auto& me = plan.ranks.at(world.rank());
      stage = me.stage, lane = me.lane;
      for (const auto& t : {plan.pipeline_transport, plan.expert_transport}) {
        if (t == "mpi") continue;
        if (t == "nccl" && !kHaveNccl)
          throw InputError(fmt::format("{}: transports: \"nccl\" is not available: this flashline was built "
                                       "without CUDA and NCCL (use mpi)",
                                       options.plan));
        if (t != "nccl")
          throw InputError(fmt::format("{}: transports: \"{}\" is not available to this runtime (use mpi{})",
                                       options.plan, t, kHaveNccl ? " or nccl" : ""));
        device = cuda_device_of(me.device);
        if (device < 0)
          throw InputError(fmt::format("{}: transports: nccl needs a CUDA device on every rank, but rank {} is on "
                                       "\"{}\" (expected cuda:N)",
                                       options.plan, world.rank(), me.device));
#ifdef FLASHLINE_HAVE_NCCL
        if (const int n = cuda_device_count(); device >= n)
          throw InputError(fmt::format("{}: rank {} (stage {} lane {}) is on cuda:{}, but {} CUDA devices are visible on {}",
                                       options.plan, world.rank(), stage, lane, device, n, world.host()));
#endif
      }
      budget = kv_budget(options, &plan);
      fault_step = fault_step_for(world.rank());
      size_compute_pool(options.threads, &plan, world.rank());
    } catch (const std::exception& e) {
      error = e.what();
    }
    int mine = error.empty() ? INT_MAX : world.rank(), first = INT_MAX;
    MPI_Allreduce(&mine, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == INT_MAX) return;
    if (first == world.rank()) fmt::print(stderr, "flashline: error: {}\n", error);
    world.finalize_and_exit(2);  // every rank stops here, none is left waiting
  }

  void load() {
    auto sel = selection_for(plan, stage, lane, config);
    sel.check_values = !options.skip_weight_check;
    ck = std::make_unique<Checkpoint>(Checkpoint::open(options.model, sel));
    const auto& st = plan.stages[stage];
    ExpertRoutes routes{ExpertRoutes::choose(st.experts.lanes, lane, config.n_experts), {}};
    for (const auto& [layer, m] : st.layer_experts)
      routes.layer_owner[layer] = ExpertRoutes::choose(m.lanes, lane, config.n_experts);
    stage_comm = world.split(stage, lane);
#ifdef FLASHLINE_HAVE_NCCL
    if (plan.expert_transport == "nccl") exchange = std::make_unique<NcclExpertExchange>(stage_comm, device);
    if (plan.pipeline_transport == "nccl")
      data_link = std::make_unique<NcclPipelineLink>(MPI_COMM_WORLD, device, pipeline_routes(plan));
#endif
    if (!exchange) exchange = std::make_unique<MpiExpertExchange>(stage_comm);
    link = std::make_unique<MpiPipelineLink>(MPI_COMM_WORLD);
    tf = std::make_unique<Transformer>(*ck, options.numerics, *exchange, std::move(routes));
    const bool last = stage + 1 == int(plan.stages.size());
    executor = std::make_unique<StageExecutor>(*tf, st.first_layer, st.last_layer + 1,
                                               stage == 0, last,
                                               std::make_unique<KvStorage>(config, std::size_t(budget), std::size_t(options.kv_page_bytes)));
    RankLoopConfig rc;
    for (const auto& s : plan.stages) rc.topology.ranks.push_back(s.ranks);
    rc.stage = stage, rc.lane = lane;
    rc.limits = limits_of(options, int(plan.stages.size()));
    for (const auto& s : plan.stages) rc.stage_pools.push_back({s.first_layer, s.last_layer + 1, executor->pages_total()});
    if (options.speculative_tokens > 0) rc.stage_pools.back().mtp_layers = config.n_mtp;  // the MTP block's state
    rc.page_bytes = std::size_t(options.kv_page_bytes);
    rc.context_limit = context_limit(config);
    rc.speculative_tokens = options.speculative_tokens;
    rc.fault_step = fault_step;
    loop = std::make_unique<RankLoop>(*executor, *link, data_link.get(), *exchange, rc);
    // Every rank loaded: from here on a failure is an abort, before it a clean stop.
    if (!world.all_ok(true)) world.abort(fmt::format("stage {} lane {}: a peer failed to load", stage, lane), 3);
  }

  MpiWorld world;
  EngineOptions options;
  Plan plan;
  ModelConfig config;
  int stage = 0, lane = 0;
  int device = -1;  // CUDA device of the NCCL transports
  int64_t budget = 0, fault_step = -1;
  MPI_Comm stage_comm = MPI_COMM_NULL;
  std::unique_ptr<Checkpoint> ck;
  std::unique_ptr<ExpertExchange> exchange;
  std::unique_ptr<PipelineLink> link, data_link;
  std::unique_ptr<Transformer> tf;
  std::unique_ptr<StageExecutor> executor;
  std::unique_ptr<RankLoop> loop;
};

}  // namespace

std::unique_ptr<Engine> start_engine(const EngineOptions& o) {
  if (o.max_batch_tokens < 1) throw InputError("--max-batch-tokens: expected a number >= 1");
  if (o.max_seqs < 1) throw InputError("--max-seqs: expected a number >= 1");
  if (o.prefill_chunk < 0) throw InputError("--prefill-chunk: expected a number >= 0 (0: whole prompts)");
  if (o.micro_batches < 0) throw InputError("--micro-batches: expected a number >= 0");
  if (o.kv_page_bytes < 1024 || o.kv_page_bytes > (64 << 20))
    throw InputError(fmt::format("--kv-page-bytes: expected 1024 .. 64 MiB, got {}", o.kv_page_bytes));
  if (o.speculative_tokens < 0 || o.speculative_tokens > 3)
    throw InputError(fmt::format("--speculative-tokens: expected 0 .. 3, got {}", o.speculative_tokens));
  if (!(o.speculative_min_acceptance >= 0 && o.speculative_min_acceptance <= 1))
    throw InputError(fmt::format("--speculative-min-acceptance: expected 0 .. 1, got {}", o.speculative_min_acceptance));
  if (o.speculative_tokens > 0 && engine_model_config(o).n_mtp == 0)
    throw InputError(fmt::format("--speculative-tokens {}: the model in {} has no MTP block (num_nextn_predict_layers "
                                 "is 0) to draft with",
                                 o.speculative_tokens, o.model));
  if (o.plan.empty()) {
    auto parts = std::make_unique<LocalParts>(o);
    auto engine = std::make_unique<ServingEngine>(*parts->loop, parts->link, parts->ck.config(),
                                                  context_limit(parts->ck.config()));
    return std::make_unique<HostedEngine>(std::move(parts), std::move(engine));
  }
  auto parts = std::make_unique<WorldParts>(o);
  if (parts->world.rank() != 0) {
    try {
      parts->loop->serve();
    } catch (const std::exception& e) {
      parts->fatal(e.what());
    }
    return nullptr;
  }
  auto* p = parts.get();
  auto engine = std::make_unique<ServingEngine>(*parts->loop, *parts->link, parts->config, context_limit(parts->config),
                                                [p](const std::string& cause) { p->fatal(cause); });
  return std::make_unique<HostedEngine>(std::move(parts), std::move(engine));
}

ModelConfig engine_model_config(const EngineOptions& o) {
  return ModelConfig::load(std::filesystem::path(o.model) / "config.json");
}

void add_engine_flags(CLI::App& cmd, EngineOptions& o, std::string& numerics) {
  cmd.add_option("--model", o.model, "Model directory (config.json and safetensors in the release layout)")->required();
  cmd.add_option("--plan", o.plan,
                 "Plan file (YAML, docs/plan-format.md): run as one rank of a pipeline under mpirun -np <ranks>; "
                 "rank 0 writes the outputs");
  cmd.add_option("--numerics", numerics, "exact (reference-exact reductions) or fast")->capture_default_str();
  cmd.add_option("--micro-batches", o.micro_batches,
                 "Steps in flight per lane (default: one per pipeline stage)");
  cmd.add_option("--max-batch-tokens", o.max_batch_tokens, "Token budget of one micro-batch of a lane")
      ->capture_default_str();
  cmd.add_option("--max-seqs", o.max_seqs, "Requests in one micro-batch at most")->capture_default_str();
  cmd.add_option("--prefill-chunk", o.prefill_chunk, "Prefill chunk size in tokens (0: whole prompts)")
      ->capture_default_str();
  cmd.add_option("--kv-cache-memory", o.kv_cache_memory,
                 "KV cache pool per rank, e.g. 4GiB (default: the plan's kv.bytes_per_rank, else 1 GiB)");
  cmd.add_flag("--skip-weight-check", o.skip_weight_check,
               "Do not scan the weights for NaN / Inf at load (faster start; a bad checkpoint then gives bad output)");
  cmd.add_option("--kv-page-bytes", o.kv_page_bytes, "KV page size in bytes")->capture_default_str();
  cmd.add_option("--threads", o.threads,
                 "Compute threads per rank (default: OMP_NUM_THREADS when set, else the plan's share of the rank's "
                 "host, else the machine's cores)");
  cmd.add_option("--speculative-min-acceptance", o.speculative_min_acceptance,
                 "Speculative decoding: a request whose drafts were accepted below this rate (0..1, after 16 "
                 "drafts) verifies no more drafts")
      ->capture_default_str();
  cmd.add_option("--speculative-tokens", o.speculative_tokens,
                 "Speculative decoding: tokens the MTP block drafts per request and step, verified by the next "
                 "(0: off, up to 3; docs/speculative.md)")
      ->capture_default_str();
}

void finish_engine_flags(EngineOptions& o, const std::string& numerics) { o.numerics = parse_numerics(numerics); }

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

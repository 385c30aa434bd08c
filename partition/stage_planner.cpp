#include "partition/stage_planner.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>

#include "base/input_error.h"
#include "base/quantity.h"

namespace flashline {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace

ContiguousSplit optimal_contiguous_split(int n, int parts, const std::function<double(int, int, int)>& cost) {
  ContiguousSplit r;
  if (parts < 1 || n < parts) {
    r.cost = kInf;
    return r;
  }
  // best[p][i]: smallest possible largest cost when items [0, i) form parts 0..p-1.
  std::vector<std::vector<double>> best(parts + 1, std::vector<double>(n + 1, kInf));
  std::vector<std::vector<int>> from(parts + 1, std::vector<int>(n + 1, -1));
  best[0][0] = 0;
  for (int p = 1; p <= parts; ++p)
    for (int i = p; i <= n - (parts - p); ++i)
      for (int j = p - 1; j < i; ++j) {
        if (best[p - 1][j] == kInf) continue;
        double c = std::max(best[p - 1][j], cost(p - 1, j, i));
        if (c < best[p][i]) best[p][i] = c, from[p][i] = j;
      }
  r.cost = best[parts][n];
  if (r.cost == kInf) return r;
  r.begin.assign(parts, 0);
  for (int p = parts, i = n; p > 0; --p) {
    i = from[p][i];
    r.begin[p - 1] = i;
  }
  return r;
}

struct StagePlanner::Shape {
  int stages = 0, lanes = 0;
  std::vector<ExpertPlacement> placement;    // per layer id, MTP included
  std::vector<std::vector<double>> usable;   // [stage][lane] bytes
  std::vector<std::vector<double>> wprefix;  // [lane][l]: weight bytes of main layers [0, l)
  std::vector<double> kv_token_prefix, kv_request_prefix;  // per request, main layers [0, l)
  std::vector<std::vector<double>> extra_bytes;  // [stage][lane]: embedding, head, MTP weights
  double mtp_kv_token = 0, mtp_kv_request = 0;
  const DeviceSpec& device(const std::vector<RankSlot>& ranks, int s, int j) const {
    return *ranks[s * lanes + j].device;
  }
};

struct StagePlanner::Evaluation {
  ContiguousSplit split;
  int64_t requests_per_lane = 0;
  int64_t max_requests_per_lane = 0;
  std::vector<double> decode_s, prefill_s;  // per stage
  double decode_tps = 0, prefill_tps = 0;
};

StagePlanner::StagePlanner(const CostModel& cost, const ClusterSpec& cluster, PlannerOptions options)
    : cost_(cost), cluster_(cluster), o_(std::move(options)), ranks_(cluster.ranks()) {
  if (o_.context < 1) throw InputError(fmt::format("--context must be >= 1, found {}", o_.context));
  if (o_.batch < 0) throw InputError(fmt::format("--batch must be >= 1, found {}", o_.batch));
  if (o_.stages < 0) throw InputError(fmt::format("--stages must be >= 1, found {}", o_.stages));
  if (o_.lanes < 0) throw InputError(fmt::format("--lanes must be >= 1, found {}", o_.lanes));
  if (o_.reserve < 0 || o_.reserve >= 1) throw InputError(fmt::format("--reserve must be in [0, 1), found {}", o_.reserve));
  if (o_.prefill_chunk < 1) throw InputError("--prefill-chunk must be >= 1");
}

StagePlanner::Shape StagePlanner::make_shape(int S, int L) const {
  const auto& c = cost_.config();
  Shape sh;
  sh.stages = S;
  sh.lanes = L;
  int redundant = o_.redundant_experts >= 0 ? o_.redundant_experts : (o_.expert_load ? L : 0);
  for (int l = 0; l < c.total_layers(); ++l) {
    const auto* load = o_.expert_load ? o_.expert_load->of(l) : nullptr;
    sh.placement.push_back(load ? place_experts_balanced(*load, L, redundant) : place_experts_uniform(c.n_experts, L));
  }
  const auto& layers = cost_.layers();
  sh.wprefix.assign(L, std::vector<double>(c.n_layers + 1, 0.0));
  for (int j = 0; j < L; ++j)
    for (int l = 0; l < c.n_layers; ++l)
      sh.wprefix[j][l + 1] = sh.wprefix[j][l] + double(layers[l].dense_bytes) +
                             double(sh.placement[l].map.lanes[j].size()) * double(layers[l].expert_bytes);
  sh.kv_token_prefix.assign(c.n_layers + 1, 0.0);
  sh.kv_request_prefix.assign(c.n_layers + 1, 0.0);
  for (int l = 0; l < c.n_layers; ++l) {
    sh.kv_token_prefix[l + 1] = sh.kv_token_prefix[l] + layers[l].kv_bytes_per_token;
    sh.kv_request_prefix[l + 1] = sh.kv_request_prefix[l] + double(layers[l].kv_bytes_per_request);
  }
  for (int l = c.n_layers; l < c.total_layers(); ++l) {
    sh.mtp_kv_token += layers[l].kv_bytes_per_token;
    sh.mtp_kv_request += double(layers[l].kv_bytes_per_request);
  }
  sh.usable.assign(S, std::vector<double>(L));
  sh.extra_bytes.assign(S, std::vector<double>(L, 0.0));
  for (int s = 0; s < S; ++s)
    for (int j = 0; j < L; ++j) {
      sh.usable[s][j] = sh.device(ranks_, s, j).memory * (1.0 - o_.reserve);
      double extra = 0;
      if (s == 0) extra += double(cost_.embedding_bytes());
      if (s == S - 1) {
        extra += double(cost_.head_bytes());
        for (int l = c.n_layers; l < c.total_layers(); ++l)
          extra += double(layers[l].dense_bytes) +
                   double(sh.placement[l].map.lanes[j].size()) * double(layers[l].expert_bytes);
        if (c.n_mtp > 0 && S > 1) extra += double(cost_.embedding_bytes());  // MTP embeds the next token
      }
      sh.extra_bytes[s][j] = extra;
    }
  return sh;
}

// Weights + KV of `requests` requests on lane j of stage s holding main layers [first, last].
double StagePlanner::stage_bytes(const Shape& sh, int s, int j, int first, int last, int64_t requests) const {
  double kv_token = sh.kv_token_prefix[last + 1] - sh.kv_token_prefix[first];
  double kv_request = sh.kv_request_prefix[last + 1] - sh.kv_request_prefix[first];
  if (s == sh.stages - 1) kv_token += sh.mtp_kv_token, kv_request += sh.mtp_kv_request;
  double weights = sh.wprefix[j][last + 1] - sh.wprefix[j][first] + sh.extra_bytes[s][j];
  return weights + double(requests) * (kv_request + kv_token * double(o_.context));
}

// One micro-batch through stage s: per layer the slowest lane (the MoE all-to-all makes every
// layer a collective of the stage's lanes), the all-to-all itself, then the send onward.
double StagePlanner::stage_time(const Shape& sh, int s, int first, int last, bool prefill, int64_t requests,
                                StageDetail* d) const {
  const auto& c = cost_.config();
  const int S = sh.stages, L = sh.lanes;
  const double tokens = prefill ? double(std::min(o_.prefill_chunk, o_.context))
                                : std::ceil(double(std::max<int64_t>(requests, 1)) / S);
  const double position = prefill ? double(o_.context) / 2 : double(o_.context);
  bool one_node = true;
  for (int j = 1; j < L; ++j) one_node &= ranks_[s * L + j].node == ranks_[s * L].node;
  const LinkSpec& a2a = one_node ? cluster_.intra_node : cluster_.inter_node;
  const double link_eff = cost_.constants().link_efficiency;
  double total = 0;
  auto add_layer = [&](int l, bool with_head, bool with_embedding) {
    double worst = 0, worst_c = 0, worst_m = 0;
    for (int j = 0; j < L; ++j) {
      const auto& dev = sh.device(ranks_, s, j);
      Work w;
      if (l >= 0) {
        w = cost_.dense_work(l, tokens, position, prefill);
        const auto& pl = sh.placement[l];
        double slots = double(pl.map.lanes[j].size());
        double pairs = L * tokens * c.topk_experts * pl.lane_load[j];
        double touched = slots > 0 ? slots * (1.0 - std::exp(-pairs / slots)) : 0.0;
        w += cost_.expert_work(l, pairs, touched);
      }
      if (with_head) w += cost_.head_work(tokens);
      if (with_embedding) w += cost_.embedding_work(tokens);
      auto t = cost_.time(w, dev);
      double secs = t.seconds + cost_.layer_overhead(dev);
      if (secs > worst) worst = secs, worst_c = t.bound == "compute" ? secs : 0, worst_m = t.bound == "memory" ? secs : 0;
    }
    double comm = l >= 0 && L > 1 ? cost_.all_to_all_bytes(tokens, L) / (a2a.bandwidth * link_eff) + 2 * a2a.latency : 0;
    total += worst + comm;
    if (d) d->compute_s += worst_c, d->memory_s += worst_m, d->all_to_all_s += comm;
  };
  if (s == 0) add_layer(-1, false, true);
  for (int l = first; l <= last; ++l) add_layer(l, false, false);
  if (s == S - 1) {
    add_layer(-1, true, false);
    for (int l = c.n_layers; l < c.total_layers(); ++l) add_layer(l, true, false);  // MTP block and its logits
  }
  double send = 0;
  if (s + 1 < S) {
    const auto& link = cluster_.link(ranks_[s * L], ranks_[(s + 1) * L]);
    send = cost_.pipeline_bytes(tokens) / (link.bandwidth * link_eff) + link.latency;
  } else if (S > 1) {
    send = cluster_.link(ranks_[s * L], ranks_[0]).latency;  // sampled ids back to stage 0
  }
  if (d) d->pipeline_s += send;
  return total + send;
}

int64_t StagePlanner::max_requests_per_lane(const Shape& sh) const {
  const int n = cost_.config().n_layers;
  auto fits = [&](int64_t req) {
    auto split = optimal_contiguous_split(n, sh.stages, [&](int s, int a, int b) {
      for (int j = 0; j < sh.lanes; ++j)
        if (stage_bytes(sh, s, j, a, b - 1, req) > sh.usable[s][j]) return kInf;
      return 0.0;
    });
    return split.cost == 0.0;
  };
  if (!fits(1)) return 0;
  int64_t lo = 1, hi = 2;
  while (hi < (int64_t(1) << 40) && fits(hi)) lo = hi, hi *= 2;
  while (hi - lo > 1) {
    int64_t mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

StagePlanner::Evaluation StagePlanner::evaluate(const Shape& sh, int64_t req) const {
  const int n = cost_.config().n_layers, S = sh.stages;
  Evaluation ev;
  ev.requests_per_lane = req;
  // Per-layer decode times of each stage, as prefix sums, so a range costs O(1).
  std::vector<std::vector<double>> prefix(S, std::vector<double>(n + 1, 0.0));
  std::vector<double> fixed(S);
  for (int s = 0; s < S; ++s) {
    // Stage extras (embedding, head, MTP, send) are the time of an empty range.
    fixed[s] = stage_time(sh, s, 0, -1, false, req, nullptr);
    for (int l = 0; l < n; ++l)
      prefix[s][l + 1] = prefix[s][l] + stage_time(sh, s, l, l, false, req, nullptr) - fixed[s];
  }
  ev.split = optimal_contiguous_split(n, S, [&](int s, int a, int b) {
    for (int j = 0; j < sh.lanes; ++j)
      if (stage_bytes(sh, s, j, a, b - 1, req) > sh.usable[s][j]) return kInf;
    return fixed[s] + prefix[s][b] - prefix[s][a];
  });
  if (ev.split.begin.empty()) return ev;
  double dec = 0, pre = 0;
  for (int s = 0; s < S; ++s) {
    int a = ev.split.begin[s], b = s + 1 < S ? ev.split.begin[s + 1] - 1 : n - 1;
    ev.decode_s.push_back(stage_time(sh, s, a, b, false, req, nullptr));
    ev.prefill_s.push_back(stage_time(sh, s, a, b, true, req, nullptr));
    dec = std::max(dec, ev.decode_s.back());
    pre = std::max(pre, ev.prefill_s.back());
  }
  // Decode: each lane's requests form S micro-batches; a token per request every S periods.
  ev.decode_tps = double(req * sh.lanes) / (S * dec);
  ev.prefill_tps = double(std::min(o_.prefill_chunk, o_.context)) * sh.lanes / pre;
  return ev;
}

void StagePlanner::explain_failure(const std::vector<Shape>& shapes) const {
  const int n = cost_.config().n_layers;
  const int64_t req = o_.batch > 0 ? 0 : 1;
  struct Worst {
    double over = kInf;
    const Shape* shape = nullptr;
    int stage = 0, lane = 0, first = 0, last = 0;
    double need = 0;
  } best;
  for (const auto& sh : shapes) {
    int64_t r = req ? req : (o_.batch + sh.lanes - 1) / sh.lanes;
    auto over = [&](int s, int a, int b) {
      double m = -kInf;
      for (int j = 0; j < sh.lanes; ++j) m = std::max(m, stage_bytes(sh, s, j, a, b - 1, r) - sh.usable[s][j]);
      return m;
    };
    auto split = optimal_contiguous_split(n, sh.stages, over);
    if (split.begin.empty() || split.cost >= best.over) continue;
    best.over = split.cost;
    best.shape = &sh;
    for (int s = 0; s < sh.stages; ++s) {
      int a = split.begin[s], b = s + 1 < sh.stages ? split.begin[s + 1] - 1 : n - 1;
      for (int j = 0; j < sh.lanes; ++j) {
        double need = stage_bytes(sh, s, j, a, b, r);
        if (need - sh.usable[s][j] == split.cost) best.stage = s, best.lane = j, best.first = a, best.last = b, best.need = need;
      }
    }
  }
  if (!best.shape) throw InputError(fmt::format("{}: no stage x lane shape fits the {} layers", cluster_.name, n));
  const auto& sh = *best.shape;
  const auto& slot = ranks_[best.stage * sh.lanes + best.lane];
  const auto& node = cluster_.nodes[slot.node];
  double weights = stage_bytes(sh, best.stage, best.lane, best.first, best.last, 0);
  bool weights_alone = weights > sh.usable[best.stage][best.lane];
  throw InputError(fmt::format(
      "does not fit: with {} stage{} x {} lane{}, stage {} (layers {}-{}) needs {} per rank ({} weights + {} KV for "
      "{} request(s) of {} tokens), {} ({} {}) has {} ({} usable after the {:.0f}% reserve): {}",
      sh.stages, sh.stages == 1 ? "" : "s", sh.lanes, sh.lanes == 1 ? "" : "s", best.stage, best.first, best.last, format_bytes(best.need), format_bytes(weights),
      format_bytes(best.need - weights), o_.batch > 0 ? (o_.batch + sh.lanes - 1) / sh.lanes : 1, o_.context,
      node.name, slot.device->kind, slot.device_name, format_bytes(slot.device->memory),
      format_bytes(sh.usable[best.stage][best.lane]), o_.reserve * 100,
      weights_alone ? "add a node (or devices with more memory)"
                    : (o_.batch > 0 ? "add a node or lower --context or --batch" : "add a node or lower --context")));
}

PlanResult StagePlanner::build(const Shape& sh, const Evaluation& ev) const {
  const auto& c = cost_.config();
  const int S = sh.stages, L = sh.lanes, n = c.n_layers;
  PlanResult r;
  Plan& p = r.plan;
  p.model = {o_.model_name, n, c.n_mtp, c.n_experts};
  p.cluster = cluster_.name;
  p.localhost = cluster_.localhost;
  p.lanes = L;
  bool gpu = false;
  std::set<int> used_nodes;
  for (int i = 0; i < S * L; ++i) {
    const auto& slot = ranks_[i];
    const auto& node = cluster_.nodes[slot.node];
    p.ranks.push_back({i, i / L, i % L, node.name, node.host, slot.device_name});
    gpu |= slot.device->gpu;
    used_nodes.insert(slot.node);
  }
  for (int ni : used_nodes) {
    const auto& node = cluster_.nodes[ni];
    p.nodes.push_back({node.name, node.host, node.slots, node.cpus});
  }
  p.pipeline_transport = p.expert_transport = gpu ? "nccl" : "mpi";
  const auto* load = o_.expert_load;
  double kv_budget = kInf;
  r.max_context = INT64_MAX;
  for (int s = 0; s < S; ++s) {
    StagePlan st;
    st.first_layer = ev.split.begin[s];
    st.last_layer = s + 1 < S ? ev.split.begin[s + 1] - 1 : n - 1;
    for (int j = 0; j < L; ++j) st.ranks.push_back(s * L + j);
    st.embedding = s == 0 || (s == S - 1 && c.n_mtp > 0);
    st.head = st.mtp = s == S - 1;
    st.mtp = st.mtp && c.n_mtp > 0;
    st.experts = sh.placement[st.first_layer].map;
    if (load && load->all_layers.empty()) st.experts = place_experts_uniform(c.n_experts, L).map;
    int last_id = s == S - 1 ? c.total_layers() - 1 : st.last_layer;
    StageDetail d;
    d.min_experts = INT32_MAX;
    for (int l = st.first_layer; l <= last_id; ++l) {
      if (l > st.last_layer && l < n) continue;
      const auto& m = sh.placement[l].map;
      if (!(m == st.experts)) st.layer_experts[l] = m;
      for (const auto& lane : m.lanes)
        d.min_experts = std::min(d.min_experts, int(lane.size())), d.max_experts = std::max(d.max_experts, int(lane.size()));
    }
    StageEstimate& e = st.estimate;
    e.free_bytes = INT64_MAX;
    d.usable_bytes = INT64_MAX;
    for (int j = 0; j < L; ++j) {
      double weights = stage_bytes(sh, s, j, st.first_layer, st.last_layer, 0);
      double kv = stage_bytes(sh, s, j, st.first_layer, st.last_layer, ev.requests_per_lane) - weights;
      e.weight_bytes = std::max(e.weight_bytes, int64_t(weights));
      e.kv_bytes = std::max(e.kv_bytes, int64_t(kv));
      e.free_bytes = std::min(e.free_bytes, int64_t(sh.usable[s][j] - weights - kv));
      d.usable_bytes = std::min(d.usable_bytes, int64_t(sh.usable[s][j]));
      kv_budget = std::min(kv_budget, sh.usable[s][j] - weights);
      // Longest context the planned requests could each hold on this rank.
      double per_req = sh.usable[s][j] - weights;
      double req = double(ev.requests_per_lane);
      double tok = sh.kv_token_prefix[st.last_layer + 1] - sh.kv_token_prefix[st.first_layer] + (s == S - 1 ? sh.mtp_kv_token : 0);
      double fixed = sh.kv_request_prefix[st.last_layer + 1] - sh.kv_request_prefix[st.first_layer] +
                     (s == S - 1 ? sh.mtp_kv_request : 0);
      if (tok > 0) r.max_context = std::min(r.max_context, int64_t((per_req / req - fixed) / tok));
    }
    e.decode_step_s = stage_time(sh, s, st.first_layer, st.last_layer, false, ev.requests_per_lane, &d);
    e.prefill_step_s = ev.prefill_s[s];
    double parts[] = {d.compute_s, d.memory_s, d.all_to_all_s, d.pipeline_s};
    const char* names[] = {"compute", "memory", "all-to-all", "pipeline"};
    e.bottleneck = names[std::max_element(parts, parts + 4) - parts];
    for (int j = 0; j < L; ++j) {
      const auto& host = p.ranks[s * L + j].node;
      if (std::find(d.hosts.begin(), d.hosts.end(), host) == d.hosts.end()) d.hosts.push_back(host);
    }
    p.stages.push_back(std::move(st));
    r.stages.push_back(std::move(d));
  }
  p.kv = {kv_format_name(cost_.kv_format()), o_.context, ev.max_requests_per_lane, int64_t(kv_budget)};
  p.predicted = {ev.requests_per_lane * L, std::min(o_.prefill_chunk, o_.context), ev.decode_tps, ev.prefill_tps,
                 *std::max_element(ev.decode_s.begin(), ev.decode_s.end()),
                 *std::max_element(ev.prefill_s.begin(), ev.prefill_s.end())};
  r.max_requests = ev.max_requests_per_lane * L;
  r.ranks_used = S * L;
  r.ranks_total = int(ranks_.size());
  if (r.ranks_used < r.ranks_total)
    r.notes.push_back(fmt::format("{} of {} ranks used: no larger shape predicts more decode throughput",
                                  r.ranks_used, r.ranks_total));
  p.validate("generated plan");
  return r;
}

PlanResult StagePlanner::plan() const {
  const auto& c = cost_.config();
  const int R = int(ranks_.size());
  if (o_.stages > 0 && o_.lanes > 0 && o_.stages * o_.lanes > R)
    throw InputError(fmt::format("--stages {} --lanes {} needs {} ranks, cluster \"{}\" has {}", o_.stages, o_.lanes,
                                 o_.stages * o_.lanes, cluster_.name, R));
  if (o_.stages > c.n_layers)
    throw InputError(fmt::format("--stages {}: the model has only {} layers (one stage needs at least one)", o_.stages,
                                 c.n_layers));
  std::vector<Shape> shapes;
  for (int S = 1; S <= std::min(R, c.n_layers); ++S)
    for (int L = 1; S * L <= R; ++L) {
      if ((o_.stages && S != o_.stages) || (o_.lanes && L != o_.lanes)) continue;
      shapes.push_back(make_shape(S, L));
    }
  if (shapes.empty())
    throw InputError(fmt::format("no stage x lane shape matches --stages {} --lanes {} on {} ranks", o_.stages, o_.lanes, R));
  const Shape* best = nullptr;
  Evaluation best_ev;
  for (const auto& sh : shapes) {
    int64_t max_req = max_requests_per_lane(sh);
    int64_t req = o_.batch > 0 ? (o_.batch + sh.lanes - 1) / sh.lanes : std::min(max_req, o_.max_requests_per_lane);
    if (max_req < 1 || req > max_req) continue;
    auto ev = evaluate(sh, req);
    if (ev.split.begin.empty()) continue;
    ev.max_requests_per_lane = max_req;
    bool better = !best || ev.decode_tps > best_ev.decode_tps * (1 + 1e-9) ||
                  (ev.decode_tps >= best_ev.decode_tps * (1 - 1e-9) && ev.prefill_tps > best_ev.prefill_tps);
    if (better) best = &sh, best_ev = std::move(ev);
  }
  if (!best) explain_failure(shapes);
  return build(*best, best_ev);
}

}  // namespace flashline

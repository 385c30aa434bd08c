#include "partition/plan.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <stdexcept>

#include "base/yaml_reader.h"
#include "base/input_error.h"

namespace flashline {
namespace {

void emit_expert_map(YAML::Emitter& out, const ExpertMap& m) {
  out << YAML::BeginSeq;
  for (const auto& lane : m.lanes) out << YAML::DoubleQuoted << format_id_ranges(lane);
  out << YAML::EndSeq;
}

ExpertMap read_expert_map(const YamlReader& r, std::string_view key) {
  auto seq = r.sequence(key);
  ExpertMap m;
  for (std::size_t j = 0; j < seq.size(); ++j) {
    if (!seq[j].IsScalar()) r.fail(seq[j], fmt::format("{}[{}]", key, j), "expected a string of expert ids such as \"0-31,40\"");
    try {
      m.lanes.push_back(parse_id_ranges(seq[j].Scalar()));
    } catch (const std::invalid_argument& e) {
      r.fail(seq[j], fmt::format("{}[{}]", key, j), e.what());
    }
  }
  return m;
}

[[noreturn]] void invalid(const std::string& where, const std::string& what) {
  throw InputError(fmt::format("{}: invalid plan: {}", where, what));
}

}  // namespace

const ExpertMap& StagePlan::experts_of(int layer) const {
  auto it = layer_experts.find(layer);
  return it == layer_experts.end() ? experts : it->second;
}

std::string format_id_ranges(const std::vector<int>& ids) {
  std::string s;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    if (!s.empty()) s += ',';
    s += j == i ? fmt::format("{}", ids[i]) : fmt::format("{}-{}", ids[i], ids[j]);
    i = j + 1;
  }
  return s;
}

std::vector<int> parse_id_ranges(const std::string& text) {
  std::vector<int> ids;
  std::size_t pos = 0;
  auto number = [&](std::size_t& p) {
    std::size_t start = p;
    while (p < text.size() && std::isdigit(static_cast<unsigned char>(text[p]))) ++p;
    if (p == start || p - start > 7)
      throw std::invalid_argument(fmt::format("expected expert ids such as \"0-31,40\", found \"{}\"", text));
    return std::stoi(text.substr(start, p - start));
  };
  while (pos < text.size()) {
    int a = number(pos), b = a;
    if (pos < text.size() && text[pos] == '-') b = number(++pos);
    if (b < a) throw std::invalid_argument(fmt::format("descending range {}-{} in \"{}\"", a, b, text));
    for (int i = a; i <= b; ++i) ids.push_back(i);
    if (pos < text.size() && text[pos++] != ',')
      throw std::invalid_argument(fmt::format("expected ',' between ranges in \"{}\"", text));
  }
  std::sort(ids.begin(), ids.end());
  if (std::adjacent_find(ids.begin(), ids.end()) != ids.end())
    throw std::invalid_argument(fmt::format("an expert is listed twice in \"{}\"", text));
  return ids;
}

std::string Plan::to_yaml() const {
  YAML::Emitter out;
  out.SetDoublePrecision(17);
  out << YAML::Comment("flashline plan: written by `flashline plan`, read by `flashline launch` and every rank");
  out << YAML::BeginMap;
  out << YAML::Key << "format" << YAML::Value << kFormat;
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap << YAML::Key << "name" << YAML::Value << model.name
      << YAML::Key << "layers" << YAML::Value << model.layers << YAML::Key << "mtp_layers" << YAML::Value
      << model.mtp_layers << YAML::Key << "routed_experts" << YAML::Value << model.routed_experts << YAML::EndMap;
  out << YAML::Key << "cluster" << YAML::Value << YAML::BeginMap << YAML::Key << "name" << YAML::Value << cluster
      << YAML::Key << "localhost" << YAML::Value << localhost << YAML::Key << "nodes" << YAML::Value << YAML::BeginSeq;
  for (const auto& n : nodes)
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "name" << YAML::Value << n.name << YAML::Key << "host"
        << YAML::Value << n.host << YAML::Key << "slots" << YAML::Value << n.slots << YAML::Key << "cpus"
        << YAML::Value << n.cpus << YAML::EndMap;
  out << YAML::EndSeq << YAML::EndMap;
  out << YAML::Key << "transports" << YAML::Value << YAML::BeginMap << YAML::Key << "pipeline" << YAML::Value
      << pipeline_transport << YAML::Key << "experts" << YAML::Value << expert_transport << YAML::EndMap;
  out << YAML::Key << "lanes" << YAML::Value << lanes;
  out << YAML::Key << "stages" << YAML::Value << YAML::BeginSeq;
  for (std::size_t s = 0; s < stages.size(); ++s) {
    const auto& st = stages[s];
    out << YAML::BeginMap;
    out << YAML::Key << "stage" << YAML::Value << s;
    out << YAML::Key << "first_layer" << YAML::Value << st.first_layer;
    out << YAML::Key << "last_layer" << YAML::Value << st.last_layer;
    out << YAML::Key << "ranks" << YAML::Value << YAML::Flow << st.ranks;
    out << YAML::Key << "embedding" << YAML::Value << st.embedding;
    out << YAML::Key << "head" << YAML::Value << st.head;
    out << YAML::Key << "mtp" << YAML::Value << st.mtp;
    out << YAML::Key << "experts" << YAML::Value;
    emit_expert_map(out, st.experts);
    if (!st.layer_experts.empty()) {
      out << YAML::Key << "layer_experts" << YAML::Value << YAML::BeginSeq;
      for (const auto& [layer, m] : st.layer_experts) {
        out << YAML::BeginMap << YAML::Key << "layer" << YAML::Value << layer << YAML::Key << "experts" << YAML::Value;
        emit_expert_map(out, m);
        out << YAML::EndMap;
      }
      out << YAML::EndSeq;
    }
    const auto& e = st.estimate;
    out << YAML::Key << "estimate" << YAML::Value << YAML::BeginMap << YAML::Key << "weight_bytes" << YAML::Value
        << e.weight_bytes << YAML::Key << "kv_bytes" << YAML::Value << e.kv_bytes << YAML::Key << "free_bytes"
        << YAML::Value << e.free_bytes << YAML::Key << "decode_step_s" << YAML::Value << e.decode_step_s
        << YAML::Key << "prefill_step_s" << YAML::Value << e.prefill_step_s << YAML::Key << "bottleneck"
        << YAML::Value << e.bottleneck << YAML::EndMap;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::Key << "ranks" << YAML::Value << YAML::BeginSeq;
  for (const auto& r : ranks)
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "rank" << YAML::Value << r.rank << YAML::Key << "stage"
        << YAML::Value << r.stage << YAML::Key << "lane" << YAML::Value << r.lane << YAML::Key << "node"
        << YAML::Value << r.node << YAML::Key << "host" << YAML::Value << r.host << YAML::Key << "device"
        << YAML::Value << r.device << YAML::EndMap;
  out << YAML::EndSeq;
  out << YAML::Key << "kv" << YAML::Value << YAML::BeginMap << YAML::Key << "format" << YAML::Value << kv.format
      << YAML::Key << "context" << YAML::Value << kv.context << YAML::Key << "requests_per_lane" << YAML::Value
      << kv.requests_per_lane << YAML::Key << "bytes_per_rank" << YAML::Value << kv.bytes_per_rank << YAML::EndMap;
  const auto& p = predicted;
  out << YAML::Key << "predicted" << YAML::Value << YAML::BeginMap << YAML::Key << "batch" << YAML::Value << p.batch
      << YAML::Key << "prefill_chunk" << YAML::Value << p.prefill_chunk << YAML::Key << "decode_tokens_per_s"
      << YAML::Value << p.decode_tokens_per_s << YAML::Key << "prefill_tokens_per_s" << YAML::Value
      << p.prefill_tokens_per_s << YAML::Key << "decode_step_s" << YAML::Value << p.decode_step_s << YAML::Key
      << "prefill_step_s" << YAML::Value << p.prefill_step_s << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

void Plan::save(const std::filesystem::path& path) const {
  std::ofstream f(path);
  if (!f) throw InputError(fmt::format("{}: cannot write plan file", path.string()));
  f << to_yaml();
  if (!f) throw InputError(fmt::format("{}: write failed", path.string()));
}

Plan Plan::from_yaml(const std::string& text, const std::string& source) {
  auto root = parse_yaml_text(text, source);
  if (!root.IsDefined() || root.IsNull()) throw InputError(fmt::format("{}: empty plan file", source));
  YamlReader r(root, source);
  r.allow_only({"format", "model", "cluster", "transports", "lanes", "stages", "ranks", "kv", "predicted"});
  if (int f = int(r.integer("format")); f != kFormat)
    r.fail(r.get("format"), "format", fmt::format("this flashline reads plan format {}, found {}", kFormat, f));
  Plan p;
  auto m = r.map("model");
  m.allow_only({"name", "layers", "mtp_layers", "routed_experts"});
  p.model = {m.string("name", ""), int(m.integer("layers", {}, 1)), int(m.integer("mtp_layers", 0)),
             int(m.integer("routed_experts", {}, 1))};
  auto c = r.map("cluster");
  c.allow_only({"name", "localhost", "nodes"});
  p.cluster = c.string("name", "");
  p.localhost = c.boolean("localhost", false);
  auto nodes = c.sequence("nodes");
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    auto n = c.element(nodes[i], "nodes", i);
    n.allow_only({"name", "host", "slots", "cpus"});
    p.nodes.push_back({n.string("name"), n.string("host", n.string("name")), int(n.integer("slots", {}, 1)),
                       int(n.integer("cpus", 0))});
  }
  if (r.has("transports")) {
    auto t = r.map("transports");
    t.allow_only({"pipeline", "experts"});
    p.pipeline_transport = t.string("pipeline", "mpi");
    p.expert_transport = t.string("experts", "mpi");
    for (auto key : {"pipeline", "experts"}) {
      auto v = t.string(key);
      if (v != "mpi" && v != "nccl" && v != "ucx" && v != "loopback")
        t.fail(t.get(key), key, fmt::format("expected mpi, nccl, ucx or loopback, found \"{}\"", v));
    }
  }
  p.lanes = int(r.integer("lanes", {}, 1));
  auto stages = r.sequence("stages");
  for (std::size_t s = 0; s < stages.size(); ++s) {
    auto sr = r.element(stages[s], "stages", s);
    sr.allow_only({"stage", "first_layer", "last_layer", "ranks", "embedding", "head", "mtp", "experts",
                   "layer_experts", "estimate"});
    if (sr.has("stage") && sr.integer("stage") != int64_t(s))
      sr.fail(sr.get("stage"), "stage", fmt::format("stage entries must be in order: expected {}", s));
    StagePlan st;
    st.first_layer = int(sr.integer("first_layer"));
    st.last_layer = int(sr.integer("last_layer"));
    auto rk = sr.sequence("ranks");
    for (std::size_t j = 0; j < rk.size(); ++j) {
      int v = 0;
      if (!YAML::convert<int>::decode(rk[j], v) || v < 0) sr.fail(rk[j], fmt::format("ranks[{}]", j), "expected a rank number >= 0");
      st.ranks.push_back(v);
    }
    st.embedding = sr.boolean("embedding", false);
    st.head = sr.boolean("head", false);
    st.mtp = sr.boolean("mtp", false);
    st.experts = read_expert_map(sr, "experts");
    if (sr.has("layer_experts")) {
      auto le = sr.sequence("layer_experts");
      for (std::size_t k = 0; k < le.size(); ++k) {
        auto lr = sr.element(le[k], "layer_experts", k);
        lr.allow_only({"layer", "experts"});
        int layer = int(lr.integer("layer"));
        if (st.layer_experts.count(layer)) lr.fail(lr.get("layer"), "layer", fmt::format("layer {} listed twice", layer));
        st.layer_experts[layer] = read_expert_map(lr, "experts");
      }
    }
    if (sr.has("estimate")) {
      auto e = sr.map("estimate");
      e.allow_only({"weight_bytes", "kv_bytes", "free_bytes", "decode_step_s", "prefill_step_s", "bottleneck"});
      st.estimate = {e.integer("weight_bytes", 0), e.integer("kv_bytes", 0), e.integer("free_bytes", 0, INT64_MIN),
                     e.number("decode_step_s", 0.0), e.number("prefill_step_s", 0.0), e.string("bottleneck", "")};
    }
    p.positions.stages.push_back(fmt::format("{}: stages[{}]", sr.where(stages[s]), s));
    p.stages.push_back(std::move(st));
  }
  auto ranks = r.sequence("ranks");
  for (std::size_t i = 0; i < ranks.size(); ++i) {
    auto rr = r.element(ranks[i], "ranks", i);
    rr.allow_only({"rank", "stage", "lane", "node", "host", "device"});
    RankPlacement rp{int(rr.integer("rank")), int(rr.integer("stage")), int(rr.integer("lane")), rr.string("node"),
                     rr.string("host", rr.string("node")), rr.string("device", "")};
    if (rp.rank != int(i)) rr.fail(rr.get("rank"), "rank", fmt::format("ranks must be listed in order: expected {}", i));
    p.ranks.push_back(rp);
  }
  if (r.has("kv")) {
    auto k = r.map("kv");
    k.allow_only({"format", "context", "requests_per_lane", "bytes_per_rank"});
    p.kv = {k.string("format", "fp8"), k.integer("context", 0), k.integer("requests_per_lane", 0),
            k.integer("bytes_per_rank", 0)};
    if (p.kv.format != "fp8" && p.kv.format != "bf16")
      k.fail(k.get("format"), "format", fmt::format("expected fp8 or bf16, found \"{}\"", p.kv.format));
  }
  if (r.has("predicted")) {
    auto e = r.map("predicted");
    e.allow_only({"batch", "prefill_chunk", "decode_tokens_per_s", "prefill_tokens_per_s", "decode_step_s",
                  "prefill_step_s"});
    p.predicted = {e.integer("batch", 0),         e.integer("prefill_chunk", 0),    e.number("decode_tokens_per_s", 0.0),
                   e.number("prefill_tokens_per_s", 0.0), e.number("decode_step_s", 0.0), e.number("prefill_step_s", 0.0)};
  }
  p.validate(source);
  return p;
}

Plan Plan::load(const std::filesystem::path& path) {
  return from_yaml(read_text_file(path, "plan file"), path.string());
}

void Plan::validate(const std::string& source) const {
  auto stage_at = [&](std::size_t s) {
    return s < positions.stages.size() ? positions.stages[s] : fmt::format("{}: stages[{}]", source, s);
  };
  if (stages.empty()) invalid(source, "no stages");
  if (lanes < 1) invalid(source, fmt::format("lanes must be >= 1, found {}", lanes));
  // Layers: contiguous ranges in order, covering 0 .. layers-1 exactly once.
  int next = 0;
  for (std::size_t s = 0; s < stages.size(); ++s) {
    const auto& st = stages[s];
    if (st.last_layer < st.first_layer)
      invalid(stage_at(s), fmt::format("last_layer {} is before first_layer {}", st.last_layer, st.first_layer));
    if (st.first_layer > next)
      invalid(stage_at(s), fmt::format("layer gap: layers {}-{} belong to no stage", next, st.first_layer - 1));
    if (st.first_layer < next)
      invalid(stage_at(s), fmt::format("layers {}-{} overlap the previous stage (which ends at layer {})",
                                       st.first_layer, std::min(next - 1, st.last_layer), next - 1));
    next = st.last_layer + 1;
    if (int(st.ranks.size()) != lanes)
      invalid(stage_at(s), fmt::format("lists {} ranks, but the plan has {} lanes (one rank per lane)",
                                       st.ranks.size(), lanes));
  }
  if (next != model.layers)
    invalid(stage_at(stages.size() - 1),
            next < model.layers ? fmt::format("layer gap: layers {}-{} belong to no stage", next, model.layers - 1)
                                : fmt::format("layers {}-{} do not exist (the model has {} layers)", model.layers,
                                              next - 1, model.layers));
  if (!stages.front().embedding) invalid(stage_at(0), "stage 0 must hold the embedding (embedding: true)");
  if (!stages.back().head) invalid(stage_at(stages.size() - 1), "the last stage must hold the head (head: true)");
  if (model.mtp_layers > 0 && !stages.back().mtp)
    invalid(stage_at(stages.size() - 1), "the last stage must hold the MTP block (mtp: true)");
  for (std::size_t s = 0; s + 1 < stages.size(); ++s)
    if (stages[s].head || stages[s].mtp)
      invalid(stage_at(s), "only the last stage may hold the head and the MTP block");

  // Ranks: 0 .. world-1, each in exactly one stage, its table entry agreeing with its stage and lane.
  std::size_t world = stages.size() * std::size_t(lanes);
  if (ranks.size() != world)
    invalid(source, fmt::format("ranks table has {} entries, but {} stages x {} lanes = {} ranks", ranks.size(),
                                stages.size(), lanes, world));
  std::set<std::string> node_names;
  for (const auto& n : nodes) node_names.insert(n.name);
  std::vector<int> owner(world, -1);
  for (std::size_t s = 0; s < stages.size(); ++s)
    for (int j = 0; j < lanes; ++j) {
      int r = stages[s].ranks[j];
      if (r >= int(world)) invalid(stage_at(s), fmt::format("ranks[{}] = {} is not a rank (world size {})", j, r, world));
      if (owner[r] >= 0) invalid(stage_at(s), fmt::format("rank {} is already in stage {}", r, owner[r]));
      owner[r] = int(s);
      const auto& rp = ranks[r];
      if (rp.stage != int(s) || rp.lane != j)
        invalid(source, fmt::format("ranks[{}] says stage {} lane {}, but stages[{}].ranks[{}] = {}", r, rp.stage,
                                    rp.lane, s, j, r));
      if (!node_names.count(rp.node))
        invalid(source, fmt::format("ranks[{}]: node \"{}\" is not in cluster.nodes", r, rp.node));
    }

  // Experts: per layer, every routed expert on at least one lane, ids in range.
  for (std::size_t s = 0; s < stages.size(); ++s) {
    const auto& st = stages[s];
    for (const auto& [layer, m] : st.layer_experts)
      if (layer < st.first_layer || layer > st.last_layer + (st.mtp ? model.mtp_layers : 0))
        invalid(stage_at(s), fmt::format("layer_experts names layer {}, which is not in this stage", layer));
    auto check = [&](const ExpertMap& m, const std::string& what) {
      if (int(m.lanes.size()) != lanes)
        invalid(stage_at(s), fmt::format("{} lists {} lanes, but the plan has {} lanes", what, m.lanes.size(), lanes));
      std::vector<int> copies(model.routed_experts, 0);
      for (std::size_t j = 0; j < m.lanes.size(); ++j)
        for (int e : m.lanes[j]) {
          if (e >= model.routed_experts)
            invalid(stage_at(s), fmt::format("{}[{}]: expert {} does not exist (the model has {} routed experts)", what,
                                             j, e, model.routed_experts));
          copies[e]++;
        }
      std::vector<int> orphans;
      for (int e = 0; e < model.routed_experts; ++e)
        if (copies[e] == 0) orphans.push_back(e);
      if (!orphans.empty())
        invalid(stage_at(s), fmt::format("{}: experts {} are owned by no lane", what, format_id_ranges(orphans)));
    };
    check(st.experts, "experts");
    for (const auto& [layer, m] : st.layer_experts) check(m, fmt::format("layer_experts (layer {})", layer));
  }
}

void check_plan_matches_model(const Plan& plan, const ModelConfig& c, const std::string& source) {
  const std::string made_for = plan.model.name.empty() ? "" : fmt::format(" (made for {})", plan.model.name);
  auto differ = [&](const char* key, int planned, int actual, const char* what) {
    if (planned != actual)
      throw InputError(fmt::format("{}: model.{} = {}{}, but the model has {} {}: make a plan for this model with "
                                   "flashline plan --model DIR",
                                   source, key, planned, made_for, actual, what));
  };
  differ("layers", plan.model.layers, c.n_layers, "layers");
  differ("mtp_layers", plan.model.mtp_layers, c.n_mtp, "MTP blocks");
  differ("routed_experts", plan.model.routed_experts, c.n_experts, "routed experts");
}

}  // namespace flashline

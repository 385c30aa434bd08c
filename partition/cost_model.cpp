#include "partition/cost_model.h"

#include "base/input_error.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace flashline {
namespace {

// A tensor that is multiplied by every token's activations (not a lookup table, bias or norm).
bool is_gemm(const TensorSpec& t) {
  if (t.shape.size() != 2 || t.dtype == DType::I64 || t.group == TensorGroup::Embedding) return false;
  return t.name.ends_with(".weight") || t.name.ends_with("_fn");
}

}  // namespace

const char* kv_format_name(KvFormat f) { return f == KvFormat::FP8 ? "fp8" : "bf16"; }

KvFormat parse_kv_format(const std::string& name) {
  if (name == "fp8") return KvFormat::FP8;
  if (name == "bf16") return KvFormat::BF16;
  throw InputError(fmt::format("--kv-format: expected fp8 or bf16, found \"{}\"", name));
}

Work& Work::operator+=(const Work& o) {
  flops_fp8 += o.flops_fp8;
  flops_fp4 += o.flops_fp4;
  flops_bf16 += o.flops_bf16;
  bytes += o.bytes;
  return *this;
}

CostModel::CostModel(const ModelConfig& c, KvFormat kv, CostConstants k) : config_(c), kv_(kv), k_(k) {
  layers_.resize(c.total_layers());
  for (int id = 0; id < c.total_layers(); ++id) {
    auto& l = layers_[id];
    l.layer = id;
    l.attention = c.attention_kind(id);
    l.hash_routed = c.hash_routed(id);
    l.mtp = id >= c.n_layers;
    l.ratio = c.ratio(id);
  }
  for (const auto& t : release_tensors(c)) {
    int64_t bytes = t.bytes();
    int64_t macs = 0;
    if (is_gemm(t)) macs = t.shape[0] * t.shape[1] * (t.dtype == DType::I8 ? 2 : 1);  // I8 packs two FP4 codes
    if (t.layer < 0) {
      top_bytes_by_group_[t.group] += bytes;
      if (t.group == TensorGroup::Embedding) embedding_bytes_ += bytes;
      if (t.group == TensorGroup::Head) head_bytes_ += bytes, head_macs_ += macs;
      continue;
    }
    auto& l = layers_.at(t.layer);
    l.bytes_by_group[t.group] += bytes;
    if (t.expert >= 0) {
      if (t.expert == 0) l.expert_bytes += bytes, l.expert_macs += macs;
      continue;
    }
    l.dense_bytes += bytes;
    (t.dtype == DType::F8_E4M3 ? l.dense_macs_fp8 : l.dense_macs_bf16) += macs;
  }
  for (auto& l : layers_) {
    const int64_t entry = kv_entry_bytes();
    l.kv_bytes_per_request = int64_t(c.window) * entry;
    if (l.ratio > 0) {
      const int64_t coff = l.ratio == 4 ? 2 : 1;  // overlapping windows keep two blocks of state
      // kv and score, fp32, [coff * ratio, coff * head_dim] (see the reference compressor state)
      l.kv_bytes_per_request += 2 * 4 * (coff * l.ratio) * (coff * c.head_dim);
      l.kv_bytes_per_token = double(entry) / l.ratio;
      if (l.ratio == 4) {
        l.kv_bytes_per_request += 2 * 4 * (coff * l.ratio) * (coff * c.index_dim);
        l.kv_bytes_per_token += double(index_key_bytes()) / l.ratio;
      }
    }
  }
}

std::map<TensorGroup, int64_t> CostModel::bytes_by_group() const {
  auto r = top_bytes_by_group_;
  for (const auto& l : layers_)
    for (const auto& [g, b] : l.bytes_by_group) r[g] += b;
  return r;
}

int64_t CostModel::total_weight_bytes() const {
  int64_t t = 0;
  for (const auto& [g, b] : bytes_by_group()) t += b;
  return t;
}

int64_t CostModel::kv_entry_bytes() const {
  const int64_t hd = config_.head_dim, rd = config_.rope_dim;
  return kv_ == KvFormat::FP8 ? (hd - rd) + (hd - rd) / 64 + 2 * rd : 2 * hd;
}

int64_t CostModel::index_key_bytes() const {
  const int64_t d = config_.index_dim;
  return kv_ == KvFormat::FP8 ? d / 2 + d / 32 : 2 * d;
}

double CostModel::kv_bytes(int first, int last, double context) const {
  double b = 0;
  for (int id = first; id <= last; ++id) b += layers_.at(id).kv_bytes_per_request + layers_[id].kv_bytes_per_token * context;
  return b;
}

Work CostModel::dense_work(int layer, double tokens, double position, bool prefill) const {
  const auto& l = layers_.at(layer);
  const auto& c = config_;
  Work w;
  w.flops_fp8 = 2.0 * tokens * double(l.dense_macs_fp8);
  w.flops_bf16 = 2.0 * tokens * double(l.dense_macs_bf16);
  double compressed = l.ratio > 0 ? std::floor(position / l.ratio) : 0.0;
  double keys = std::min<double>(c.window, position) +
                (l.ratio == 4 ? std::min<double>(c.index_topk, compressed) : compressed);
  w.flops_bf16 += tokens * 4.0 * c.n_heads * c.head_dim * keys;  // q.k and p.v for every head
  double index_keys = l.ratio == 4 ? compressed : 0.0;
  w.flops_fp8 += tokens * 2.0 * c.index_heads * c.index_dim * index_keys;  // lightning indexer scores
  const double entry = double(kv_entry_bytes()), key = double(index_key_bytes());
  // Decode reads each query's selected entries; a prefill chunk reads the cache once.
  double kv_read = prefill ? (c.window + compressed) * entry + index_keys * key
                           : tokens * (keys * entry + index_keys * key);
  double activations = tokens * 4.0 * c.hc * c.dim * 2.0;  // hc stream read and written around both halves
  w.bytes = double(l.dense_bytes) + kv_read + activations;
  return w;
}

Work CostModel::expert_work(int layer, double pairs, double touched) const {
  const auto& l = layers_.at(layer);
  Work w;
  w.flops_fp4 = 2.0 * pairs * double(l.expert_macs);
  w.bytes = touched * double(l.expert_bytes) + pairs * 2.0 * (2.0 * config_.dim + 2.0 * config_.moe_inter);
  return w;
}

Work CostModel::head_work(double tokens) const {
  Work w;
  w.flops_bf16 = 2.0 * tokens * double(head_macs_);
  w.bytes = double(head_bytes_) + tokens * 4.0 * config_.vocab;
  return w;
}

Work CostModel::embedding_work(double tokens) const {
  Work w;
  w.bytes = tokens * (2.0 * config_.dim + 2.0 * config_.hc * config_.dim);
  return w;
}

double CostModel::all_to_all_bytes(double tokens, int lanes) const {
  if (lanes <= 1) return 0.0;
  // A token goes once to each remote rank holding one of its k experts (bf16 out, bf16 back).
  double remote = (lanes - 1) * (1.0 - std::pow(1.0 - 1.0 / lanes, config_.topk_experts));
  return tokens * remote * 2.0 * config_.dim * 2.0;
}

double CostModel::pipeline_bytes(double tokens) const {
  return tokens * (2.0 * config_.hc * config_.dim + 32.0);  // hc stream + request id, position, slot, token
}

StepTime CostModel::time(const Work& w, const DeviceSpec& d) const {
  const double ce = d.gpu ? k_.compute_efficiency : k_.cpu_compute_efficiency;
  const double me = d.gpu ? k_.memory_efficiency : k_.cpu_memory_efficiency;
  double tc = (w.flops_fp8 / d.flops_fp8 + w.flops_fp4 / d.flops_fp4 + w.flops_bf16 / d.flops_bf16) / ce;
  double tm = w.bytes / (d.memory_bandwidth * me);
  return tc >= tm ? StepTime{tc, "compute"} : StepTime{tm, "memory"};
}

}  // namespace flashline

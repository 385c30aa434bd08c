#include "model/model_config.h"

#include "base/input_file.h"

#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <string_view>
#include <vector>

namespace flashline {
namespace {

// Upper bound of every integer key (the release's largest is vocab_size 129280): products of two
// sizes then fit in int64 and tensor shapes cannot overflow.
constexpr int64_t kMaxValue = int64_t(1) << 24;

struct Reader {
  const nlohmann::json& j;
  const std::string& source;
  std::string prefix;  // JSON path of `j` inside the file, "" at the top

  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw InputError(fmt::format("{}: field \"{}{}\": {}", source, prefix, key, what));
  }
  const nlohmann::json* find(const std::string& key) const {
    auto it = j.find(key);
    return it == j.end() || it->is_null() ? nullptr : &*it;
  }
  int integer(const std::string& key, std::optional<int> def = std::nullopt, int min = 0) const {
    const auto* v = find(key);
    if (!v) {
      if (def) return *def;
      fail(key, "missing (expected an integer)");
    }
    // A float is accepted when integral; range first: converting an out-of-range double is UB.
    const bool integral_float = v->is_number_float() && std::fabs(v->get<double>()) <= double(kMaxValue) &&
                                v->get<double>() == std::floor(v->get<double>());
    if (!v->is_number_integer() && !integral_float)
      fail(key, fmt::format("expected an integer, found {}", v->dump()));
    if (v->is_number_unsigned() && v->get<uint64_t>() > uint64_t(kMaxValue))
      fail(key, fmt::format("expected an integer <= {}, found {}", kMaxValue, v->dump()));
    int64_t x = v->is_number_integer() ? v->get<int64_t>() : int64_t(v->get<double>());
    if (x < min || x > kMaxValue)
      fail(key, fmt::format("expected an integer in {}..{}, found {}", min, kMaxValue, x));
    return int(x);
  }
  // A key the release fixes to one value (or a few): anything else is refused by name.
  void expect_one_of(const std::string& key, const std::vector<nlohmann::json>& supported, bool required,
                     const std::string& why) const {
    const auto* v = find(key);
    if (!v) {
      if (required) fail(key, fmt::format("missing: expected {} ({})", supported.front().dump(), why));
      return;
    }
    for (const auto& s : supported)
      if (*v == s) return;
    std::string list;
    for (const auto& s : supported) list += (list.empty() ? "" : " or ") + s.dump();
    fail(key, fmt::format("unsupported value {}: supported: {} ({})", v->dump(), list, why));
  }
  double number(const std::string& key, std::optional<double> def = std::nullopt) const {
    const auto* v = find(key);
    if (!v) {
      if (def) return *def;
      fail(key, "missing (expected a number)");
    }
    if (!v->is_number()) fail(key, fmt::format("expected a number, found {}", v->dump()));
    return v->get<double>();
  }
};

}  // namespace

ModelConfig ModelConfig::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw InputError(fmt::format("{}: expected a JSON object", source));
  Reader r{j, source, ""};
  ModelConfig c;
  c.vocab = r.integer("vocab_size", {}, 1);
  c.dim = r.integer("hidden_size", {}, 1);
  c.n_layers = r.integer("num_hidden_layers", {}, 1);
  c.n_heads = r.integer("num_attention_heads", {}, 1);
  c.head_dim = r.integer("head_dim", {}, 1);
  c.rope_dim = r.integer("qk_rope_head_dim", {}, 2);
  c.q_lora = r.integer("q_lora_rank", {}, 1);
  c.o_lora = r.integer("o_lora_rank", {}, 1);
  c.o_groups = r.integer("o_groups", {}, 1);
  c.n_experts = r.integer("n_routed_experts", {}, 1);
  c.n_shared = r.integer("n_shared_experts", 1, 1);
  c.topk_experts = r.integer("num_experts_per_tok", {}, 1);
  c.moe_inter = r.integer("moe_intermediate_size", {}, 1);
  c.route_scale = float(r.number("routed_scaling_factor", 1.0));
  if (const auto* v = r.find("scoring_func")) {
    if (!v->is_string()) r.fail("scoring_func", "expected a string");
    c.score_func = v->get<std::string>();
  }
  c.swiglu_limit = float(r.number("swiglu_limit", 0.0));
  c.window = r.integer("sliding_window", {}, 1);
  c.index_heads = r.integer("index_n_heads", 0);
  c.index_dim = r.integer("index_head_dim", 0);
  c.index_topk = r.integer("index_topk", 0);
  c.hc = r.integer("hc_mult", {}, 1);
  c.sinkhorn_iters = r.integer("hc_sinkhorn_iters", {}, 1);
  c.hc_eps = float(r.number("hc_eps"));
  c.n_hash = r.integer("num_hash_layers", 0);
  c.compress_rope_theta = r.number("compress_rope_theta", 0.0);
  c.rope_theta = r.number("rope_theta");
  c.norm_eps = float(r.number("rms_norm_eps", 1e-6));
  c.n_mtp = r.integer("num_nextn_predict_layers", 0);
  c.bos_id = r.integer("bos_token_id", 0);
  c.eos_id = r.integer("eos_token_id", 1);
  c.max_positions = r.integer("max_position_embeddings", 0);
  for (const char* key : {"bos_token_id", "eos_token_id"}) {
    const int id = std::string_view(key) == "bos_token_id" ? c.bos_id : c.eos_id;
    if (id >= c.vocab)
      r.fail(key, fmt::format("unsupported value {}: a token id must be below vocab_size ({})", id, c.vocab));
  }
  // What the loader and the kernels implement: any other model or quantisation would load as
  // garbage, so it is refused here with the key, the value and what is supported.
  r.expect_one_of("model_type", {"deepseek_v4"}, false, "flashline runs DeepSeek-V4 models only");
  const auto* q = r.find("quantization_config");
  if (!q)
    r.fail("quantization_config",
           "missing: expected the release's FP8 quantisation ({\"quant_method\": \"fp8\", \"fmt\": \"e4m3\", "
           "\"scale_fmt\": \"ue8m0\", \"weight_block_size\": [128, 128]}); unquantised checkpoints are not supported");
  if (!q->is_object()) r.fail("quantization_config", fmt::format("expected an object, found {}", q->dump()));
  {
    Reader qr{*q, source, "quantization_config."};
    const std::string fp8 = "FP8 weights as in the release";
    qr.expect_one_of("quant_method", {"fp8"}, true, fp8);
    qr.expect_one_of("fmt", {"e4m3"}, false, fp8);
    qr.expect_one_of("scale_fmt", {"ue8m0"}, false, "power-of-two block scales as in the release");
    qr.expect_one_of("weight_block_size", {nlohmann::json::array({128, 128})}, false,
                     "128 x 128 FP8 blocks as in the release");
    qr.expect_one_of("activation_scheme", {"dynamic"}, false, "activations are quantised per block at run time");
    qr.expect_one_of("expert_dtype", {"fp4"}, false, "routed experts are FP4 (e2m1) as in the release");
    qr.expect_one_of("expert_block_size", {32}, false, "one FP4 scale per 32 elements as in the release");
  }
  if (const auto* rs = r.find("rope_scaling")) {
    if (!rs->is_object()) r.fail("rope_scaling", "expected an object");
    Reader rr{*rs, source, "rope_scaling."};
    rr.expect_one_of("type", {"yarn"}, false, "the release's YaRN scaling is the one implemented");
    rr.expect_one_of("rope_type", {"yarn"}, false, "the release's YaRN scaling is the one implemented");
    c.rope_factor = rr.number("factor", 1.0);
    c.rope_orig_len = rr.integer("original_max_position_embeddings", 0);
    c.beta_fast = rr.number("beta_fast", 32.0);
    c.beta_slow = rr.number("beta_slow", 1.0);
  }
  const auto* ratios = r.find("compress_ratios");
  if (!ratios) {
    c.ratios.assign(c.n_layers + c.n_mtp, 0);
  } else {
    if (!ratios->is_array()) r.fail("compress_ratios", "expected an array of integers");
    for (std::size_t i = 0; i < ratios->size(); ++i) {
      const auto& v = (*ratios)[i];
      if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > kMaxValue)
        r.fail(fmt::format("compress_ratios[{}]", i), fmt::format("expected an integer in 0..{}", kMaxValue));
      c.ratios.push_back(v.get<int>());
    }
    if (int(c.ratios.size()) < c.n_layers + c.n_mtp)
      r.fail("compress_ratios", fmt::format("has {} entries, expected num_hidden_layers + "
                                            "num_nextn_predict_layers = {}",
                                            c.ratios.size(), c.n_layers + c.n_mtp));
    c.ratios.resize(c.n_layers + c.n_mtp);
  }

  // Relations the forward pass and the release tensor layout rely on.
  auto need = [&](bool ok, const char* key, const std::string& what) {
    if (!ok) r.fail(key, what);
  };
  need(c.score_func == "sqrtsoftplus" || c.score_func == "sigmoid" || c.score_func == "softmax",
       "scoring_func", fmt::format("expected sqrtsoftplus, sigmoid or softmax, found \"{}\"", c.score_func));
  need(c.rope_dim <= c.head_dim && c.rope_dim % 2 == 0, "qk_rope_head_dim",
       fmt::format("must be even and <= head_dim ({}), found {}", c.head_dim, c.rope_dim));
  need((c.head_dim - c.rope_dim) % 64 == 0, "head_dim",
       fmt::format("head_dim - qk_rope_head_dim must be a multiple of 64 (KV FP8 blocks), found {}",
                   c.head_dim - c.rope_dim));
  need(c.n_heads % c.o_groups == 0, "o_groups",
       fmt::format("must divide num_attention_heads ({}), found {}", c.n_heads, c.o_groups));
  need(c.topk_experts <= c.n_experts, "num_experts_per_tok",
       fmt::format("must be <= n_routed_experts ({}), found {}", c.n_experts, c.topk_experts));
  need(c.dim % 128 == 0, "hidden_size", fmt::format("must be a multiple of 128 (FP8 blocks), found {}", c.dim));
  need(c.q_lora % 128 == 0, "q_lora_rank", fmt::format("must be a multiple of 128, found {}", c.q_lora));
  need(c.moe_inter % 128 == 0, "moe_intermediate_size",
       fmt::format("must be a multiple of 128, found {}", c.moe_inter));
  need(int64_t(c.n_heads / c.o_groups) * c.head_dim % 128 == 0 && int64_t(c.o_lora) * c.o_groups % 128 == 0,
       "o_lora_rank",
       "wo_a / wo_b inner dimensions must be multiples of 128");
  // hc_mix_dim() = (2 + hc) * hc is an int; the release uses 4
  need(c.hc <= 64, "hc_mult", fmt::format("expected at most 64, found {}", c.hc));
  need(c.n_shared == 1, "n_shared_experts", fmt::format("expected 1, found {}", c.n_shared));
  // Each (layer, expert) pair is six tensors in the layout: bound them so a typo cannot make
  // the inventory (and inspect, the planner) allocate without limit. The release has 11264.
  constexpr int64_t kMaxExpertLayers = int64_t(1) << 18;
  need(int64_t(c.n_layers + c.n_mtp) * c.n_experts <= kMaxExpertLayers, "n_routed_experts",
       fmt::format("n_routed_experts x (num_hidden_layers + num_nextn_predict_layers) = {} x {} is more than {} "
                   "expert layers",
                   c.n_experts, c.n_layers + c.n_mtp, kMaxExpertLayers));
  bool any_csa = false;
  for (int r4 : c.ratios) any_csa |= r4 == 4;
  if (any_csa) {
    need(c.index_heads > 0 && c.index_topk > 0, "index_n_heads",
         "ratio-4 layers need index_n_heads and index_topk > 0");
    need(c.index_dim >= c.rope_dim && c.index_dim % 32 == 0 && (c.index_dim & (c.index_dim - 1)) == 0,
         "index_head_dim",
         fmt::format("must be a power of two, a multiple of 32 and >= qk_rope_head_dim, found {}", c.index_dim));
  }
  return c;
}

ModelConfig ModelConfig::load(const std::filesystem::path& path) {
  const std::string text = read_input_file(path, "config file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {  // parse_error, or out_of_range: a number beyond double
    throw InputError(fmt::format("{}: invalid JSON: {}", path.string(), e.what()));
  }
  return from_json(j, path.string());
}

AttentionKind ModelConfig::attention_kind(int layer_id) const {
  int r = ratio(layer_id);
  return r == 0 ? AttentionKind::Window : r == 4 ? AttentionKind::CSA : AttentionKind::HCA;
}

std::string ModelConfig::layer_prefix(int layer_id) const {
  return layer_id < n_layers ? fmt::format("layers.{}.", layer_id)
                             : fmt::format("mtp.{}.", layer_id - n_layers);
}

const char* attention_kind_name(AttentionKind k) {
  switch (k) {
    case AttentionKind::Window: return "window";
    case AttentionKind::CSA: return "CSA";
    case AttentionKind::HCA: return "HCA";
  }
  return "?";
}

}  // namespace flashline

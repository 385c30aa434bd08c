#include "stages/tiny_model.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>

#include "base/input_file.h"
#include "kernels/cpu/numerics.h"
#include "model/model_config.h"
#include "model/release_layout.h"
#include "stages/safetensors_writer.h"

namespace flashline {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

// Keys every preset shares (those of the release that the tiny models do not scale).
json common_config() {
  return json::parse(R"({
    "architectures": ["DeepseekV4ForCausalLM"],
    "model_type": "deepseek_v4",
    "torch_dtype": "bfloat16",
    "n_shared_experts": 1,
    "scoring_func": "sqrtsoftplus",
    "hc_sinkhorn_iters": 20,
    "hc_eps": 1e-6,
    "rms_norm_eps": 1e-6,
    "compress_rope_theta": 160000.0,
    "rope_theta": 10000.0,
    "rope_scaling": {"type": "yarn", "factor": 16.0, "original_max_position_embeddings": 65536,
                     "beta_fast": 32, "beta_slow": 1},
    "num_nextn_predict_layers": 1,
    "max_position_embeddings": 1048576,
    "bos_token_id": 0,
    "eos_token_id": 1,
    "quantization_config": {"quant_method": "fp8", "fmt": "e4m3", "scale_fmt": "ue8m0",
                            "weight_block_size": [128, 128], "expert_dtype": "fp4",
                            "expert_block_size": 32}
  })");
}

// Std multipliers on top of 1/sqrt(fan_in), the reference generator's defaults: they keep the
// hc stream O(1..5), let attention and MoE both contribute, give logits of std ~2.5, spread
// routing over all experts and make the SwiGLU clamp fire on a small fraction of values.
json default_gains() {
  return {{"expert_in", 3.0}, {"expert_out", 0.15}, {"wo_b", 1.5}, {"head", 2.5},
          {"embed", 1.0},     {"comb_diag", 2.0},   {"hc_fn", 1.0}, {"gate_w", 1.5}};
}

struct Preset {
  const char* name;
  uint64_t seed;
  const char* keys;
};

// tiny-a: the hyper-parameters of tests/data/models/tiny-a (the reference goldens' model).
// tiny-b: other values on every axis the kernels special-case: hc 2, ratio 16 beside 4 and 128,
// a CSA MTP block, window 32, rope 32, 8 heads of 96, 2 indexer heads of 32, 8 experts top 2.
// small: a benchmark model, the release shape scaled down (hidden 1024, 8 layers, 64 experts).
const Preset kPresets[] = {
    {"tiny-a", 20240601, R"({
      "vocab_size": 2048, "hidden_size": 256, "num_hidden_layers": 5,
      "compress_ratios": [0, 0, 4, 128, 4, 0],
      "num_attention_heads": 4, "head_dim": 128, "qk_rope_head_dim": 64,
      "q_lora_rank": 128, "o_groups": 2, "o_lora_rank": 128,
      "n_routed_experts": 16, "num_experts_per_tok": 4, "moe_intermediate_size": 128,
      "num_hash_layers": 3, "index_n_heads": 4, "index_head_dim": 64, "index_topk": 16,
      "sliding_window": 128, "hc_mult": 4,
      "routed_scaling_factor": 1.5, "swiglu_limit": 10.0})"},
    {"tiny-b", 20240602, R"({
      "vocab_size": 1024, "hidden_size": 384, "num_hidden_layers": 4,
      "compress_ratios": [4, 16, 0, 128, 4],
      "num_attention_heads": 8, "head_dim": 96, "qk_rope_head_dim": 32,
      "q_lora_rank": 128, "o_groups": 2, "o_lora_rank": 64,
      "n_routed_experts": 8, "num_experts_per_tok": 2, "moe_intermediate_size": 256,
      "num_hash_layers": 1, "index_n_heads": 2, "index_head_dim": 32, "index_topk": 8,
      "sliding_window": 32, "hc_mult": 2,
      "routed_scaling_factor": 2.0, "swiglu_limit": 7.0})"},
    {"small", 20240603, R"({
      "vocab_size": 32768, "hidden_size": 1024, "num_hidden_layers": 8,
      "compress_ratios": [0, 0, 4, 128, 4, 128, 4, 128, 0],
      "num_attention_heads": 16, "head_dim": 256, "qk_rope_head_dim": 64,
      "q_lora_rank": 256, "o_groups": 4, "o_lora_rank": 256,
      "n_routed_experts": 64, "num_experts_per_tok": 6, "moe_intermediate_size": 256,
      "num_hash_layers": 3, "index_n_heads": 16, "index_head_dim": 128, "index_topk": 128,
      "sliding_window": 128, "hc_mult": 4,
      "routed_scaling_factor": 1.5, "swiglu_limit": 10.0})"},
};

// ---- random numbers: one stream per tensor, so tensors can be generated in any order or in
// parallel and a tensor's values depend only on the seed and its name.

uint64_t splitmix64(uint64_t& x) {
  uint64_t z = (x += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Rng {  // xoshiro256**
 public:
  Rng(uint64_t seed, const std::string& stream) {
    uint64_t h = 0xCBF29CE484222325ull;  // FNV-1a of the stream name
    for (unsigned char ch : stream) h = (h ^ ch) * 0x100000001B3ull;
    uint64_t x = seed ^ h;
    for (auto& w : s_) w = splitmix64(x);
  }
  uint64_t next() {
    const uint64_t r = rotl(s_[1] * 5, 7) * 9, t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return r;
  }
  double uniform() { return double(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  // Box-Muller in float (both values of a pair used): generation time is dominated by the
  // routed experts' normals, and float precision is plenty for random weights.
  float normal() {
    if (have_spare_) {
      have_spare_ = false;
      return spare_;
    }
    const float u = float(next() >> 40) * 0x1.0p-24f, v = float(next() >> 40) * 0x1.0p-24f;
    const float r = std::sqrt(-2.0f * std::log(1.0f - u));  // 1 - u in (0, 1]
    const float t = 6.2831853f * v;
    spare_ = r * std::sin(t);
    have_spare_ = true;
    return r * std::cos(t);
  }
  uint64_t below(uint64_t n) { return next() % n; }  // bias irrelevant at these n

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
  float spare_ = 0.0f;
  bool have_spare_ = false;
};

// ---- release quantisation (pow2 scale = 2^ceil(log2(amax/qmax)), round-half-even on the grid)

uint8_t e8m0_byte(float pow2) { return uint8_t(127 + std::ilogb(pow2)); }

uint8_t e4m3_code(float q) {  // q on the e4m3fn grid, |q| <= 448
  const float* table = e4m3_table();  // codes 0x00..0x7E are the finite non-negatives, ascending
  const float a = std::fabs(q);
  auto code = uint8_t(std::lower_bound(table, table + 127, a) - table);
  return uint8_t(code | (std::signbit(q) ? 0x80 : 0));
}

// x (already divided by its block scale, |x| <= 6) -> e2m1 code, round-half-even onto
// {0, .5, 1, 1.5, 2, 3, 4, 6}: ties go to the even code (.25->0, .75->1, 1.25->1, 1.75->2,
// 2.5->2, 3.5->4, 5->4). Thresholds instead of e2m1_round: routed experts are most of the bytes.
// Branch-free: random weights make every branch a coin flip.
uint8_t e2m1_code(float x) {
  const float a = std::fabs(x);
  const int code = (a > 0.25f) + (a >= 0.75f) + (a > 1.25f) + (a >= 1.75f) + (a > 2.5f) + (a >= 3.5f) + (a > 5.0f);
  return uint8_t(code | (std::signbit(x) ? 0x8 : 0));
}

std::vector<float> normal_values(Rng& rng, int64_t n, double std, double mean = 0.0) {
  std::vector<float> v(std::size_t(n), 0.0f);
  const auto s = float(std), m = float(mean);
  for (auto& x : v) x = rng.normal() * s + m;
  return v;
}

template <class T>
std::vector<std::byte> as_bytes(const std::vector<T>& v) {
  std::vector<std::byte> out(v.size() * sizeof(T));
  if (!v.empty()) std::memcpy(out.data(), v.data(), out.size());  // little-endian host
  return out;
}

// [n, k] -> e4m3 codes [n, k] + UE8M0 scales per 128x128 block.
std::pair<std::vector<std::byte>, std::vector<std::byte>> quant_fp8(const std::vector<float>& w, int64_t n, int64_t k) {
  const int64_t nb = (n + 127) / 128, kb = (k + 127) / 128;
  std::vector<std::byte> codes(std::size_t(n * k)), scales(std::size_t(nb * kb));
  for (int64_t bi = 0; bi < nb; ++bi)
    for (int64_t bj = 0; bj < kb; ++bj) {
      const int64_t r0 = bi * 128, r1 = std::min(n, r0 + 128), c0 = bj * 128, c1 = std::min(k, c0 + 128);
      float amax = 1e-30f;
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c) amax = std::max(amax, std::fabs(w[r * k + c]));
      const float s = pow2_ceil(amax / 448.0f);
      scales[bi * kb + bj] = std::byte(e8m0_byte(s));
      for (int64_t r = r0; r < r1; ++r)
        for (int64_t c = c0; c < c1; ++c)
          codes[r * k + c] = std::byte(e4m3_code(e4m3_round(std::clamp(w[r * k + c] / s, -448.0f, 448.0f))));
    }
  return {std::move(codes), std::move(scales)};
}

// [n, k] -> packed e2m1 [n, k/2] (low nibble = even column) + UE8M0 scales per 32 of a row.
std::pair<std::vector<std::byte>, std::vector<std::byte>> quant_fp4(const std::vector<float>& w, int64_t n, int64_t k) {
  std::vector<std::byte> packed(std::size_t(n * k / 2)), scales(std::size_t(n * k / 32));
  uint8_t codes[32];
  for (int64_t b = 0; b < n * k / 32; ++b) {
    const float* x = w.data() + b * 32;
    float amax = 1e-30f;
    for (int i = 0; i < 32; ++i) amax = std::max(amax, std::fabs(x[i]));
    const float s = pow2_ceil(amax / 6.0f);
    scales[b] = std::byte(e8m0_byte(s));
    const float inv = 1.0f / s;  // exact: s is a power of two well inside the normal range
    for (int i = 0; i < 32; ++i) codes[i] = e2m1_code(x[i] * inv);
    for (int i = 0; i < 16; ++i) packed[b * 16 + i] = std::byte(uint8_t(codes[2 * i] | (codes[2 * i + 1] << 4)));
  }
  return {std::move(packed), std::move(scales)};
}

// ---- which distribution each release tensor gets (make_tiny.py's Gen.block / Gen.build)

struct Generated {
  const TensorSpec* spec;
  std::vector<std::byte> data;
};

double gain(const json& gains, const char* key) { return gains.at(key).get<double>(); }

// A quantised linear: its .weight and .scale come from the same values.
void gen_linear(const TensorSpec& w, const TensorSpec& scale, const json& gains, Rng& rng,
                std::vector<Generated>& out) {
  const bool fp4 = w.dtype == DType::I8;
  const int64_t n = w.shape[0], k = fp4 ? w.shape[1] * 2 : w.shape[1];
  const std::string& nm = w.name;
  double g = 1.0;
  const bool expert = nm.find("experts.") != std::string::npos;  // routed or shared
  if (expert && (nm.ends_with("w1.weight") || nm.ends_with("w3.weight"))) g = gain(gains, "expert_in");
  if (expert && nm.ends_with("w2.weight")) g = gain(gains, "expert_out");
  if (nm.ends_with("attn.wo_b.weight")) g = gain(gains, "wo_b");
  auto values = normal_values(rng, n * k, g / std::sqrt(double(k)));
  auto [codes, scales] = fp4 ? quant_fp4(values, n, k) : quant_fp8(values, n, k);
  out.push_back({&w, std::move(codes)});
  out.push_back({&scale, std::move(scales)});
}

std::vector<uint16_t> bf16_values(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) out[i] = float_to_bf16_bits(v[i]);
  return out;
}

std::vector<std::byte> gen_plain(const TensorSpec& t, const ModelConfig& c, const json& gains, Rng& rng) {
  const std::string& nm = t.name;
  const int64_t n = t.elements();
  const double inv_sqrt_dim = 1.0 / std::sqrt(double(c.dim));
  if (t.dtype == DType::BF16) {
    double std = 0.0, mean = 0.0;
    if (nm == "embed.weight") {
      std = gain(gains, "embed");
    } else if (nm == "head.weight") {
      std = gain(gains, "head") * inv_sqrt_dim;
    } else if (nm.ends_with("norm.weight")) {  // every RMSNorm weight: near 1
      std = 0.1, mean = 1.0;
    } else if (nm.ends_with("compressor.wgate.weight")) {
      std = gain(gains, "gate_w") * inv_sqrt_dim;
    } else if (nm.ends_with("compressor.wkv.weight") || nm.ends_with("ffn.gate.weight") ||
               nm.ends_with("indexer.weights_proj.weight")) {
      std = inv_sqrt_dim;
    } else {
      throw std::logic_error(fmt::format("make-tiny: no distribution for BF16 tensor \"{}\"", nm));
    }
    return as_bytes(bf16_values(normal_values(rng, n, std, mean)));
  }
  if (t.dtype == DType::F32) {
    std::vector<float> v;
    const std::size_t dot = nm.rfind('.');
    const std::string leaf = dot == std::string::npos ? nm : nm.substr(dot + 1);
    const double inv_sqrt_stream = 1.0 / std::sqrt(double(c.hc) * c.dim);
    if (leaf == "attn_sink") {
      v = normal_values(rng, n, 1.0, 0.5);
    } else if (leaf == "ape") {
      v = normal_values(rng, n, 0.5);
    } else if (leaf == "bias") {  // ffn.gate.bias: small, so hash-free routing stays score-driven
      v = normal_values(rng, n, 0.1);
    } else if (leaf == "hc_head_fn") {
      v = normal_values(rng, n, inv_sqrt_stream);
    } else if (leaf == "hc_attn_fn" || leaf == "hc_ffn_fn") {
      v = normal_values(rng, n, gain(gains, "hc_fn") * inv_sqrt_stream);
    } else if (leaf == "hc_head_base") {
      v = normal_values(rng, n, 0.5);
    } else if (leaf == "hc_attn_base" || leaf == "hc_ffn_base") {
      // pre [hc], post [hc], then comb [hc, hc]: a strong diagonal keeps each copy mostly itself
      v = normal_values(rng, n, 0.5);
      for (int i = 0; i < c.hc; ++i) v[std::size_t(2 * c.hc + i * c.hc + i)] += float(gain(gains, "comb_diag"));
    } else if (leaf.ends_with("_scale") && leaf.starts_with("hc_")) {
      v.resize(std::size_t(n));
      for (auto& x : v) x = float(0.5 + rng.uniform());
    } else {
      throw std::logic_error(fmt::format("make-tiny: no distribution for F32 tensor \"{}\"", nm));
    }
    return as_bytes(v);
  }
  if (t.dtype == DType::I64 && nm.ends_with("gate.tid2eid")) {
    // each token's k experts: the first k of a random permutation, so a row has no repeats
    const int64_t rows = t.shape[0], k = t.shape[1];
    std::vector<int64_t> ids(std::size_t(rows * k)), perm(std::size_t(c.n_experts));
    for (int64_t r = 0; r < rows; ++r) {
      for (int e = 0; e < c.n_experts; ++e) perm[e] = e;
      for (int64_t i = 0; i < k; ++i) {
        auto j = i + int64_t(rng.below(uint64_t(c.n_experts - i)));
        std::swap(perm[i], perm[j]);
        ids[r * k + i] = perm[i];
      }
    }
    return as_bytes(ids);
  }
  throw std::logic_error(fmt::format("make-tiny: no distribution for {} tensor \"{}\"", dtype_name(t.dtype), nm));
}

// One unit of work: a plain tensor, or a quantised linear (weight + scale).
struct Job {
  const TensorSpec* tensor;
  const TensorSpec* scale = nullptr;
};

std::vector<Generated> run_jobs(const std::vector<Job>& jobs, const ModelConfig& c, const json& gains,
                                uint64_t seed) {
  std::vector<std::vector<Generated>> parts(jobs.size());
  std::string error;
#pragma omp parallel for schedule(dynamic)
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    try {
      Rng rng(seed, jobs[i].tensor->name);
      if (jobs[i].scale)
        gen_linear(*jobs[i].tensor, *jobs[i].scale, gains, rng, parts[i]);
      else
        parts[i].push_back({jobs[i].tensor, gen_plain(*jobs[i].tensor, c, gains, rng)});
    } catch (const std::exception& e) {  // exceptions must not leave an OpenMP region
#pragma omp critical
      error = e.what();
    }
  }
  if (!error.empty()) throw std::logic_error(error);
  std::vector<Generated> out;
  for (auto& p : parts)
    for (auto& g : p) out.push_back(std::move(g));
  return out;
}

void check_gains(const json& gains, const std::string& source) {
  if (!gains.is_object()) throw InputError(fmt::format("{}: field \"init_gains\": expected an object", source));
  const json defaults = default_gains();
  for (auto& [k, v] : gains.items()) {
    if (!defaults.contains(k))
      throw InputError(fmt::format("{}: field \"init_gains.{}\": unknown gain (known: {})", source, k,
                                   defaults.dump()));
    if (!v.is_number() || !std::isfinite(v.get<double>()) || v.get<double>() < 0)
      throw InputError(fmt::format("{}: field \"init_gains.{}\": expected a finite number >= 0, found {}", source,
                                   k, v.dump()));
  }
}

}  // namespace

std::vector<std::string> tiny_preset_names() {
  std::vector<std::string> out;
  for (const auto& p : kPresets) out.emplace_back(p.name);
  return out;
}

TinyModelSpec tiny_preset(const std::string& name) {
  for (const auto& p : kPresets) {
    if (name != p.name) continue;
    TinyModelSpec s;
    s.name = p.name;
    s.seed = p.seed;
    s.config = common_config();
    s.config.update(json::parse(p.keys));
    s.gains = default_gains();
    return s;
  }
  throw InputError(fmt::format("make-tiny: unknown preset \"{}\" (known: {})", name,
                               fmt::join(tiny_preset_names(), ", ")));
}

TinyModelSpec tiny_preset_from_file(const fs::path& path) {
  const std::string text = read_input_file(path, "preset file");
  json j;
  try {
    j = json::parse(text);
  } catch (const json::parse_error& e) {
    throw InputError(fmt::format("{}: invalid JSON: {}", path.string(), e.what()));
  }
  if (!j.is_object()) throw InputError(fmt::format("{}: expected a JSON object of config keys", path.string()));
  TinyModelSpec s;
  s.name = path.stem().string();
  s.seed = 1;
  s.gains = default_gains();
  if (j.contains("name")) {
    if (!j["name"].is_string()) throw InputError(fmt::format("{}: field \"name\": expected a string", path.string()));
    s.name = j["name"].get<std::string>();
    j.erase("name");
  }
  if (j.contains("seed")) {
    if (!j["seed"].is_number_unsigned())
      throw InputError(fmt::format("{}: field \"seed\": expected an integer >= 0, found {}", path.string(),
                                   j["seed"].dump()));
    s.seed = j["seed"].get<uint64_t>();
    j.erase("seed");
  }
  if (j.contains("init_gains")) {
    check_gains(j["init_gains"], path.string());
    s.gains.update(j["init_gains"]);
    j.erase("init_gains");
  }
  s.config = common_config();
  s.config.update(j);
  ModelConfig::from_json(s.config, path.string());  // rejects what the loader would reject
  return s;
}

TinyModelResult write_tiny_model(const TinyModelSpec& spec, const fs::path& out,
                                 const std::function<void(const std::string&)>& progress) {
  const ModelConfig c = ModelConfig::from_json(spec.config, fmt::format("preset \"{}\"", spec.name));
  check_gains(spec.gains, fmt::format("preset \"{}\"", spec.name));
  json gains = default_gains();
  gains.update(spec.gains);
  std::error_code ec;
  fs::create_directories(out, ec);
  if (ec) throw InputError(fmt::format("{}: cannot create directory: {}", out.string(), ec.message()));

  const auto specs = release_tensors(c);
  std::map<std::string, const TensorSpec*> by_name;
  for (const auto& t : specs) by_name[t.name] = &t;
  // Release sharding, in two: the embedding and the first half of the layers, then the rest
  // (later layers, final norm, head, hc_head, MTP).
  const int split = (c.n_layers + 1) / 2;
  const std::string files[2] = {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"};
  auto shard_of = [&](const TensorSpec& t) {
    return t.group == TensorGroup::Embedding || (t.layer >= 0 && t.layer < split) ? 0 : 1;
  };
  // Jobs per (shard, layer) so progress can be reported layer by layer; layer -1 = top level.
  std::map<std::pair<int, int>, std::vector<Job>> jobs;
  for (const auto& t : specs) {
    if (t.name.ends_with(".scale") && (t.dtype == DType::F8_E8M0)) continue;  // made with its weight
    Job j{&t};
    if (t.dtype == DType::F8_E4M3 || (t.dtype == DType::I8 && t.group == TensorGroup::RoutedExpert)) {
      auto it = by_name.find(t.name.substr(0, t.name.size() - std::string(".weight").size()) + ".scale");
      if (it == by_name.end()) throw std::logic_error(fmt::format("make-tiny: no scale for \"{}\"", t.name));
      j.scale = it->second;
    }
    jobs[{shard_of(t), t.layer}].push_back(j);
  }

  TinyModelResult result;
  json weight_map = json::object();
  for (int shard = 0; shard < 2; ++shard) {
    SafetensorsWriter w;
    for (auto& [key, list] : jobs) {
      if (key.first != shard) continue;
      for (auto& g : run_jobs(list, c, gains, spec.seed)) {
        weight_map[g.spec->name] = files[shard];
        w.add(g.spec->name, g.spec->dtype, g.spec->shape, std::move(g.data));
      }
      if (progress)
        progress(key.second < 0 ? std::string("top-level tensors generated")
                                : fmt::format("{} generated", c.layer_prefix(key.second).substr(
                                                                      0, c.layer_prefix(key.second).size() - 1)));
    }
    w.write(out / files[shard]);
    result.tensors += int64_t(w.tensor_count());
    result.bytes += w.data_bytes();
    if (progress)
      progress(fmt::format("wrote {} ({} tensors, {:.1f} MiB)", files[shard], w.tensor_count(),
                           double(w.data_bytes()) / (1 << 20)));
  }

  auto write_json = [&](const std::string& name, const json& j) {
    std::ofstream f(out / name);
    f << j.dump(1) << "\n";
    if (!f) throw InputError(fmt::format("{}: cannot write", (out / name).string()));
  };
  write_json("model.safetensors.index.json", {{"metadata", {{"total_size", result.bytes}}}, {"weight_map", weight_map}});
  json cfg = spec.config;
  cfg["generator"] = {{"program", "flashline make-tiny"}, {"name", spec.name}, {"seed", spec.seed}, {"init_gains", gains}};
  write_json("config.json", cfg);
  return result;
}

}  // namespace flashline

#pragma once
// The model hyper-parameters, read from a Hugging Face style config.json (the keys of the
// DeepSeek-V4 release). Nothing of the release values is assumed: every size comes from here.
#include <cstdint>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "base/input_error.h"

namespace flashline {

enum class AttentionKind { Window, CSA, HCA };  // ratio 0, ratio 4 (with indexer), other ratio

struct ModelConfig {
  int vocab = 0;
  int dim = 0;
  int n_layers = 0;
  int n_heads = 0;
  int head_dim = 0;
  int rope_dim = 0;
  int q_lora = 0;
  int o_lora = 0;
  int o_groups = 0;
  int n_experts = 0;
  int n_shared = 1;
  int topk_experts = 0;
  int moe_inter = 0;
  float route_scale = 1.0f;
  std::string score_func = "sqrtsoftplus";
  float swiglu_limit = 0.0f;
  int window = 0;
  int index_heads = 0;
  int index_dim = 0;
  int index_topk = 0;
  int hc = 0;
  int sinkhorn_iters = 0;
  float hc_eps = 0.0f;
  int n_hash = 0;
  std::vector<int> ratios;  // one per layer, then one per MTP block
  double compress_rope_theta = 0.0;
  double rope_theta = 0.0;
  double rope_factor = 1.0;
  int rope_orig_len = 0;
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  float norm_eps = 1e-6f;
  int n_mtp = 0;
  int bos_id = 0;
  int eos_id = 1;
  int max_position = 0;  // max_position_embeddings: the context limit (0: not given)

  // `source` names the input in error messages (a file path or "<json>").
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source);
  static ModelConfig load(const std::filesystem::path& config_json);

  int total_layers() const { return n_layers + n_mtp; }  // layer ids n_layers.. are MTP
  int ratio(int layer_id) const { return ratios.at(layer_id); }
  AttentionKind attention_kind(int layer_id) const;
  bool hash_routed(int layer_id) const { return layer_id < n_hash && layer_id < n_layers; }
  int hc_mix_dim() const { return (2 + hc) * hc; }
  std::string layer_prefix(int layer_id) const;  // "layers.3." or "mtp.0."
};

const char* attention_kind_name(AttentionKind k);

}  // namespace flashline

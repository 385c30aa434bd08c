#pragma once
// The tensors the DeepSeek-V4 release format implies for a config: names, dtypes and shapes.
// The loader validates checkpoints against it, `inspect --config` lists it, and the planner
// sizes stages from it.
#include <cstdint>
#include <string>
#include <vector>

#include "model/dtype.h"
#include "model/model_config.h"

namespace flashline {

enum class TensorGroup {
  Embedding,     // embed.weight
  Head,          // head.weight, norm.weight, hc_head_* (top level)
  Attention,     // attn.* except compressor / indexer
  Compressor,    // attn.compressor.*
  Indexer,       // attn.indexer.*
  BlockNorms,    // attn_norm, ffn_norm
  HyperConnect,  // hc_attn_*, hc_ffn_*
  Gate,          // ffn.gate.*
  RoutedExpert,  // ffn.experts.*
  SharedExpert,  // ffn.shared_experts.*
  MtpExtra,      // mtp.N.{e_proj,h_proj,enorm,hnorm,norm,hc_head_*}
};
const char* tensor_group_name(TensorGroup g);

struct TensorSpec {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  TensorGroup group;
  int layer = -1;   // layer id (MTP blocks follow the main layers), -1 at top level
  int expert = -1;  // routed expert id, -1 otherwise

  int64_t elements() const;
  int64_t bytes() const { return elements() * int64_t(dtype_size(dtype)); }
};

std::vector<TensorSpec> release_tensors(const ModelConfig& c);

}  // namespace flashline

#pragma once
// Typed views of the checkpoint's tensors, per layer. FP8/FP4 codes stay in the mapping
// (zero copy); small fp32 / bf16 tensors (norms, hc parameters, sinks, biases) are decoded
// into owned fp32 vectors; large bf16 matrices are viewed in place when aligned.
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "stages/checkpoint.h"

namespace flashline {

// A bf16 [rows, cols] matrix: a view into the mapping, or an owned copy when the file data is
// not 2-byte aligned.
struct Bf16Matrix {
  const uint16_t* data = nullptr;
  int64_t rows = 0, cols = 0;
  std::shared_ptr<std::vector<uint16_t>> owned;
  const uint16_t* row(int64_t r) const { return data + r * cols; }
};

struct HcParams {
  std::vector<float> fn;     // [mix, hc*dim]
  std::vector<float> scale;  // [3] (or [1] for a head)
  std::vector<float> base;   // [mix]
};

struct CompressorWeights {
  int ratio = 0;
  int head_dim = 0;
  bool overlap = false;  // ratio 4: overlapping windows over two blocks
  bool rotate = false;   // indexer keys: Hadamard + FP4 simulation instead of FP8 simulation
  std::vector<float> ape;  // [ratio, coff*head_dim]
  Bf16Matrix wkv, wgate;   // [coff*head_dim, dim]
  std::vector<float> norm;
};

struct IndexerWeights {
  Fp8Weight wq_b;
  Bf16Matrix weights_proj;  // [index_heads, dim]
  CompressorWeights compressor;
};

struct AttentionWeights {
  std::vector<float> sink;
  Fp8Weight wq_a, wq_b, wkv, wo_b;
  std::vector<float> q_norm, kv_norm;
  std::vector<uint16_t> wo_a;  // dequantised once to bf16 (exact), [groups*o_lora, heads*head_dim/groups]
  std::optional<CompressorWeights> compressor;
  std::optional<IndexerWeights> indexer;
};

struct ExpertWeights {
  Fp4Weight w1, w2, w3;
};
struct SharedExpertWeights {
  Fp8Weight w1, w2, w3;
};

struct MoeWeights {
  Bf16Matrix gate;                     // [experts, dim]
  std::vector<float> bias;             // score-routed layers
  std::vector<int32_t> tid2eid;        // hash-routed layers, [vocab, k]
  std::map<int, ExpertWeights> experts;  // the routed experts this process holds
  SharedExpertWeights shared;
};

struct BlockWeights {
  int id = 0;
  HcParams hc_attn, hc_ffn;
  std::vector<float> attn_norm, ffn_norm;
  AttentionWeights attn;
  MoeWeights moe;
};

struct MtpWeights {
  BlockWeights block;
  Fp8Weight e_proj, h_proj;
  std::vector<float> enorm, hnorm, norm;
  HcParams hc_head;
};

// Everything one process holds, per the checkpoint's selection.
struct ModelWeights {
  std::optional<Bf16Matrix> embed;
  std::optional<Bf16Matrix> head;
  std::vector<float> norm;
  HcParams hc_head;
  int layer_begin = 0;
  std::vector<BlockWeights> layers;  // layers[i] is layer id layer_begin + i
  std::vector<MtpWeights> mtp;

  static ModelWeights load(const Checkpoint& ck);
  const BlockWeights& layer(int id) const { return layers.at(id - layer_begin); }
};

}  // namespace flashline

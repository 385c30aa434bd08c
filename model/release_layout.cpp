#include "model/release_layout.h"

#include <fmt/format.h>

namespace flashline {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

struct Builder {
  std::vector<TensorSpec>& out;
  int layer;
  int expert = -1;

  void add(std::string name, DType t, std::vector<int64_t> shape, TensorGroup g) {
    out.push_back({std::move(name), t, std::move(shape), g, layer, expert});
  }
  // FP8 linear [out, in]: e4m3 weight + UE8M0 scale per 128x128 block.
  void fp8(const std::string& p, int64_t n, int64_t k, TensorGroup g) {
    add(p + ".weight", DType::F8_E4M3, {n, k}, g);
    add(p + ".scale", DType::F8_E8M0, {ceil_div(n, 128), ceil_div(k, 128)}, g);
  }
  // FP4 linear [out, in]: two e2m1 codes per byte + UE8M0 scale per 32 inputs of a row.
  void fp4(const std::string& p, int64_t n, int64_t k, TensorGroup g) {
    add(p + ".weight", DType::I8, {n, k / 2}, g);
    add(p + ".scale", DType::F8_E8M0, {n, k / 32}, g);
  }
  void compressor(const std::string& p, int ratio, int64_t d, int64_t dim, TensorGroup g) {
    int64_t coff = ratio == 4 ? 2 : 1;  // ratio 4 pools overlapping windows: two halves
    add(p + "ape", DType::F32, {ratio, coff * d}, g);
    add(p + "wkv.weight", DType::BF16, {coff * d, dim}, g);
    add(p + "wgate.weight", DType::BF16, {coff * d, dim}, g);
    add(p + "norm.weight", DType::BF16, {d}, g);
  }
};

void add_block(const ModelConfig& c, int id, std::vector<TensorSpec>& out) {
  const std::string p = c.layer_prefix(id);
  const std::string a = p + "attn.";
  Builder b{out, id};
  using G = TensorGroup;
  b.add(a + "attn_sink", DType::F32, {c.n_heads}, G::Attention);
  b.fp8(a + "wq_a", c.q_lora, c.dim, G::Attention);
  b.add(a + "q_norm.weight", DType::BF16, {c.q_lora}, G::Attention);
  b.fp8(a + "wq_b", int64_t(c.n_heads) * c.head_dim, c.q_lora, G::Attention);
  b.fp8(a + "wkv", c.head_dim, c.dim, G::Attention);
  b.add(a + "kv_norm.weight", DType::BF16, {c.head_dim}, G::Attention);
  b.fp8(a + "wo_a", int64_t(c.o_groups) * c.o_lora, int64_t(c.n_heads) * c.head_dim / c.o_groups,
        G::Attention);
  b.fp8(a + "wo_b", c.dim, int64_t(c.o_groups) * c.o_lora, G::Attention);
  int ratio = c.ratio(id);
  if (ratio > 0) b.compressor(a + "compressor.", ratio, c.head_dim, c.dim, G::Compressor);
  if (ratio == 4) {
    b.fp8(a + "indexer.wq_b", int64_t(c.index_heads) * c.index_dim, c.q_lora, G::Indexer);
    b.add(a + "indexer.weights_proj.weight", DType::BF16, {c.index_heads, c.dim}, G::Indexer);
    b.compressor(a + "indexer.compressor.", 4, c.index_dim, c.dim, G::Indexer);
  }
  b.add(p + "attn_norm.weight", DType::BF16, {c.dim}, G::BlockNorms);
  b.add(p + "ffn_norm.weight", DType::BF16, {c.dim}, G::BlockNorms);
  for (const char* s : {"attn", "ffn"}) {
    b.add(fmt::format("{}hc_{}_fn", p, s), DType::F32, {c.hc_mix_dim(), int64_t(c.hc) * c.dim}, G::HyperConnect);
    b.add(fmt::format("{}hc_{}_base", p, s), DType::F32, {c.hc_mix_dim()}, G::HyperConnect);
    b.add(fmt::format("{}hc_{}_scale", p, s), DType::F32, {3}, G::HyperConnect);
  }
  const std::string f = p + "ffn.";
  b.add(f + "gate.weight", DType::BF16, {c.n_experts, c.dim}, G::Gate);
  if (c.hash_routed(id))
    b.add(f + "gate.tid2eid", DType::I64, {c.vocab, c.topk_experts}, G::Gate);
  else
    b.add(f + "gate.bias", DType::F32, {c.n_experts}, G::Gate);
  for (int e = 0; e < c.n_experts; ++e) {
    Builder eb{out, id, e};
    const std::string ep = fmt::format("{}experts.{}.", f, e);
    eb.fp4(ep + "w1", c.moe_inter, c.dim, G::RoutedExpert);
    eb.fp4(ep + "w2", c.dim, c.moe_inter, G::RoutedExpert);
    eb.fp4(ep + "w3", c.moe_inter, c.dim, G::RoutedExpert);
  }
  const int64_t shared_inter = int64_t(c.moe_inter) * c.n_shared;
  b.fp8(f + "shared_experts.w1", shared_inter, c.dim, G::SharedExpert);
  b.fp8(f + "shared_experts.w2", c.dim, shared_inter, G::SharedExpert);
  b.fp8(f + "shared_experts.w3", shared_inter, c.dim, G::SharedExpert);
  if (id >= c.n_layers) {
    b.fp8(p + "e_proj", c.dim, c.dim, G::MtpExtra);
    b.fp8(p + "h_proj", c.dim, c.dim, G::MtpExtra);
    for (const char* n : {"enorm", "hnorm", "norm"})
      b.add(fmt::format("{}{}.weight", p, n), DType::BF16, {c.dim}, G::MtpExtra);
    b.add(p + "hc_head_fn", DType::F32, {c.hc, int64_t(c.hc) * c.dim}, G::MtpExtra);
    b.add(p + "hc_head_base", DType::F32, {c.hc}, G::MtpExtra);
    b.add(p + "hc_head_scale", DType::F32, {1}, G::MtpExtra);
  }
}

}  // namespace

int64_t TensorSpec::elements() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

const char* tensor_group_name(TensorGroup g) {
  switch (g) {
    case TensorGroup::Embedding: return "embedding";
    case TensorGroup::Head: return "head";
    case TensorGroup::Attention: return "attention";
    case TensorGroup::Compressor: return "compressor";
    case TensorGroup::Indexer: return "indexer";
    case TensorGroup::BlockNorms: return "block_norms";
    case TensorGroup::HyperConnect: return "hyper_connections";
    case TensorGroup::Gate: return "gate";
    case TensorGroup::RoutedExpert: return "routed_experts";
    case TensorGroup::SharedExpert: return "shared_expert";
    case TensorGroup::MtpExtra: return "mtp_extra";
  }
  return "?";
}

std::vector<TensorSpec> release_tensors(const ModelConfig& c) {
  std::vector<TensorSpec> out;
  Builder top{out, -1};
  top.add("embed.weight", DType::BF16, {c.vocab, c.dim}, TensorGroup::Embedding);
  for (int id = 0; id < c.total_layers(); ++id) add_block(c, id, out);
  top.add("norm.weight", DType::BF16, {c.dim}, TensorGroup::Head);
  top.add("head.weight", DType::BF16, {c.vocab, c.dim}, TensorGroup::Head);
  top.add("hc_head_fn", DType::F32, {c.hc, int64_t(c.hc) * c.dim}, TensorGroup::Head);
  top.add("hc_head_base", DType::F32, {c.hc}, TensorGroup::Head);
  top.add("hc_head_scale", DType::F32, {1}, TensorGroup::Head);
  return out;
}

}  // namespace flashline

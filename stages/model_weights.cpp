#include "stages/model_weights.h"

#include <cstring>

#include "kernels/cpu/numerics.h"

namespace flashline {
namespace {

struct Loader {
  const Checkpoint& ck;
  const ModelConfig& c = ck.config();

  const TensorView& t(const std::string& name) const { return ck.tensor(name); }

  std::vector<float> f32(const std::string& name) const {
    const auto& v = t(name);
    std::vector<float> out(v.elements());
    if (v.dtype == DType::BF16) {
      for (std::size_t i = 0; i < out.size(); ++i) {
        uint16_t b;
        std::memcpy(&b, v.data.data() + 2 * i, 2);
        out[i] = bf16_to_float(b);
      }
    } else {
      std::memcpy(out.data(), v.data.data(), out.size() * 4);
    }
    return out;
  }
  Bf16Matrix bf16(const std::string& name) const {
    const auto& v = t(name);
    Bf16Matrix m;
    m.rows = v.shape.at(0);
    m.cols = v.shape.size() > 1 ? v.shape[1] : 1;
    if (reinterpret_cast<uintptr_t>(v.data.data()) % alignof(uint16_t) == 0) {
      m.data = reinterpret_cast<const uint16_t*>(v.data.data());
    } else {
      m.owned = std::make_shared<std::vector<uint16_t>>(v.elements());
      std::memcpy(m.owned->data(), v.data.data(), v.data.size());
      m.data = m.owned->data();
    }
    return m;
  }
  Fp8Weight fp8_view(const std::string& p) const {
    const auto& w = t(p + ".weight");
    const auto& s = t(p + ".scale");
    return {reinterpret_cast<const uint8_t*>(w.data.data()), reinterpret_cast<const uint8_t*>(s.data.data()),
            int(w.shape[0]), int(w.shape[1])};
  }
  // A weight the FP8 GEMM runs on, with its map of the blocks the fast decoder cannot take.
  Fp8Weight fp8(const std::string& p) const {
    Fp8Weight w = fp8_view(p);
    w.table_blocks = fp8_table_blocks(w);
    return w;
  }
  Fp4Weight fp4(const std::string& p) const {
    const auto& w = t(p + ".weight");
    const auto& s = t(p + ".scale");
    return {reinterpret_cast<const uint8_t*>(w.data.data()), reinterpret_cast<const uint8_t*>(s.data.data()),
            int(w.shape[0]), int(w.shape[1]) * 2};
  }
  HcParams hc(const std::string& p) const { return {f32(p + "_fn"), f32(p + "_scale"), f32(p + "_base")}; }

  CompressorWeights compressor(const std::string& p, int ratio, int head_dim, bool rotate) const {
    CompressorWeights w;
    w.ratio = ratio;
    w.head_dim = head_dim;
    w.overlap = ratio == 4;
    w.rotate = rotate;
    w.ape = f32(p + "ape");
    w.wkv = bf16(p + "wkv.weight");
    w.wgate = bf16(p + "wgate.weight");
    w.norm = f32(p + "norm.weight");
    return w;
  }

  BlockWeights block(int id) const {
    const std::string p = c.layer_prefix(id), a = p + "attn.", f = p + "ffn.";
    BlockWeights b;
    b.id = id;
    b.hc_attn = hc(p + "hc_attn");
    b.hc_ffn = hc(p + "hc_ffn");
    b.attn_norm = f32(p + "attn_norm.weight");
    b.ffn_norm = f32(p + "ffn_norm.weight");
    auto& at = b.attn;
    at.sink = f32(a + "attn_sink");
    at.wq_a = fp8(a + "wq_a");
    at.wq_b = fp8(a + "wq_b");
    at.wkv = fp8(a + "wkv");
    at.wo_b = fp8(a + "wo_b");
    at.q_norm = f32(a + "q_norm.weight");
    at.kv_norm = f32(a + "kv_norm.weight");
    // e4m3 value x power-of-two scale: exact in bf16, which the BF16 GEMM reads at half the bytes
    // of fp32.
    const std::vector<float> wo_a = dequantize_fp8(fp8_view(a + "wo_a"));
    at.wo_a.resize(wo_a.size());
    for (std::size_t i = 0; i < wo_a.size(); ++i) at.wo_a[i] = float_to_bf16_bits(wo_a[i]);
    const int ratio = c.ratio(id);
    if (ratio > 0) at.compressor = compressor(a + "compressor.", ratio, c.head_dim, false);
    if (ratio == 4)
      at.indexer = IndexerWeights{fp8(a + "indexer.wq_b"), bf16(a + "indexer.weights_proj.weight"),
                                  compressor(a + "indexer.compressor.", 4, c.index_dim, true)};
    auto& m = b.moe;
    m.gate = bf16(f + "gate.weight");
    if (c.hash_routed(id)) {
      const auto& v = t(f + "gate.tid2eid");
      m.tid2eid.resize(v.elements());
      for (int64_t i = 0; i < v.elements(); ++i) {
        if (v.dtype == DType::I64) {
          int64_t e;
          std::memcpy(&e, v.data.data() + 8 * i, 8);
          m.tid2eid[i] = int32_t(e);
        } else {
          std::memcpy(&m.tid2eid[i], v.data.data() + 4 * i, 4);
        }
      }
    } else {
      m.bias = f32(f + "gate.bias");
    }
    for (int e = 0; e < c.n_experts; ++e) {
      const std::string ep = f + "experts." + std::to_string(e) + ".";
      if (!ck.has(ep + "w1.weight")) continue;  // not in this process's expert shard
      m.experts[e] = {fp4(ep + "w1"), fp4(ep + "w2"), fp4(ep + "w3")};
    }
    m.shared = {fp8(f + "shared_experts.w1"), fp8(f + "shared_experts.w2"), fp8(f + "shared_experts.w3")};
    return b;
  }
};

}  // namespace

ModelWeights ModelWeights::load(const Checkpoint& ck) {
  Loader l{ck};
  const auto& c = ck.config();
  const auto& sel = ck.selection();
  ModelWeights w;
  if (ck.has("embed.weight")) w.embed = l.bf16("embed.weight");
  if (sel.head) {
    w.head = l.bf16("head.weight");
    w.norm = l.f32("norm.weight");
    w.hc_head = l.hc("hc_head");
  }
  w.layer_begin = sel.layer_begin;
  const int end = sel.layer_end < 0 ? c.n_layers : sel.layer_end;
  for (int id = sel.layer_begin; id < end; ++id) w.layers.push_back(l.block(id));
  if (sel.mtp) {
    if (!w.head && c.n_mtp > 0) w.head = l.bf16("head.weight");  // MTP shares the main head
    for (int j = 0; j < c.n_mtp; ++j) {
      const int id = c.n_layers + j;
      const std::string p = c.layer_prefix(id);
      MtpWeights m;
      m.block = l.block(id);
      m.e_proj = l.fp8(p + "e_proj");
      m.h_proj = l.fp8(p + "h_proj");
      m.enorm = l.f32(p + "enorm.weight");
      m.hnorm = l.f32(p + "hnorm.weight");
      m.norm = l.f32(p + "norm.weight");
      m.hc_head = l.hc(p + "hc_head");
      w.mtp.push_back(std::move(m));
    }
  }
  return w;
}

}  // namespace flashline

#include "stages/transformer.h"

#include <fmt/format.h>

#include "base/input_error.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/rms_norm.h"
#include "stages/attention.h"
#include "stages/mhc.h"

namespace flashline {
namespace {

RopeParams plain_rope(const ModelConfig& c) { return {c.rope_dim, c.rope_theta, 0, 1.0, c.beta_fast, c.beta_slow}; }
RopeParams compressed_rope(const ModelConfig& c) {
  return {c.rope_dim, c.compress_rope_theta, c.rope_orig_len, c.rope_factor, c.beta_fast, c.beta_slow};
}

}  // namespace

Transformer::Transformer(const Checkpoint& ck, Numerics numerics, ExpertExchange& exchange, ExpertRoutes placement)
    : config_(ck.config()),
      weights_(ModelWeights::load(ck)),
      rope_plain_(plain_rope(config_)),
      rope_compressed_(compressed_rope(config_)),
      ctx_{config_, numerics, rope_plain_, rope_compressed_},
      exchange_(exchange),
      placement_(std::move(placement)) {
  if (int(placement_.owner.size()) != config_.n_experts)
    throw InputError(fmt::format("expert placement covers {} experts, the model has {}", placement_.owner.size(),
                                 config_.n_experts));
}

RequestState Transformer::new_state() const {
  return RequestState::fresh(config_, weights_.layer_begin, weights_.layer_begin + int(weights_.layers.size()));
}

RequestState Transformer::new_mtp_state() const {
  return RequestState::fresh(config_, config_.n_layers, config_.n_layers + config_.n_mtp);
}

std::vector<float> Transformer::embed(const StepBatch& batch, Trace* trace) const {
  if (!weights_.embed) throw std::logic_error("embed: this process does not hold the embedding");
  const auto& c = config_;
  std::vector<float> X(std::size_t(batch.rows()) * c.hc * c.dim);
  for (int r = 0; r < batch.rows(); ++r) {
    const int id = batch.ids[r];
    if (id < 0 || id >= c.vocab) throw InputError(fmt::format("token id {} outside the vocabulary 0..{}", id, c.vocab - 1));
    const uint16_t* e = weights_.embed->row(id);
    for (int j = 0; j < c.hc; ++j)
      for (int d = 0; d < c.dim; ++d) X[(std::size_t(r) * c.hc + j) * c.dim + d] = bf16_to_float(e[d]);
  }
  if (trace) {
    trace->embed.resize(std::size_t(batch.rows()) * c.dim);
    for (int r = 0; r < batch.rows(); ++r)
      std::copy_n(&X[std::size_t(r) * c.hc * c.dim], c.dim, &trace->embed[std::size_t(r) * c.dim]);
  }
  return X;
}

void Transformer::run_block(const BlockWeights& bw, const StepBatch& batch, std::vector<float>& X, Trace* trace) {
  const auto& c = config_;
  const Numerics num = ctx_.numerics;
  const int R = batch.rows();
  const HcShape s{R, c.hc, c.dim};
  std::vector<float> y(std::size_t(R) * c.dim), sub(y.size()), X2(X.size());
  HcWeights hw;

  hc_pre(X.data(), s, bw.hc_attn, c, y.data(), hw, num);
  rms_norm_rows(y.data(), R, c.dim, bw.attn_norm.data(), c.norm_eps, y.data(), num);
  attention_forward(bw, batch, y.data(), sub.data(), ctx_, trace);
  hc_post(sub.data(), X.data(), s, hw, X2.data(), num);
  if (trace) trace->hc_after_attn[bw.id] = X2;

  hc_pre(X2.data(), s, bw.hc_ffn, c, y.data(), hw, num);
  rms_norm_rows(y.data(), R, c.dim, bw.ffn_norm.data(), c.norm_eps, y.data(), num);
  moe_forward(bw, batch, y.data(), sub.data(), ctx_, exchange_, placement_, trace);
  hc_post(sub.data(), X2.data(), s, hw, X.data(), num);
  if (trace) trace->hc_after_block[bw.id] = X;
}

void Transformer::run_layers(int begin, int end, const StepBatch& batch, std::vector<float>& X, Trace* trace) {
  for (int id = begin; id < end; ++id) run_block(weights_.layer(id), batch, X, trace);
}

std::vector<float> Transformer::head_logits(const std::vector<float>& X, const std::vector<int>& rows,
                                            const HcParams& hc, const std::vector<float>& norm, Trace* trace) const {
  const auto& c = config_;
  const Numerics num = ctx_.numerics;
  const int R = int(rows.size());
  const std::size_t stride = std::size_t(c.hc) * c.dim;
  std::vector<float> sel(R * stride), y(std::size_t(R) * c.dim), out(std::size_t(R) * c.vocab);
  for (int i = 0; i < R; ++i) std::copy_n(&X[rows[i] * stride], stride, &sel[i * stride]);
  hc_head(sel.data(), {R, c.hc, c.dim}, hc, c, y.data(), num);
  rms_norm_rows(y.data(), R, c.dim, norm.data(), c.norm_eps, y.data(), num);
  if (trace) trace->final_norm_out = y;
  gemm_f32(y.data(), R, c.dim, weights_.head->data, c.vocab, out.data(), num);
  return out;
}

std::vector<float> Transformer::logits(const std::vector<float>& X, const std::vector<int>& rows, Trace* trace) const {
  if (weights_.norm.empty()) throw std::logic_error("logits: this process does not hold the head");
  return head_logits(X, rows, weights_.hc_head, weights_.norm, trace);
}

std::vector<float> Transformer::mtp_logits(const std::vector<float>& h, const StepBatch& batch, int k,
                                           std::vector<float>* out_stream) {
  const auto& c = config_;
  const Numerics num = ctx_.numerics;
  const MtpWeights& m = weights_.mtp.at(k);
  const int R = batch.rows();
  std::vector<float> e(std::size_t(R) * c.dim), hn(h.size());
  for (int r = 0; r < R; ++r) {
    const uint16_t* row = weights_.embed->row(batch.ids[r]);
    for (int d = 0; d < c.dim; ++d) e[std::size_t(r) * c.dim + d] = bf16_to_float(row[d]);
  }
  rms_norm_rows(e.data(), R, c.dim, m.enorm.data(), c.norm_eps, e.data(), num);
  rms_norm_rows(h.data(), R * c.hc, c.dim, m.hnorm.data(), c.norm_eps, hn.data(), num);
  std::vector<float> pe(e.size()), ph(hn.size());
  gemm_fp8(quantize_rows(e.data(), R, c.dim), m.e_proj, pe.data(), num);
  gemm_fp8(quantize_rows(hn.data(), R * c.hc, c.dim), m.h_proj, ph.data(), num);
  std::vector<float> X(hn.size());
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < c.hc; ++j)
      for (int d = 0; d < c.dim; ++d) {
        const std::size_t i = (std::size_t(r) * c.hc + j) * c.dim + d;
        X[i] = bf16_round(pe[std::size_t(r) * c.dim + d] + ph[i]);
      }
  run_block(m.block, batch, X, nullptr);
  std::vector<int> rows(R);
  for (int r = 0; r < R; ++r) rows[r] = r;
  auto logits = head_logits(X, rows, m.hc_head, m.norm, nullptr);
  if (out_stream) *out_stream = std::move(X);
  return logits;
}

}  // namespace flashline

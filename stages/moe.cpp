#include "stages/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <numeric>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/topk.h"

namespace flashline {
namespace {

// A dispatched token row: where it came from, which expert, its routing weight, then the row.
struct ItemHeader {
  int32_t row;
  int32_t slot;
  int32_t expert;
  float weight;
};

template <typename T>
void append(ByteBuffer& b, const T* p, std::size_t n) {
  const auto* bytes = reinterpret_cast<const std::byte*>(p);
  b.insert(b.end(), bytes, bytes + n * sizeof(T));
}

// SwiGLU with clamp: h = w * silu(min(g, L)) * clamp(u, -L, L) -> bf16 -> down projection.
template <typename Weight>
std::vector<float> swiglu(const Weight& w1, const Weight& w2, const Weight& w3, const float* x, int rows,
                          const float* weight, const LayerContext& ctx) {
  const ModelConfig& c = ctx.config;
  const Numerics num = ctx.numerics;
  const int inter = w1.n;
  const QuantizedRows xq = quantize_rows(x, rows, c.dim);
  std::vector<float> g(std::size_t(rows) * inter), u(g.size()), y(std::size_t(rows) * c.dim);
  if constexpr (std::is_same_v<Weight, Fp4Weight>) {
    gemm_fp4(xq, w1, g.data(), num);
    gemm_fp4(xq, w3, u.data(), num);
  } else {
    gemm_fp8(xq, w1, g.data(), num);
    gemm_fp8(xq, w3, u.data(), num);
  }
  const float lim = c.swiglu_limit;
  for (int r = 0; r < rows; ++r)
    for (int i = 0; i < inter; ++i) {
      const std::size_t k = std::size_t(r) * inter + i;
      float gv = g[k], uv = u[k];
      if (lim > 0) {
        uv = std::clamp(uv, -lim, lim);
        gv = std::min(gv, lim);
      }
      float h = silu_f(gv, num) * uv;
      if (weight) h = weight[r] * h;
      g[k] = bf16_round(h);
    }
  const QuantizedRows hq = quantize_rows(g.data(), rows, inter);
  if constexpr (std::is_same_v<Weight, Fp4Weight>)
    gemm_fp4(hq, w2, y.data(), num);
  else
    gemm_fp8(hq, w2, y.data(), num);
  return y;
}

}  // namespace

std::vector<int> ExpertRoutes::choose(const std::vector<std::vector<int>>& lanes, int own_lane, int n_experts) {
  std::vector<int> owner(n_experts, -1);
  for (int j = int(lanes.size()) - 1; j >= 0; --j)
    for (int e : lanes[j])
      if (e >= 0 && e < n_experts) owner[e] = j;
  if (own_lane >= 0 && own_lane < int(lanes.size()))
    for (int e : lanes[own_lane])
      if (e >= 0 && e < n_experts) owner[e] = own_lane;
  return owner;
}

Routing route(const MoeWeights& w, bool hash, const int32_t* ids, const float* x, int rows, const LayerContext& ctx) {
  const ModelConfig& c = ctx.config;
  const Numerics num = ctx.numerics;
  const int E = c.n_experts, K = c.topk_experts;
  std::vector<float> scores(std::size_t(rows) * E);
  gemm_f32(x, rows, c.dim, w.gate.data, E, scores.data(), num);
  for (int r = 0; r < rows; ++r) {
    float* s = &scores[std::size_t(r) * E];
    if (c.score_func == "softmax") {
      float mx = *std::max_element(s, s + E);
      double total = 0.0;
      std::vector<double> e(E);
      for (int i = 0; i < E; ++i) total += (e[i] = std::exp(double(s[i]) - double(mx)));
      for (int i = 0; i < E; ++i) s[i] = float(e[i] / total);
    } else if (c.score_func == "sigmoid") {
      for (int i = 0; i < E; ++i) s[i] = sigmoid_f(s[i], num);
    } else {
      for (int i = 0; i < E; ++i) s[i] = sqrt_f(softplus_f(s[i], num), num);
    }
  }
  Routing out;
  out.k = K;
  out.experts.resize(std::size_t(rows) * K);
  out.weights.resize(std::size_t(rows) * K);
  std::vector<float> biased(E);
  for (int r = 0; r < rows; ++r) {
    const float* s = &scores[std::size_t(r) * E];
    int32_t* top = &out.experts[std::size_t(r) * K];
    if (hash) {
      std::copy_n(&w.tid2eid[std::size_t(ids[r]) * K], K, top);
    } else {
      for (int i = 0; i < E; ++i) biased[i] = s[i] + w.bias[i];
      auto t = topk_desc(biased.data(), E, K);
      std::copy(t.begin(), t.end(), top);
    }
    float* wt = &out.weights[std::size_t(r) * K];
    for (int j = 0; j < K; ++j) wt[j] = s[top[j]];
    if (c.score_func != "softmax") {
      const float total = sum(wt, K, num);
      for (int j = 0; j < K; ++j) wt[j] = wt[j] / total;
    }
    for (int j = 0; j < K; ++j) wt[j] = wt[j] * c.route_scale;
  }
  return out;
}

void moe_forward(const BlockWeights& bw, const StepBatch& batch, const float* x, float* out,
                 const LayerContext& ctx, ExpertExchange& exchange, const ExpertRoutes& placement,
                 Trace* trace) {
  const ModelConfig& c = ctx.config;
  const int R = batch.rows(), D = c.dim;
  const MoeWeights& w = bw.moe;
  const Routing rt = route(w, c.hash_routed(bw.id), batch.ids.data(), x, R, ctx);
  if (trace) {
    trace->router_idx[bw.id] = rt.experts;
    trace->router_w[bw.id] = rt.weights;
  }

  // dispatch: one record per (row, slot) to the lane owning the expert
  const int lanes = exchange.size();
  std::vector<ByteBuffer> send(lanes);
  std::vector<std::vector<std::pair<int, int>>> sent(lanes);  // (row, slot) in send order
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < rt.k; ++j) {
      const int e = rt.experts[std::size_t(r) * rt.k + j];
      const int dst = placement.owner_of(bw.id, e);
      ItemHeader h{r, j, e, rt.weights[std::size_t(r) * rt.k + j]};
      append(send[dst], &h, 1);
      append(send[dst], x + std::size_t(r) * D, D);
      sent[dst].emplace_back(r, j);
    }
  const std::vector<ByteBuffer> recv = exchange.all_to_all(std::move(send));

  // local experts: gather received rows per expert, run each expert once over its rows
  const std::size_t rec = sizeof(ItemHeader) + sizeof(float) * D;
  struct Item {
    int src;
    std::size_t index;  // position in the source's message
    ItemHeader h;
    const float* row;
  };
  std::vector<Item> items;
  for (int src = 0; src < lanes; ++src) {
    if (recv[src].size() % rec) throw std::runtime_error(fmt::format("expert dispatch: malformed message from lane {}", src));
    for (std::size_t i = 0; i < recv[src].size() / rec; ++i) {
      Item it{src, i, {}, reinterpret_cast<const float*>(recv[src].data() + i * rec + sizeof(ItemHeader))};
      std::memcpy(&it.h, recv[src].data() + i * rec, sizeof(ItemHeader));
      items.push_back(it);
    }
  }
  std::vector<ByteBuffer> reply(lanes);
  for (int src = 0; src < lanes; ++src) reply[src].resize(recv[src].size() / rec * sizeof(float) * D);
  std::vector<std::size_t> order(items.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return items[a].h.expert < items[b].h.expert; });
  for (std::size_t i0 = 0; i0 < order.size();) {
    std::size_t i1 = i0;
    const int e = items[order[i0]].h.expert;
    while (i1 < order.size() && items[order[i1]].h.expert == e) ++i1;
    auto ex = w.experts.find(e);
    if (ex == w.experts.end())
      throw std::runtime_error(fmt::format("layer {}: expert {} dispatched to lane {} which does not hold it", bw.id, e,
                                           exchange.rank()));
    const int n = int(i1 - i0);
    std::vector<float> xs(std::size_t(n) * D), ws(n);
    for (int i = 0; i < n; ++i) {
      const Item& it = items[order[i0 + i]];
      std::copy(it.row, it.row + D, &xs[std::size_t(i) * D]);
      ws[i] = it.h.weight;
    }
    auto ys = swiglu(ex->second.w1, ex->second.w2, ex->second.w3, xs.data(), n, ws.data(), ctx);
    for (int i = 0; i < n; ++i) {
      const Item& it = items[order[i0 + i]];
      std::memcpy(reply[it.src].data() + it.index * sizeof(float) * D, &ys[std::size_t(i) * D], sizeof(float) * D);
    }
    i0 = i1;
  }
  const std::vector<ByteBuffer> back = exchange.all_to_all(std::move(reply));

  // combine: per row, expert outputs added in increasing expert id, then the shared expert
  std::vector<const float*> slot_out(std::size_t(R) * rt.k);
  for (int dst = 0; dst < lanes; ++dst) {
    if (back[dst].size() != sent[dst].size() * sizeof(float) * D)
      throw std::runtime_error(fmt::format("expert combine: lane {} returned {} bytes, expected {}", dst,
                                           back[dst].size(), sent[dst].size() * sizeof(float) * D));
    for (std::size_t i = 0; i < sent[dst].size(); ++i)
      slot_out[std::size_t(sent[dst][i].first) * rt.k + sent[dst][i].second] =
          reinterpret_cast<const float*>(back[dst].data() + i * sizeof(float) * D);
  }
  const auto shared = swiglu(w.shared.w1, w.shared.w2, w.shared.w3, x, R, nullptr, ctx);
  std::vector<int> slots(rt.k);
  for (int r = 0; r < R; ++r) {
    const int32_t* ex = &rt.experts[std::size_t(r) * rt.k];
    std::iota(slots.begin(), slots.end(), 0);
    std::stable_sort(slots.begin(), slots.end(), [&](int a, int b) { return ex[a] < ex[b]; });
    float* y = out + std::size_t(r) * D;
    std::fill(y, y + D, 0.0f);
    for (int j : slots) {
      const float* o = slot_out[std::size_t(r) * rt.k + j];
      for (int d = 0; d < D; ++d) y[d] = y[d] + o[d];
    }
    for (int d = 0; d < D; ++d) y[d] = bf16_round(y[d] + shared[std::size_t(r) * D + d]);
  }
}

}  // namespace flashline

#include "stages/moe.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fmt/format.h>
#include <numeric>
#include <string>

#include "kernels/cpu/gemm.h"
#include "kernels/cpu/reduce.h"
#include "kernels/cpu/threads.h"
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

// Packed message buffers of the exchange, kept across layers and steps: grown, never shrunk, so
// a steady state neither allocates nor touches fresh pages. One set per thread that runs layers.
struct ExchangeBuffers {
  ByteBuffer send, recv, reply, back;
};
ExchangeBuffers& exchange_buffers() {
  thread_local ExchangeBuffers b;
  return b;
}
void grow(ByteBuffer& b, std::size_t bytes) {
  if (b.size() < bytes) b.resize(bytes);
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

  // dispatch: one record per (row, slot) to the lane owning the expert, packed by destination
  // lane straight into one send buffer
  const int lanes = exchange.size(), me = exchange.rank();
  const std::size_t row_bytes = sizeof(float) * D, rec = sizeof(ItemHeader) + row_bytes;
  ExchangeBuffers& buf = exchange_buffers();
  std::vector<int> dst_of(std::size_t(R) * rt.k);
  std::vector<std::size_t> items_to(lanes, 0);
  for (std::size_t i = 0; i < dst_of.size(); ++i) {
    const int dst = dst_of[i] = placement.owner_of(bw.id, rt.experts[i]);
    if (dst < 0 || dst >= lanes)
      throw std::runtime_error(fmt::format("layer {}: no lane of {} holds expert {}", bw.id, lanes, rt.experts[i]));
    items_to[dst]++;
  }
  std::vector<std::size_t> counts(lanes);
  for (int l = 0; l < lanes; ++l) counts[l] = items_to[l] * rec;
  const PackedLayout dispatch = PackedLayout::consecutive(counts);
  grow(buf.send, dispatch.total());
  std::vector<std::size_t> cursor(lanes, 0), sent_index(dst_of.size());  // (row, slot) -> index in its lane's part
  for (int r = 0; r < R; ++r)
    for (int j = 0; j < rt.k; ++j) {
      const std::size_t rs = std::size_t(r) * rt.k + j;
      const int dst = dst_of[rs];
      const ItemHeader h{r, j, rt.experts[rs], rt.weights[rs]};
      std::byte* at = buf.send.data() + dispatch.offsets[dst] + cursor[dst] * rec;
      std::memcpy(at, &h, sizeof h);
      std::memcpy(at + sizeof h, x + std::size_t(r) * D, row_bytes);
      sent_index[rs] = cursor[dst]++;
    }
  const ReceivedParts recv = exchange.exchange(buf.send.data(), dispatch, buf.recv);

  // local experts: gather received rows per expert, run each expert once over its rows
  struct Item {
    int src;
    std::size_t index;  // position in the source's part
    ItemHeader h;
    const float* row;
  };
  std::vector<Item> items;
  std::vector<std::size_t> reply_counts(lanes);
  for (int src = 0; src < lanes; ++src) {
    const std::size_t bytes = recv.size(src);
    if (bytes % rec) throw std::runtime_error(fmt::format("expert dispatch: malformed message from lane {}", src));
    reply_counts[src] = bytes / rec * row_bytes;
    for (std::size_t i = 0; i < bytes / rec; ++i) {
      const std::byte* at = recv.data(src) + i * rec;
      Item it{src, i, {}, reinterpret_cast<const float*>(at + sizeof(ItemHeader))};
      std::memcpy(&it.h, at, sizeof(ItemHeader));
      items.push_back(it);
    }
  }
  // Expert outputs go straight into the packed reply, at the position of their request.
  const PackedLayout reply = PackedLayout::consecutive(reply_counts);
  grow(buf.reply, reply.total());
  std::vector<std::size_t> order(items.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](auto a, auto b) { return items[a].h.expert < items[b].h.expert; });
  struct Group {
    const ExpertWeights* weights;
    std::size_t i0, i1;  // its items: order[i0 .. i1)
  };
  std::vector<Group> groups;
  for (std::size_t i0 = 0; i0 < order.size();) {
    std::size_t i1 = i0;
    const int e = items[order[i0]].h.expert;
    while (i1 < order.size() && items[order[i1]].h.expert == e) ++i1;
    auto ex = w.experts.find(e);
    if (ex == w.experts.end())
      throw std::runtime_error(fmt::format("layer {}: expert {} dispatched to lane {} which does not hold it", bw.id, e,
                                           me));
    groups.push_back({&ex->second, i0, i1});
    i0 = i1;
  }
  auto run_group = [&](const Group& g) {
    const int n = int(g.i1 - g.i0);
    std::vector<float> xs(std::size_t(n) * D), ws(n);
    for (int i = 0; i < n; ++i) {
      const Item& it = items[order[g.i0 + i]];
      std::copy(it.row, it.row + D, &xs[std::size_t(i) * D]);
      ws[i] = it.h.weight;
    }
    auto ys = swiglu(g.weights->w1, g.weights->w2, g.weights->w3, xs.data(), n, ws.data(), ctx);
    for (int i = 0; i < n; ++i) {
      const Item& it = items[order[g.i0 + i]];
      std::memcpy(buf.reply.data() + reply.offsets[it.src] + it.index * row_bytes, &ys[std::size_t(i) * D], row_bytes);
    }
  };
  // Experts are independent: with at least two per thread they are spread over the threads, each
  // expert's GEMMs on one thread (a decode step's experts are small, and a region per GEMM costs
  // more than it gains). An expert holding more than a thread's share of the rows, and the
  // experts of a step with fewer groups, run one after another with threaded GEMMs. Results are
  // the same either way (the kernels do not depend on the thread count).
  const int threads = kernel_threads();
  std::vector<const Group*> spread;
  for (const Group& g : groups) {
    if (threads > 1 && (g.i1 - g.i0) * threads <= order.size())
      spread.push_back(&g);
    else
      run_group(g);
  }
  if (threads > 1 && int(spread.size()) >= 2 * threads) {
    std::string error;
#pragma omp parallel for num_threads(threads) schedule(dynamic, 1)
    for (std::size_t gi = 0; gi < spread.size(); ++gi) {
      try {
        run_group(*spread[gi]);
      } catch (const std::exception& e) {  // exceptions must not leave an OpenMP region
#pragma omp critical
        error = e.what();
      }
    }
    if (!error.empty()) throw std::runtime_error(error);
  } else {
    for (const Group* g : spread) run_group(*g);
  }
  // combine: every lane knows what comes back (one row per item it sent)
  std::vector<std::size_t> expected(lanes);
  for (int l = 0; l < lanes; ++l) expected[l] = items_to[l] * row_bytes;
  const ReceivedParts back = exchange.exchange(buf.reply.data(), reply, buf.back, &expected);
  for (int dst = 0; dst < lanes; ++dst)
    if (back.size(dst) != expected[dst])
      throw std::runtime_error(fmt::format("expert combine: lane {} returned {} bytes, expected {}", dst, back.size(dst),
                                           expected[dst]));
  std::vector<const float*> slot_out(dst_of.size());
  for (std::size_t rs = 0; rs < dst_of.size(); ++rs)
    slot_out[rs] = reinterpret_cast<const float*>(back.data(dst_of[rs]) + sent_index[rs] * row_bytes);

  // per row, expert outputs added in increasing expert id, then the shared expert
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

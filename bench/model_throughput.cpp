// Single-process prefill and decode throughput of a model directory, with decode also given as
// a fraction of the memory roofline (weight bytes a decode token must read / measured read
// bandwidth).
#include <fmt/format.h>
#include <omp.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <set>

#include "bench/kernel_bench.h"
#include "bench/latency_stats.h"
#include "bench/memory_bandwidth.h"
#include "comms/expert_exchange.h"
#include "model/release_layout.h"
#include "stages/transformer.h"

namespace flashline {
namespace {

// Weight bytes a decode step reads, in two parts: every tensor of the main layers and the head
// except routed experts, plus one embedding row per token (`dense`), and the bytes of one routed
// expert of each layer (`per_expert`: a step reads that for every distinct expert its tokens
// route to).
struct DecodeBytes {
  double dense = 0;
  std::vector<double> per_expert;  // [layer]
  // Batch 1: top-k experts per layer.
  double one_token(const ModelConfig& c) const {
    double b = dense;
    for (double e : per_expert) b += e * c.topk_experts;
    return b;
  }
};

DecodeBytes decode_bytes(const ModelConfig& c) {
  DecodeBytes d;
  d.per_expert.assign(c.n_layers, 0.0);
  for (const auto& t : release_tensors(c)) {
    if (t.layer >= c.n_layers) continue;  // MTP is not run by plain decode
    if (t.group == TensorGroup::Embedding || t.name.ends_with("tid2eid")) {
      d.dense += double(t.bytes()) / c.vocab;
    } else if (t.group == TensorGroup::RoutedExpert) {
      d.per_expert[t.layer] += double(t.bytes()) / c.n_experts;
    } else {
      d.dense += double(t.bytes());
    }
  }
  return d;
}

// Weight multiply-adds of one token (2 flops each): every matrix of the main layers and the head
// once, routed experts top-k of n; an FP4 byte (I8) holds two weights. Scales, norms, biases and
// lookups (embedding, tid2eid) are not matrix work; attention scores are left out (small here).
double weight_flops_per_token(const ModelConfig& c) {
  double macs = 0;
  for (const auto& t : release_tensors(c)) {
    if (t.layer >= c.n_layers || t.shape.size() != 2) continue;
    if (t.group == TensorGroup::Embedding || t.name.ends_with("tid2eid") || t.dtype == DType::F8_E8M0 ||
        t.name.ends_with("scale"))
      continue;
    double m = double(t.elements()) * (t.dtype == DType::I8 ? 2 : 1);
    if (t.group == TensorGroup::RoutedExpert) m *= double(c.topk_experts) / c.n_experts;
    macs += m;
  }
  return 2 * macs;
}

struct Spread {
  double median, min, max;
};
Spread spread(const std::vector<double>& v) {
  const auto [lo, hi] = std::minmax_element(v.begin(), v.end());
  return {percentile(v, 50), *lo, *hi};
}

int run(int argc, char** argv) {
  CLI::App app{"Single-process prefill and decode throughput (fast numerics unless --numerics exact)"};
  std::string model, numerics = "fast";
  int prompt_len = 128, decode_steps = 32, batch = 1, rounds = 5;
  app.add_option("--model", model, "Model directory")->required();
  const auto positive = CLI::Range(1, 1 << 20);
  app.add_option("--prompt-len", prompt_len, "Prefill tokens")->capture_default_str()->check(positive);
  app.add_option("--decode-steps", decode_steps, "Decode steps per round")->capture_default_str()->check(positive);
  app.add_option("--rounds", rounds, "Rounds of decode steps, with the read bandwidth measured between them")
      ->capture_default_str()
      ->check(positive);
  app.add_option("--batch", batch, "Concurrent requests in each decode step")->capture_default_str()->check(positive);
  app.add_option("--numerics", numerics, "fast or exact")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  const Numerics num = numerics == "exact" ? Numerics::Exact : Numerics::Fast;

  Checkpoint ck = Checkpoint::open(model);
  LoopbackExpertExchange ex;
  Transformer tf(ck, num, ex, ExpertRoutes::single(ck.config().n_experts));
  const auto& c = tf.config();
  using clock = std::chrono::steady_clock;
  auto secs = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };

  std::vector<RequestState> states;
  std::vector<int32_t> last(batch);
  double prefill_s = 0;
  states.reserve(batch);  // the batches below hold pointers into it
  for (int r = 0; r < batch; ++r) {
    std::vector<int32_t> ids(prompt_len);
    for (int i = 0; i < prompt_len; ++i) ids[i] = int32_t((1103515245LL * (i + 1 + 1000 * r) + 12345) % 2147483648LL % c.vocab);
    states.push_back(tf.new_state());
    auto t0 = clock::now();
    StepBatch b;
    b.add(ids, 0, &states[r]);
    auto X = tf.embed(b);
    tf.run_layers(0, c.n_layers, b, X);
    auto l = tf.logits(X, {prompt_len - 1});
    prefill_s += secs(t0, clock::now());
    last[r] = int32_t(std::max_element(l.begin(), l.end()) - l.begin());
  }
  auto decode_step = [&](int pos, Trace* trace) {
    StepBatch b;
    for (int r = 0; r < batch; ++r) b.add({last[r]}, pos, &states[r]);
    auto X = tf.embed(b);
    tf.run_layers(0, c.n_layers, b, X, trace);
    if (trace) return;
    std::vector<int> rows(batch);
    for (int r = 0; r < batch; ++r) rows[r] = r;
    auto l = tf.logits(X, rows);
    for (int r = 0; r < batch; ++r)
      last[r] = int32_t(std::max_element(l.begin() + std::ptrdiff_t(r) * c.vocab, l.begin() + std::ptrdiff_t(r + 1) * c.vocab) -
                        (l.begin() + std::ptrdiff_t(r) * c.vocab));
  };
  // Rounds of decode steps with the read bandwidth measured between them: each round is compared
  // with the mean of the bandwidths just before and just after it, so a drifting host moves both
  // sides of a ratio together.
  const ReadBandwidthProbe probe;
  std::vector<double> bw_at{probe.measure(3)}, round_s;
  int pos = prompt_len;
  for (int round = 0; round < rounds; ++round) {
    auto t0 = clock::now();
    for (int s = 0; s < decode_steps; ++s) decode_step(pos++, nullptr);
    round_s.push_back(secs(t0, clock::now()));
    bw_at.push_back(probe.measure(3));
  }
  // The experts a step reads: routing of a few more steps of the same batch, traced (untimed).
  const DecodeBytes db = decode_bytes(c);
  constexpr int kProbeSteps = 4;
  double expert_bytes = 0;
  for (int s = 0; s < kProbeSteps; ++s) {
    Trace tr;
    decode_step(pos++, &tr);
    for (const auto& [layer, idx] : tr.router_idx)
      expert_bytes += db.per_expert[layer] * double(std::set<int32_t>(idx.begin(), idx.end()).size()) / kProbeSteps;
  }
  const double peak = fma_peak_gflops() * 1e9;
  const double bytes = db.dense + expert_bytes, bytes_one = db.one_token(c);
  std::vector<double> tps, ratio, bws;
  for (int r = 0; r < rounds; ++r) {
    const double bw = (bw_at[r] + bw_at[r + 1]) / 2, steps_per_s = decode_steps / round_s[r];
    tps.push_back(batch * steps_per_s);
    bws.push_back(bw);
    ratio.push_back(100.0 * steps_per_s / (bw / bytes));  // roofline: one pass over the weights a step reads
  }
  fmt::print("model {}: hidden {}, {} layers, {} experts (top {}), vocab {}; numerics {}, {} threads\n", model, c.dim,
             c.n_layers, c.n_experts, c.topk_experts, c.vocab, numerics, omp_get_max_threads());
  const double prefill_flops = weight_flops_per_token(c) * batch * prompt_len / prefill_s;
  fmt::print("prefill: {} x {} tokens in {:.3f} s = {:.1f} tokens/s; weight matmuls {:.2f} GFLOP/s = {:.1f}% of the "
             "measured fp32 FMA peak {:.1f} GFLOP/s\n",
             batch, prompt_len, prefill_s, batch * prompt_len / prefill_s, prefill_flops / 1e9,
             peak > 0 ? 100 * prefill_flops / peak : 0.0, peak / 1e9);
  const Spread t = spread(tps), q = spread(ratio), b = spread(bws);
  fmt::print("decode:  batch {}, {} rounds of {} steps: {:.1f} tokens/s median ({:.1f}-{:.1f}), {:.2f} ms/step\n", batch,
             rounds, decode_steps, t.median, t.min, t.max, 1e3 * batch / t.median);
  fmt::print("roofline: {:.2f} MB weights read per step ({:.2f} MB dense, {:.2f} MB of the experts the batch routes to), "
             "memory read bandwidth {:.2f} GB/s median ({:.2f}-{:.2f}) measured between the rounds; decode = {:.1f}% "
             "of roofline median ({:.1f}-{:.1f}, each round against its own bandwidth)\n",
             bytes / 1e6, db.dense / 1e6, expert_bytes / 1e6, b.median / 1e9, b.min / 1e9, b.max / 1e9, q.median, q.min,
             q.max);
  // What batching can gain at most over batch 1 when both run at the roofline.
  if (batch > 1)
    fmt::print("batch {} at the roofline reads {:.2f}x the weights of batch 1 per step: at most {:.2f}x its tokens/s\n",
               batch, bytes / bytes_one, batch * bytes_one / bytes);
  return 0;
}

}  // namespace
}  // namespace flashline

int main(int argc, char** argv) {
  try {
    return flashline::run(argc, argv);
  } catch (const std::exception& e) {
    fmt::print(stderr, "model_throughput: error: {}\n", e.what());
    return 2;
  }
}

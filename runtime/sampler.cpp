#include "runtime/sampler.h"

#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <numeric>
#include <stdexcept>

#include "base/input_error.h"
#include "runtime/counter_rng.h"

namespace flashline {

namespace {

constexpr float kGreedyTemperature = 1e-5f;

// Descending value, ties lower id: the one token order of the sampler.
template <class T>
struct Descending {
  const T* v;
  bool operator()(int32_t a, int32_t b) const { return v[a] > v[b] || (v[a] == v[b] && a < b); }
};

int32_t argmax(std::span<const float> z) {
  // The first maximum: ties go to the lower id.
  return int32_t(std::max_element(z.begin(), z.end()) - z.begin());
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// TokenCounts

void TokenCounts::add_prompt(std::span<const int32_t> ids) {
  for (int32_t id : ids) {
    if (id < 0) throw InputError(fmt::format("prompt token id {}: expected an id >= 0", id));
    const size_t word = size_t(id) / 64;
    if (word >= prompt_bits_.size()) prompt_bits_.resize(word + 1, 0);
    prompt_bits_[word] |= uint64_t(1) << (id % 64);
  }
}

void TokenCounts::add_generated(int32_t id) {
  if (id < 0) throw InputError(fmt::format("generated token id {}: expected an id >= 0", id));
  ++generated_[id];
  ++generated_total_;
}

void TokenCounts::clear() {
  prompt_bits_.clear();
  generated_.clear();
  generated_total_ = 0;
}

bool TokenCounts::in_prompt(int32_t id) const {
  if (id < 0 || size_t(id) / 64 >= prompt_bits_.size()) return false;
  return (prompt_bits_[size_t(id) / 64] >> (id % 64)) & 1;
}

int32_t TokenCounts::generated_count(int32_t id) const {
  const auto it = generated_.find(id);
  return it == generated_.end() ? 0 : it->second;
}

// ---------------------------------------------------------------------------------------------
// Parameters

void check_sampling_params(const SamplingParams& p, int32_t vocab) {
  auto bad = [](const char* field, double value, const char* expected) {
    throw InputError(
        fmt::format("sampling parameter {} = {}: expected {}", field, value, expected));
  };
  if (!std::isfinite(p.temperature) || p.temperature < 0)
    bad("temperature", p.temperature, "a finite value >= 0");
  if (!(p.top_p > 0 && p.top_p <= 1)) bad("top_p", p.top_p, "a value in (0, 1]");
  if (p.top_k < -1) bad("top_k", p.top_k, "-1 or 0 (off) or a count >= 1");
  if (!(p.min_p >= 0 && p.min_p <= 1)) bad("min_p", p.min_p, "a value in [0, 1]");
  if (!(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0))
    bad("repetition_penalty", p.repetition_penalty, "a finite value > 0");
  if (!std::isfinite(p.presence_penalty))
    bad("presence_penalty", p.presence_penalty, "a finite value");
  if (!std::isfinite(p.frequency_penalty))
    bad("frequency_penalty", p.frequency_penalty, "a finite value");
  if (p.logprobs < -1) bad("logprobs", p.logprobs, "-1 (none) or a count >= 0");
  for (size_t i = 0; i < p.logit_bias.size(); ++i) {
    const auto [id, bias] = p.logit_bias[i];
    if (id < 0 || id >= vocab)
      throw InputError(fmt::format(
          "sampling parameter logit_bias[{}]: token id {} outside the vocabulary [0, {})", i, id,
          vocab));
    if (std::isnan(bias))
      throw InputError(fmt::format(
          "sampling parameter logit_bias[{}] (token {}): bias is NaN, expected a number", i, id));
  }
}

bool is_stop_token(int32_t id, const SamplingParams& params, int32_t eos_id) {
  if (!params.ignore_eos && id == eos_id) return true;
  return std::find(params.stop_token_ids.begin(), params.stop_token_ids.end(), id) !=
         params.stop_token_ids.end();
}

void apply_penalties(std::span<float> z, const SamplingParams& params, const TokenCounts& history) {
  const int64_t vocab = int64_t(z.size());
  for (const auto& [id, bias] : params.logit_bias)
    if (id >= 0 && id < vocab) z[size_t(id)] += bias;

  if (params.repetition_penalty != 1.0f) {
    const float penalty = params.repetition_penalty;
    auto penalise = [&](int64_t id) {
      float& v = z[size_t(id)];
      v = v > 0 ? v / penalty : v * penalty;
    };
    const auto& bits = history.prompt_bits();
    for (size_t w = 0; w < bits.size(); ++w) {
      for (uint64_t word = bits[w]; word != 0; word &= word - 1) {
        const int64_t id = int64_t(w) * 64 + std::countr_zero(word);
        if (id < vocab) penalise(id);
      }
    }
    // Once per id: ids also in the prompt were penalised above.
    for (const auto& [id, count] : history.generated())
      if (count > 0 && id < vocab && !history.in_prompt(id)) penalise(id);
  }

  if (params.frequency_penalty != 0.0f || params.presence_penalty != 0.0f) {
    // Each id is touched once, so the iteration order of the map does not matter.
    for (const auto& [id, count] : history.generated())
      if (count > 0 && id < vocab)
        z[size_t(id)] -= float(count) * params.frequency_penalty + params.presence_penalty;
  }
}

// ---------------------------------------------------------------------------------------------
// Sampler

SampleResult Sampler::sample(std::span<const float> logits, const SamplingParams& params,
                             const TokenCounts& history, uint64_t seed, uint64_t position) {
  if (logits.empty() || logits.size() > size_t(std::numeric_limits<int32_t>::max()))
    throw std::invalid_argument(fmt::format(
        "Sampler::sample: logits row of {} values, expected 1 .. 2^31-1", logits.size()));
  const int32_t vocab = int32_t(logits.size());
  check_sampling_params(params, vocab);

  // NaN counts as -inf (never chosen) and +inf as the largest float, so every later step
  // works on ordered, finite-or--inf values.
  z_.resize(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) {
    const float v = logits[i];
    z_[i] = std::isnan(v) ? -std::numeric_limits<float>::infinity()
                          : std::clamp(v, -std::numeric_limits<float>::infinity(),
                                       std::numeric_limits<float>::max());
  }
  apply_penalties(z_, params, history);
  // A row with no finite logit left is taken as all-equal (uniform), the limit of equal logits.
  if (*std::max_element(z_.begin(), z_.end()) == -std::numeric_limits<float>::infinity())
    std::fill(z_.begin(), z_.end(), 0.0f);

  SampleResult r;
  if (params.temperature < kGreedyTemperature) {
    r.id = argmax(z_);
  } else {
    r.id = draw(params, CounterRng::uniform(seed, position, 0));
  }

  if (params.logprobs >= 0) {
    const double m = *std::max_element(z_.begin(), z_.end());
    double s = 0;
    for (float v : z_) s += std::exp(double(v) - m);
    const double lse = m + std::log(s);
    r.logprob = float(double(z_[size_t(r.id)]) - lse);
    const int32_t n = std::min(params.logprobs, vocab);
    if (n > 0) {
      order_.resize(size_t(vocab));
      std::iota(order_.begin(), order_.end(), 0);
      std::partial_sort(order_.begin(), order_.begin() + n, order_.end(),
                        Descending<float>{z_.data()});
      r.top.reserve(size_t(n));
      for (int32_t i = 0; i < n; ++i)
        r.top.emplace_back(order_[size_t(i)], float(double(z_[size_t(order_[size_t(i)])]) - lse));
    }
  }
  return r;
}

int32_t Sampler::draw(const SamplingParams& params, double u) {
  const int32_t vocab = int32_t(z_.size());
  const double m = *std::max_element(z_.begin(), z_.end());
  const double inv_t = 1.0 / double(params.temperature);
  const double min_p = params.min_p;
  const bool top_p_on = params.top_p < 1.0f;
  const double top_p = params.top_p;
  w_.resize(z_.size());
  auto weight = [&](int32_t id) { return std::exp((double(z_[size_t(id)]) - m) * inv_t); };

  order_.clear();
  cum_.clear();

  if (params.top_k > 0 && params.top_k < vocab) {
    // top_k by logit (ties lower id); only these k weights are ever computed.
    const int32_t k = params.top_k;
    order_.resize(size_t(vocab));
    std::iota(order_.begin(), order_.end(), 0);
    std::nth_element(order_.begin(), order_.begin() + (k - 1), order_.end(),
                     Descending<float>{z_.data()});
    order_.resize(size_t(k));
    for (int32_t id : order_) w_[size_t(id)] = weight(id);
    std::sort(order_.begin(), order_.end(), Descending<double>{w_.data()});
    double c = 0;
    for (int32_t id : order_) cum_.push_back(c += w_[size_t(id)]);
    size_t n = order_.size();
    if (top_p_on) {
      const double need = top_p * cum_.back();
      n = size_t(std::lower_bound(cum_.begin(), cum_.end(), need) - cum_.begin()) + 1;
      n = std::min(n, order_.size());
    }
    return walk(n, u, min_p);
  }

  // Every token is a candidate: weights and their total in vocabulary order. Then a counting
  // sort by the top bits of the weight (exponent and 8 mantissa bits: buckets 1/256 of a binade
  // wide, descending) groups the ids so the walk in descending order sorts only the buckets it
  // reaches, usually a handful of tokens.
  double total = 0;
  for (int32_t id = 0; id < vocab; ++id) total += (w_[size_t(id)] = weight(id));
  bucket_of_.resize(z_.size());
  bucket_start_.assign(kBuckets + 1, 0);
  for (int32_t id = 0; id < vocab; ++id) {
    const uint64_t bits = std::bit_cast<uint64_t>(w_[size_t(id)]);  // 0 < w <= 1, or 0
    const int binade = 1023 - int(bits >> 52);                      // 0 for w = 1
    const int b =
        binade >= kBinades ? kBuckets - 1 : binade * 256 + (255 - int((bits >> 44) & 255));
    bucket_of_[size_t(id)] = uint16_t(b);
    ++bucket_start_[size_t(b) + 1];
  }
  for (int b = 0; b < kBuckets; ++b) bucket_start_[size_t(b) + 1] += bucket_start_[size_t(b)];
  bucketed_.resize(z_.size());
  bucket_fill_.assign(bucket_start_.begin(), bucket_start_.end() - 1);
  for (int32_t id = 0; id < vocab; ++id)
    bucketed_[size_t(bucket_fill_[bucket_of_[size_t(id)]]++)] = id;
  next_bucket_ = 0;

  if (top_p_on) {
    const double need = top_p * total;
    size_t n = 0;
    while (n == 0) {
      const size_t from = order_.size();
      const bool more = extend_prefix();
      for (size_t r = from; r < cum_.size(); ++r)
        if (cum_[r] >= need) {
          n = r + 1;
          break;
        }
      if (n == 0 && !more) n = order_.size();  // rounding left the whole row short of `need`
    }
    return walk(n, u, min_p);
  }

  // No nucleus: the kept mass is the total of the tokens min_p keeps, in vocabulary order.
  double kept_mass = total;
  if (min_p > 0) {
    kept_mass = 0;
    for (int32_t id = 0; id < vocab; ++id)
      if (kept(id, min_p)) kept_mass += w_[size_t(id)];
  }
  const double target = u * kept_mass;
  for (size_t r = 0;; ++r) {
    if (r == order_.size() && !extend_prefix()) return order_.back();
    const int32_t id = order_[r];
    if (!kept(id, min_p)) return order_[r - 1];  // r > 0: the first token has w = 1
    if (cum_[r] > target) return id;
  }
}

bool Sampler::extend_prefix() {
  while (next_bucket_ < kBuckets &&
         bucket_start_[size_t(next_bucket_)] == bucket_start_[size_t(next_bucket_) + 1])
    ++next_bucket_;
  if (next_bucket_ == kBuckets) return false;
  const size_t from = order_.size();
  order_.insert(order_.end(), bucketed_.begin() + bucket_start_[size_t(next_bucket_)],
                bucketed_.begin() + bucket_start_[size_t(next_bucket_) + 1]);
  ++next_bucket_;
  std::sort(order_.begin() + ptrdiff_t(from), order_.end(), Descending<double>{w_.data()});
  double c = cum_.empty() ? 0.0 : cum_.back();
  for (size_t r = from; r < order_.size(); ++r) cum_.push_back(c += w_[size_t(order_[r])]);
  return true;
}

bool Sampler::kept(int32_t id, double min_p) const {
  // w of the most probable token is exp(0) = 1, so min_p * p_max is min_p in weights; a weight
  // that underflowed to 0 is never drawn.
  return w_[size_t(id)] > 0 && w_[size_t(id)] >= min_p;
}

int32_t Sampler::walk(size_t n, double u, double min_p) const {
  // min_p cuts the (descending) prefix further; the first token always stays.
  size_t n_kept = 1;
  while (n_kept < n && kept(order_[n_kept], min_p)) ++n_kept;
  const double target = u * cum_[n_kept - 1];
  for (size_t r = 0; r < n_kept; ++r)
    if (cum_[r] > target) return order_[r];
  return order_[n_kept - 1];
}

}  // namespace flashline

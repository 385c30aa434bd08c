#include "bench/latency_stats.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>

#include "base/input_error.h"

namespace flashline {

double percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
  const auto lo = static_cast<std::size_t>(std::floor(rank));
  const std::size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = rank - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

double mean_of(const std::vector<double>& values) {
  if (values.empty()) return 0;
  return std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
}

double population_std(const std::vector<double>& values) {
  if (values.empty()) return 0;
  const double m = mean_of(values);
  double sq = 0;
  for (double v : values) sq += (v - m) * (v - m);
  return std::sqrt(sq / static_cast<double>(values.size()));
}

double time_per_output_token(const RequestRecord& r) {
  if (r.output_tokens <= 1) return 0;
  return (r.latency_s - r.ttft_s) / static_cast<double>(r.output_tokens - 1);
}

std::vector<double> inter_token_latencies(const std::vector<double>& chunk_times_s) {
  std::vector<double> gaps;
  for (std::size_t i = 1; i < chunk_times_s.size(); ++i) gaps.push_back(chunk_times_s[i] - chunk_times_s[i - 1]);
  return gaps;
}

Slo parse_slo(const std::vector<std::string>& pairs) {
  Slo slo;
  for (const auto& pair : pairs) {
    const auto colon = pair.find(':');
    const std::string name = pair.substr(0, colon);
    std::optional<double>* target = name == "ttft"   ? &slo.ttft_ms
                                    : name == "tpot" ? &slo.tpot_ms
                                    : name == "e2el" ? &slo.e2el_ms
                                                     : nullptr;
    if (colon == std::string::npos || target == nullptr)
      throw InputError(fmt::format("--goodput {}: expected ttft:MS, tpot:MS or e2el:MS", pair));
    double value = 0;
    try {
      std::size_t used = 0;
      value = std::stod(pair.substr(colon + 1), &used);
      if (used != pair.size() - colon - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      throw InputError(fmt::format("--goodput {}: {} is not a number of milliseconds", pair, pair.substr(colon + 1)));
    }
    if (!(value > 0)) throw InputError(fmt::format("--goodput {}: the objective must be above 0 ms", pair));
    *target = value;
  }
  return slo;
}

const MetricSummary& BenchMetrics::summary(const std::string& metric) const {
  if (metric == "ttft") return ttft;
  if (metric == "tpot") return tpot;
  if (metric == "itl") return itl;
  if (metric == "e2el") return e2el;
  throw InputError(fmt::format("--percentile-metrics: unknown metric {} (expected ttft, tpot, itl or e2el)", metric));
}

namespace {

MetricSummary summarize(const std::vector<double>& seconds, const std::vector<double>& percentiles) {
  MetricSummary s;
  s.mean_ms = mean_of(seconds) * 1000;
  s.median_ms = percentile(seconds, 50) * 1000;
  s.std_ms = population_std(seconds) * 1000;
  for (double p : percentiles) s.percentiles_ms.emplace_back(p, percentile(seconds, p) * 1000);
  return s;
}

// Tokens finished in each whole second of the run and requests in flight at each event, from
// the token times: the peak rates vLLM reports beside the averages.
void fill_peaks(const std::vector<RequestRecord>& records, BenchMetrics& m) {
  std::map<int64_t, int64_t> tokens_per_second;
  std::vector<std::pair<double, int>> events;  // (time, +1 start / -1 end)
  for (const auto& r : records) {
    events.emplace_back(r.start_s, +1);
    events.emplace_back(r.start_s + r.latency_s, -1);
    if (!r.success) continue;
    double t = r.start_s + r.ttft_s;
    ++tokens_per_second[static_cast<int64_t>(std::floor(t))];
    for (double gap : r.itl_s) {
      t += gap;
      ++tokens_per_second[static_cast<int64_t>(std::floor(t))];
    }
  }
  for (const auto& [second, n] : tokens_per_second)
    m.max_output_tokens_per_s = std::max(m.max_output_tokens_per_s, static_cast<double>(n));
  std::sort(events.begin(), events.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second < b.second;  // ends before starts at a tie
  });
  int64_t live = 0;
  for (const auto& e : events) m.max_concurrent_requests = std::max(m.max_concurrent_requests, live += e.second);
}

}  // namespace

BenchMetrics calculate_metrics(const std::vector<RequestRecord>& records, double duration_s, const Slo& slo,
                               const std::vector<double>& percentiles) {
  BenchMetrics m;
  m.duration_s = duration_s;
  int64_t good = 0;
  for (const auto& r : records) {
    if (!r.success) {
      ++m.failed;
      continue;
    }
    ++m.completed;
    m.total_input += r.prompt_tokens;
    m.total_output += r.output_tokens;
    const double tpot = time_per_output_token(r);
    if (r.output_tokens > 1) m.tpots_s.push_back(tpot);
    m.ttfts_s.push_back(r.ttft_s);
    m.e2els_s.push_back(r.latency_s);
    m.itls_s.insert(m.itls_s.end(), r.itl_s.begin(), r.itl_s.end());
    // A request of one token has no TPOT: it counts as 0 against a TPOT objective (as vLLM).
    const bool ok = (!slo.ttft_ms || r.ttft_s * 1000 <= *slo.ttft_ms) &&
                    (!slo.tpot_ms || tpot * 1000 <= *slo.tpot_ms) &&
                    (!slo.e2el_ms || r.latency_s * 1000 <= *slo.e2el_ms);
    good += ok ? 1 : 0;
  }
  if (duration_s > 0) {
    m.request_throughput = static_cast<double>(m.completed) / duration_s;
    m.output_throughput = static_cast<double>(m.total_output) / duration_s;
    m.total_token_throughput = static_cast<double>(m.total_input + m.total_output) / duration_s;
    if (slo.any()) m.request_goodput = static_cast<double>(good) / duration_s;
  } else if (slo.any()) {
    m.request_goodput = 0.0;
  }
  m.ttft = summarize(m.ttfts_s, percentiles);
  m.tpot = summarize(m.tpots_s, percentiles);
  m.itl = summarize(m.itls_s, percentiles);
  m.e2el = summarize(m.e2els_s, percentiles);
  fill_peaks(records, m);
  return m;
}

}  // namespace flashline

#pragma once
// The statistics of a serving benchmark, defined as vLLM's `bench serve` defines them so that
// figures compare directly: percentiles interpolate linearly between order statistics (numpy's
// default), std is the population std, TPOT excludes the first token, ITL is the gap between
// streamed chunks, goodput counts requests meeting every SLO given.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace flashline {

// The p-th percentile (0..100) of `values` with linear interpolation between the closest ranks
// (numpy.percentile's default); 0 for an empty list, as vLLM reports it.
double percentile(std::vector<double> values, double p);
double mean_of(const std::vector<double>& values);             // 0 when empty
double population_std(const std::vector<double>& values);      // sqrt(mean of squared deviations)

// What one request gave, seconds from its own start unless said otherwise.
struct RequestRecord {
  bool success = false;
  std::string error;             // empty on success
  int64_t prompt_tokens = 0;     // the server's usage, else the tokenizer's count of the prompt sent
  int64_t output_tokens = 0;     // the server's usage, else the tokenizer's count, else the chunks
  int64_t tokenizer_prompt_tokens = -1, tokenizer_output_tokens = -1;  // cross-check; -1: not counted
  bool server_usage = false;     // the counts came from the server's usage
  double start_s = 0;            // when it was sent, from the start of the run
  double ttft_s = 0;             // first chunk with text
  double latency_s = 0;          // last chunk (end to end)
  std::vector<double> itl_s;     // gaps between consecutive chunks with text
  std::string generated_text;
};

// TPOT of one request: (latency - ttft) / (output_tokens - 1); 0 for one token or fewer.
double time_per_output_token(const RequestRecord& r);
// Gaps between consecutive chunk arrival times (seconds from the request's start).
std::vector<double> inter_token_latencies(const std::vector<double>& chunk_times_s);

// Service level objectives in milliseconds; a request is good when it meets every one given.
struct Slo {
  std::optional<double> ttft_ms, tpot_ms, e2el_ms;
  bool any() const { return ttft_ms || tpot_ms || e2el_ms; }
};
// "ttft:MS", "tpot:MS", "e2el:MS" pairs (the --goodput values); InputError naming the pair.
Slo parse_slo(const std::vector<std::string>& pairs);

struct MetricSummary {
  double mean_ms = 0, median_ms = 0, std_ms = 0;
  std::vector<std::pair<double, double>> percentiles_ms;  // (p, value)
};

struct BenchMetrics {
  int64_t completed = 0, failed = 0;
  int64_t total_input = 0, total_output = 0;
  double duration_s = 0;
  double request_throughput = 0, output_throughput = 0, total_token_throughput = 0;
  std::optional<double> request_goodput;       // only with an SLO
  double max_output_tokens_per_s = 0;          // the busiest whole second of the run
  int64_t max_concurrent_requests = 0;         // in flight at once, at most
  // Per-request values in seconds: ttft, tpot (requests with more than one token), itl (every
  // gap of every request), e2el; successful requests only.
  std::vector<double> ttfts_s, tpots_s, itls_s, e2els_s;
  MetricSummary ttft, tpot, itl, e2el;
  const MetricSummary& summary(const std::string& metric) const;  // "ttft", "tpot", "itl", "e2el"
};

BenchMetrics calculate_metrics(const std::vector<RequestRecord>& records, double duration_s, const Slo& slo,
                               const std::vector<double>& percentiles);

}  // namespace flashline

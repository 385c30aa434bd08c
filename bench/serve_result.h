#pragma once
// The result of a serving benchmark in vLLM's forms: the summary table `vllm bench serve` prints
// and the JSON `--save-result` writes (same keys, same units: *_ms in milliseconds, `duration`
// and the per-request `ttfts` / `itls` in seconds, throughputs per second), so tools written for
// vLLM's files read ours unchanged.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/latency_stats.h"

namespace flashline {

struct ServeRunInfo {
  std::string backend = "openai";  // openai (completions) | openai-chat | flashline-engine (bench offline)
  std::string model_id, tokenizer_id, base_url, endpoint, dataset;
  std::string date;                // YYYYMMDD-HHMMSS, local time
  int num_prompts = 0;
  double request_rate = 0;         // infinity: all at once (written "inf")
  double burstiness = 1;
  int max_concurrency = 0;         // 0: no limit (written null)
  std::vector<std::string> percentile_metrics{"ttft", "tpot", "itl"};
  std::vector<double> percentiles{99};
  Slo slo;
};

// The parts of a comma-separated flag value, empty parts included ("a,,b" -> a, "", b).
std::vector<std::string> split_commas(const std::string& text);
// "50,90,99" and "ttft,tpot,itl,e2el" (the flags' values); InputError naming the flag.
std::vector<double> parse_percentiles(const std::string& text);
std::vector<std::string> parse_percentile_metrics(const std::string& text);
// "99" for 99, "99.9" for 99.9: the p-word of vLLM's keys (p99_ttft_ms, p99.9_ttft_ms).
std::string percentile_word(double p);
std::string now_stamp();

nlohmann::json serve_result_json(const ServeRunInfo& info, const std::vector<RequestRecord>& records,
                                 const BenchMetrics& m);
std::string serve_summary_table(const ServeRunInfo& info, const BenchMetrics& m);

// Tokens per second while prefilling and while decoding, from the token times of a run whose
// requests all arrived at once: prefill = input tokens / time until the last first token;
// decode = tokens that arrived after the last first token / the time from then to the end (every
// request decoding, none prefilling). 0 where the run has no such window.
struct PhaseThroughput {
  double prefill_tokens_per_s = 0, decode_tokens_per_s = 0;
  double last_first_token_s = 0;
};
PhaseThroughput phase_throughput(const std::vector<RequestRecord>& records);

}  // namespace flashline

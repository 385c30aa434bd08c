#include "bench/serve_result.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <sstream>

#include "base/input_error.h"

namespace flashline {
namespace {

using nlohmann::json;

const char* metric_header(const std::string& metric) {
  if (metric == "ttft") return "Time to First Token";
  if (metric == "tpot") return "Time per Output Token (excl. 1st token)";
  if (metric == "itl") return "Inter-token Latency";
  return "End-to-end Latency";
}

std::string upper(std::string s) {
  for (char& c : s) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::vector<std::string> split_commas(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) parts.push_back(part);
  return parts;
}

std::vector<double> parse_percentiles(const std::string& text) {
  std::vector<double> out;
  for (const auto& part : split_commas(text)) {
    try {
      std::size_t used = 0;
      const double p = std::stod(part, &used);
      if (used == part.size() && p > 0 && p < 100) {
        out.push_back(p);
        continue;
      }
    } catch (const std::exception&) {
    }
    throw InputError(fmt::format("--metric-percentiles {}: {} is not a percentile between 0 and 100", text, part));
  }
  if (out.empty()) throw InputError("--metric-percentiles: expected a comma-separated list such as 50,90,99");
  return out;
}

std::vector<std::string> parse_percentile_metrics(const std::string& text) {
  std::vector<std::string> out = split_commas(text);
  for (const auto& m : out)
    if (m != "ttft" && m != "tpot" && m != "itl" && m != "e2el")
      throw InputError(fmt::format("--percentile-metrics {}: unknown metric {} (expected ttft, tpot, itl, e2el)", text, m));
  if (out.empty()) throw InputError("--percentile-metrics: expected a comma-separated list such as ttft,tpot,itl");
  return out;
}

std::string percentile_word(double p) {
  if (p == std::floor(p)) return fmt::format("{}", static_cast<int64_t>(p));
  return fmt::format("{}", p);
}

std::string now_stamp() {
  const std::time_t t = std::time(nullptr);
  std::tm local{};
  localtime_r(&t, &local);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &local);
  return buf;
}

json serve_result_json(const ServeRunInfo& info, const std::vector<RequestRecord>& records, const BenchMetrics& m) {
  json j;
  j["date"] = info.date;
  j["backend"] = info.backend;
  j["endpoint_type"] = info.backend;
  j["model_id"] = info.model_id;
  j["tokenizer_id"] = info.tokenizer_id;
  j["num_prompts"] = info.num_prompts;
  if (std::isinf(info.request_rate))
    j["request_rate"] = "inf";
  else
    j["request_rate"] = info.request_rate;
  j["burstiness"] = info.burstiness;
  j["max_concurrency"] = info.max_concurrency > 0 ? json(info.max_concurrency) : json(nullptr);
  j["duration"] = m.duration_s;
  j["completed"] = m.completed;
  j["failed"] = m.failed;
  j["total_input_tokens"] = m.total_input;
  j["total_output_tokens"] = m.total_output;
  j["request_throughput"] = m.request_throughput;
  j["request_goodput"] = m.request_goodput ? json(*m.request_goodput) : json(nullptr);
  j["output_throughput"] = m.output_throughput;
  j["total_token_throughput"] = m.total_token_throughput;
  j["max_output_tokens_per_s"] = m.max_output_tokens_per_s;
  j["max_concurrent_requests"] = m.max_concurrent_requests;
  json input_lens = json::array(), output_lens = json::array(), ttfts = json::array(), itls = json::array(),
       texts = json::array(), errors = json::array();
  for (const auto& r : records) {
    input_lens.push_back(r.prompt_tokens);
    output_lens.push_back(r.success ? r.output_tokens : 0);
    ttfts.push_back(r.success ? r.ttft_s : 0.0);
    itls.push_back(r.success ? r.itl_s : std::vector<double>{});
    texts.push_back(r.generated_text);
    errors.push_back(r.error);
  }
  j["input_lens"] = input_lens;
  j["output_lens"] = output_lens;
  j["ttfts"] = ttfts;
  j["itls"] = itls;
  j["generated_texts"] = texts;
  j["errors"] = errors;
  for (const auto& metric : info.percentile_metrics) {
    const MetricSummary& s = m.summary(metric);
    j[fmt::format("mean_{}_ms", metric)] = s.mean_ms;
    j[fmt::format("median_{}_ms", metric)] = s.median_ms;
    j[fmt::format("std_{}_ms", metric)] = s.std_ms;
    for (const auto& [p, v] : s.percentiles_ms) j[fmt::format("p{}_{}_ms", percentile_word(p), metric)] = v;
  }
  // Beyond vLLM's keys: where the run went and what the tokenizer made of the server's counts.
  j["base_url"] = info.base_url;
  j["endpoint"] = info.endpoint;
  j["dataset_name"] = info.dataset;
  int64_t prompt_mismatch = 0, output_mismatch = 0;
  for (const auto& r : records) {
    if (!r.success) continue;
    prompt_mismatch += r.tokenizer_prompt_tokens >= 0 && r.tokenizer_prompt_tokens != r.prompt_tokens;
    output_mismatch += r.tokenizer_output_tokens >= 0 && r.tokenizer_output_tokens != r.output_tokens;
  }
  j["tokenizer_mismatched_input_lens"] = prompt_mismatch;
  j["tokenizer_mismatched_output_lens"] = output_mismatch;
  return j;
}

std::string serve_summary_table(const ServeRunInfo& info, const BenchMetrics& m) {
  std::string out = fmt::format("{:=^50}\n", " Serving Benchmark Result ");
  auto row = [&](const std::string& name, const std::string& value) { out += fmt::format("{:<40} {:<10}\n", name, value); };
  auto num = [](double v) { return fmt::format("{:.2f}", v); };
  row("Successful requests:", fmt::format("{}", m.completed));
  row("Failed requests:", fmt::format("{}", m.failed));
  if (info.max_concurrency > 0) row("Maximum request concurrency:", fmt::format("{}", info.max_concurrency));
  row("Benchmark duration (s):", num(m.duration_s));
  row("Total input tokens:", fmt::format("{}", m.total_input));
  row("Total generated tokens:", fmt::format("{}", m.total_output));
  row("Request throughput (req/s):", num(m.request_throughput));
  if (m.request_goodput) row("Request goodput (req/s):", num(*m.request_goodput));
  row("Output token throughput (tok/s):", num(m.output_throughput));
  row("Peak output token throughput (tok/s):", num(m.max_output_tokens_per_s));
  row("Peak concurrent requests:", fmt::format("{}", m.max_concurrent_requests));
  row("Total Token throughput (tok/s):", num(m.total_token_throughput));
  for (const auto& metric : info.percentile_metrics) {
    const MetricSummary& s = m.summary(metric);
    const std::string name = upper(metric);
    out += fmt::format("{:-^50}\n", metric_header(metric));
    row(fmt::format("Mean {} (ms):", name), num(s.mean_ms));
    row(fmt::format("Median {} (ms):", name), num(s.median_ms));
    for (const auto& [p, v] : s.percentiles_ms) row(fmt::format("P{} {} (ms):", percentile_word(p), name), num(v));
  }
  out += std::string(50, '=') + "\n";
  return out;
}

PhaseThroughput phase_throughput(const std::vector<RequestRecord>& records) {
  PhaseThroughput t;
  int64_t input = 0;
  double last_first = 0;
  for (const auto& r : records)
    if (r.success) {
      input += r.prompt_tokens;
      last_first = std::max(last_first, r.start_s + r.ttft_s);
    }
  t.last_first_token_s = last_first;
  if (last_first > 0) t.prefill_tokens_per_s = static_cast<double>(input) / last_first;
  int64_t decoded = 0;
  double end = 0;
  for (const auto& r : records) {
    if (!r.success) continue;
    double at = r.start_s + r.ttft_s;
    for (double gap : r.itl_s) {
      at += gap;
      if (at > last_first) ++decoded;
    }
    end = std::max(end, at);
  }
  if (end > last_first && decoded > 0) t.decode_tokens_per_s = static_cast<double>(decoded) / (end - last_first);
  return t;
}

}  // namespace flashline

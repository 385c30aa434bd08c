#include "bench/serve_bench.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <regex>
#include <sstream>

#include <unistd.h>

#include "base/input_error.h"
#include "bench/arrival_process.h"
#include "bench/openai_stream_client.h"
#include "bench/plan_comparison.h"
#include "bench/serve_result.h"
#include "bench/svg_chart.h"
#include "serving/tokenizer.h"

namespace flashline {
namespace {

using nlohmann::json;

// Everything a run needs that does not change between the points of a sweep.
struct Prepared {
  ServerEndpoint server;
  std::unique_ptr<Tokenizer> tokenizer;
  StreamRequestOptions request;
  std::vector<BenchPrompt> prompts;
  Slo slo;
  std::vector<std::string> metrics;
  std::vector<double> percentiles;
  std::optional<Plan> plan;
};

Prepared prepare(const ServeBenchOptions& o) {
  Prepared p;
  p.server = parse_base_url(o.base_url, o.endpoint);
  p.slo = parse_slo(o.goodput);
  p.metrics = parse_percentile_metrics(o.percentile_metrics);
  p.percentiles = parse_percentiles(o.metric_percentiles);
  if (o.burstiness <= 0 || !std::isfinite(o.burstiness))
    throw InputError(fmt::format("--burstiness {}: expected a finite value above 0 (1: Poisson)", o.burstiness));
  if (o.max_concurrency < 0) throw InputError(fmt::format("--max-concurrency {}: expected 1 or more", o.max_concurrency));
  if (!o.plan.empty()) p.plan = Plan::load(o.plan);
  if (!o.tokenizer.empty()) p.tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_file(o.tokenizer));
  p.prompts = load_dataset(o.dataset, p.tokenizer.get());
  p.request.api_key = o.api_key;
  p.request.ignore_eos = o.ignore_eos;
  p.request.temperature = o.temperature;
  p.request.model = o.model.empty() ? first_served_model(p.server, o.api_key) : o.model;
  return p;
}

std::string tokenizer_id(const ServeBenchOptions& o, const Prepared& p) {
  return o.tokenizer.empty() ? p.request.model : o.tokenizer;
}

// The server's counters from flashline's /metrics: the mean step time of each stage, the steps
// run so far, and the speculative decoding counters; empty for other servers.
struct StageTimers {
  std::vector<double> step_s;
  double steps = 0;
  double drafts = 0, draft_tokens = 0, accepted_tokens = 0;
  std::vector<double> accepted_at;
};

StageTimers stage_timers(const Prepared& p, const std::string& api_key) {
  StageTimers t;
  std::string text;
  try {
    text = http_get_text(p.server, "/metrics", api_key);
  } catch (const InputError&) {
    return t;
  }
  static const std::regex step(R"re(^flashline:stage_step_seconds\{[^}]*stage="(\d+)"[^}]*\}\s+([0-9.eE+-]+))re");
  static const std::regex steps(R"re(^flashline:engine_steps_total(\{[^}]*\})?\s+([0-9.eE+-]+))re");
  static const std::regex spec(
      R"re(^flashline:spec_decode_num_(drafts|draft_tokens|accepted_tokens)_total(\{[^}]*\})?\s+([0-9.eE+-]+))re");
  static const std::regex spec_at(
      R"re(^flashline:spec_decode_num_accepted_tokens_per_pos_total\{[^}]*position="(\d+)"[^}]*\}\s+([0-9.eE+-]+))re");
  std::istringstream in(text);
  std::string l;
  std::smatch m;
  while (std::getline(in, l)) {
    if (std::regex_search(l, m, step)) {
      const auto stage = static_cast<std::size_t>(std::stoul(m[1].str()));
      if (t.step_s.size() <= stage) t.step_s.resize(stage + 1);
      t.step_s[stage] = std::stod(m[2].str());
    } else if (std::regex_search(l, m, steps)) {
      t.steps = std::stod(m[2].str());
    } else if (std::regex_search(l, m, spec_at)) {
      const auto pos = static_cast<std::size_t>(std::stoul(m[1].str()));
      if (t.accepted_at.size() <= pos) t.accepted_at.resize(pos + 1);
      t.accepted_at[pos] = std::stod(m[2].str());
    } else if (std::regex_search(l, m, spec)) {
      (m[1] == "drafts" ? t.drafts : m[1] == "draft_tokens" ? t.draft_tokens : t.accepted_tokens) = std::stod(m[3].str());
    }
  }
  return t;
}

// Speculative decoding over the run (vLLM's spec_decode_* keys), from two scrapes; nothing when
// the server verified no drafts.
void add_spec_decode(json& result, const StageTimers& before, const StageTimers& after) {
  const double drafts = after.drafts - before.drafts, tokens = after.draft_tokens - before.draft_tokens;
  if (drafts <= 0 || tokens <= 0) return;
  const double accepted = after.accepted_tokens - before.accepted_tokens;
  json per_pos = json::array();
  for (std::size_t i = 0; i < after.accepted_at.size(); ++i)
    per_pos.push_back((after.accepted_at[i] - (i < before.accepted_at.size() ? before.accepted_at[i] : 0.0)) / drafts);
  result["spec_decode_num_drafts"] = drafts;
  result["spec_decode_draft_tokens"] = tokens;
  result["spec_decode_accepted_tokens"] = accepted;
  result["spec_decode_acceptance_rate"] = 100.0 * accepted / tokens;
  result["spec_decode_acceptance_length"] = 1.0 + accepted / drafts;
  result["spec_decode_per_position_acceptance_rates"] = per_pos;
}

// What each stage computed between two scrapes, as a share of `duration_s` left idle.
std::vector<double> idle_shares(const StageTimers& before, const StageTimers& after, double duration_s) {
  std::vector<double> idle;
  if (after.steps <= 0 || duration_s <= 0) return idle;
  for (std::size_t s = 0; s < after.step_s.size(); ++s) {
    const double busy = after.step_s[s] * after.steps - (s < before.step_s.size() ? before.step_s[s] * before.steps : 0.0);
    idle.push_back(std::clamp(1 - busy / duration_s, 0.0, 1.0));
  }
  return idle;
}

struct Point {
  std::string label;
  double x = 0;
  BenchMetrics metrics;
  json result;
};

void write_text_file(const std::string& path, const std::string& text, const char* flag) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!(out << text) || !out.flush()) throw InputError(fmt::format("{} {}: cannot write the file", flag, path));
}

Point run_point(const ServeBenchOptions& o, const Prepared& p, double rate, int max_concurrency, bool print) {
  if (o.warmup) {
    // One request first: a server that refuses the workload fails here, with its answer.
    const std::vector<BenchPrompt> one{p.prompts.front()};
    const auto warm = run_load(p.server, p.request, one, {0.0}, 1);
    if (!warm.records[0].success)
      throw InputError(fmt::format("--base-url {}: the first request failed: {}", o.base_url, warm.records[0].error));
  }
  const auto offsets = arrival_offsets(static_cast<int>(p.prompts.size()), rate, o.burstiness, o.dataset.seed);
  if (print)
    fmt::print(stderr, "flashline bench: {} requests to {}{} (rate {}, burstiness {}, max concurrency {})\n",
               p.prompts.size(), o.base_url, o.endpoint, std::isinf(rate) ? "inf" : fmt::format("{}", rate),
               o.burstiness, max_concurrency > 0 ? fmt::format("{}", max_concurrency) : "none");
  // Progress on a terminal only: logs and pipes get the table alone.
  const bool tty = print && isatty(STDERR_FILENO);
  const StageTimers timers_before = stage_timers(p, o.api_key);
  LoadResult load = run_load(p.server, p.request, p.prompts, offsets, max_concurrency, [tty](int done, int total) {
    if (tty) fmt::print(stderr, "\r{} of {} requests done{}", done, total, done == total ? "\n" : "");
  });
  // The tokenizer's counts: kept beside the server's to cross-check them, used where the server
  // sent no usage.
  if (p.tokenizer)
    for (auto& r : load.records)
      if (r.success) {
        r.tokenizer_output_tokens = static_cast<int64_t>(p.tokenizer->encode(r.generated_text).size());
        if (!r.server_usage) r.output_tokens = r.tokenizer_output_tokens;
      }
  ServeRunInfo info;
  info.backend = p.server.chat ? "openai-chat" : "openai";
  info.model_id = p.request.model;
  info.tokenizer_id = tokenizer_id(o, p);
  info.base_url = o.base_url;
  info.endpoint = o.endpoint;
  info.dataset = o.dataset.name;
  info.date = now_stamp();
  info.num_prompts = static_cast<int>(p.prompts.size());
  info.request_rate = rate;
  info.burstiness = o.burstiness;
  info.max_concurrency = max_concurrency;
  info.percentile_metrics = p.metrics;
  info.percentiles = p.percentiles;
  info.slo = p.slo;
  Point point;
  point.metrics = calculate_metrics(load.records, load.duration_s, p.slo, p.percentiles);
  point.result = serve_result_json(info, load.records, point.metrics);
  if (print) fmt::print("{}", serve_summary_table(info, point.metrics));
  const StageTimers timers_after = stage_timers(p, o.api_key);
  add_spec_decode(point.result, timers_before, timers_after);
  if (print && point.result.contains("spec_decode_acceptance_rate"))
    fmt::print("Speculative decoding: acceptance rate {:.2f} %, acceptance length {:.2f}, {} drafts\n",
               point.result["spec_decode_acceptance_rate"].get<double>(),
               point.result["spec_decode_acceptance_length"].get<double>(),
               point.result["spec_decode_num_drafts"].get<double>());
  if (p.plan) {
    MeasuredStages stages;
    stages.step_s = timers_after.step_s;
    stages.idle_share = idle_shares(timers_before, timers_after, load.duration_s);
    const PhaseThroughput phases = phase_throughput(load.records);
    if (print)
      fmt::print("{}", plan_comparison_table(*p.plan, phases, stages,
                                             max_concurrency > 0 ? std::min<int64_t>(max_concurrency, p.prompts.size())
                                                                 : static_cast<int64_t>(p.prompts.size())));
    point.result["plan_comparison"] = plan_comparison_json(*p.plan, phases, stages);
  }
  int64_t mismatched = point.result["tokenizer_mismatched_output_lens"].get<int64_t>();
  if (print && p.tokenizer && mismatched > 0)
    fmt::print(stderr,
               "flashline bench: the tokenizer counts a different number of output tokens than the server reported "
               "for {} of {} requests (text held back or merged across tokens; the server's counts are used)\n",
               mismatched, point.metrics.completed);
  return point;
}

std::vector<LineChart> latency_cdf_charts(const std::vector<Point>& points) {
  LineChart cdf{"End-to-end latency CDF", "latency (ms)", "fraction of requests", {}, false, false, {}};
  LineChart ttft{"Time to first token CDF", "TTFT (ms)", "fraction of requests", {}, false, false, {}};
  for (const auto& point : points) {
    auto scaled = [](std::vector<double> s) {
      for (double& v : s) v *= 1000;
      return cdf_points(std::move(s));
    };
    cdf.series.push_back({point.label, scaled(point.metrics.e2els_s)});
    ttft.series.push_back({point.label, scaled(point.metrics.ttfts_s)});
  }
  return {cdf, ttft};
}

}  // namespace

void add_serve_bench_options(CLI::App& cmd, ServeBenchOptions& o) {
  cmd.add_option("--base-url", o.base_url, "Server to load, http://HOST:PORT (any OpenAI-compatible server)")
      ->capture_default_str();
  cmd.add_option("--endpoint", o.endpoint, "/v1/completions or /v1/chat/completions")->capture_default_str();
  cmd.add_option("--model", o.model, "Model name sent in each request (default: the server's first, GET /v1/models)");
  cmd.add_option("--tokenizer", o.tokenizer,
                 "tokenizer.json: prompt lengths (random, sharegpt) and a cross-check of the server's token counts");
  cmd.add_option("--api-key", o.api_key, "Sent as Authorization: Bearer KEY");
  cmd.add_option("--dataset", o.dataset.name, "random, sharegpt or jsonl")->capture_default_str();
  cmd.add_option("--dataset-path", o.dataset.path,
                 "sharegpt: JSON list of {conversations: [{from, value}, ...]}; jsonl: one {\"prompt\", \"output_len\"} a line");
  cmd.add_option("--num-prompts", o.dataset.num_prompts, "Requests to send")->capture_default_str();
  cmd.add_option("--input-len", o.dataset.input_len, "random: prompt tokens")->capture_default_str();
  cmd.add_option("--output-len", o.dataset.output_len,
                 "Output tokens (max_tokens) per request; random: the mean; overrides sharegpt/jsonl lengths")
      ->capture_default_str();
  cmd.add_option("--range-ratio", o.dataset.range_ratio,
                 "random: lengths uniform in [len * (1 - R), len * (1 + R)]")->capture_default_str();
  cmd.add_option("--request-rate", o.request_rate, "Requests per second (gamma arrivals), or inf: all at once")
      ->capture_default_str();
  cmd.add_option("--burstiness", o.burstiness, "Gamma shape of the arrivals: 1 Poisson, < 1 burstier, > 1 steadier")
      ->capture_default_str();
  cmd.add_option("--max-concurrency", o.max_concurrency, "Requests in flight at most (0: no limit)")->capture_default_str();
  cmd.add_option("--seed", o.dataset.seed, "Seed of the dataset sampling and the arrivals")->capture_default_str();
  cmd.add_option("--goodput", o.goodput, "Service level objectives, e.g. ttft:500 tpot:50 e2el:4000 (ms)");
  cmd.add_option("--percentile-metrics", o.percentile_metrics, "Metrics with percentiles: ttft,tpot,itl,e2el")
      ->capture_default_str();
  cmd.add_option("--metric-percentiles", o.metric_percentiles, "Percentiles reported, e.g. 50,90,99")
      ->capture_default_str();
  cmd.add_option("--plan", o.plan, "Plan file: print its predicted throughput and step times next to the measured ones");
  cmd.add_flag("--ignore-eos", o.ignore_eos, "Ask the server to generate exactly the output length (vLLM's ignore_eos)");
  cmd.add_option("--temperature", o.temperature, "Sampling temperature of every request")->capture_default_str();
  cmd.add_flag("!--no-warmup", o.warmup, "Skip the single request sent (unmeasured) before the run");
}

void finish_serve_bench_options(const CLI::App& cmd, ServeBenchOptions& o) {
  o.dataset.output_len_given = cmd.get_option("--output-len")->count() > 0;
}

void add_sweep_options(CLI::App& cmd, ServeBenchOptions& o) {
  cmd.add_option("--concurrencies", o.concurrencies, "Points of the sweep: max concurrencies, e.g. 1,2,4,8,16");
  cmd.add_option("--request-rates", o.request_rates, "Points of the sweep: request rates, e.g. 1,2,4,inf");
  cmd.add_option("--out-dir", o.out_dir, "Folder for one JSON per point and sweep.svg")->required();
}

void run_serve_bench(const ServeBenchOptions& o) {
  const double rate = parse_rate(o.request_rate, "--request-rate");
  const Prepared p = prepare(o);
  std::vector<Point> points{run_point(o, p, rate, o.max_concurrency, true)};
  if (!o.save_result.empty()) write_text_file(o.save_result, points[0].result.dump(2) + "\n", "--save-result");
  if (!o.plot.empty()) {
    points[0].label = "this run";
    auto charts = latency_cdf_charts(points);
    LineChart itl{"Inter-token latency CDF", "ITL (ms)", "fraction of gaps", {}, false, false, {}};
    std::vector<double> itls = points[0].metrics.itls_s;
    for (double& v : itls) v *= 1000;
    itl.series.push_back({"this run", cdf_points(itls)});
    charts.push_back(itl);
    write_text_file(o.plot, render_charts_svg(charts), "--plot");
  }
}

void run_serve_sweep(const ServeBenchOptions& o) {
  if (o.concurrencies.empty() == o.request_rates.empty())
    throw InputError("bench sweep: give one of --concurrencies (e.g. 1,4,16) or --request-rates (e.g. 1,2,inf)");
  const bool by_concurrency = !o.concurrencies.empty();
  const Prepared p = prepare(o);
  std::error_code ec;
  std::filesystem::create_directories(o.out_dir, ec);
  if (ec) throw InputError(fmt::format("--out-dir {}: cannot create the folder: {}", o.out_dir, ec.message()));
  std::vector<Point> points;
  for (const auto& item : split_commas(by_concurrency ? o.concurrencies : o.request_rates)) {
    if (item.empty()) continue;
    double rate = parse_rate(o.request_rate, "--request-rate");
    int concurrency = o.max_concurrency;
    std::string label;
    double x = 0;
    if (by_concurrency) {
      try {
        std::size_t used = 0;
        concurrency = std::stoi(item, &used);
        if (used != item.size() || concurrency < 1) throw std::invalid_argument(item);
      } catch (const std::exception&) {
        throw InputError(fmt::format("--concurrencies {}: {} is not a concurrency of 1 or more", o.concurrencies, item));
      }
      label = fmt::format("concurrency {}", concurrency);
      x = concurrency;
    } else {
      rate = parse_rate(item, "--request-rates");
      label = fmt::format("rate {}", item);
      x = rate;
    }
    Point point = run_point(o, p, rate, concurrency, true);
    point.label = label;
    point.x = x;
    const std::string file =
        (std::filesystem::path(o.out_dir) / (by_concurrency ? fmt::format("concurrency-{}.json", concurrency)
                                                             : fmt::format("rate-{}.json", item)))
            .string();
    write_text_file(file, point.result.dump(2) + "\n", "--out-dir");
    points.push_back(std::move(point));
  }
  // Charts: an infinite rate sits one step right of the largest finite one.
  double max_finite = 0;
  for (const auto& pt : points)
    if (std::isfinite(pt.x)) max_finite = std::max(max_finite, pt.x);
  for (auto& pt : points)
    if (!std::isfinite(pt.x)) pt.x = max_finite > 0 ? max_finite * 2 : 1;
  const std::string x_label = by_concurrency ? "max concurrency" : "request rate (req/s; inf drawn at 2x the largest)";
  std::vector<double> x_ticks;
  for (const auto& pt : points) x_ticks.push_back(pt.x);
  LineChart throughput{"Throughput", x_label, "tokens/s", {{"output tok/s", {}}, {"total tok/s", {}}}, by_concurrency, true, x_ticks};
  LineChart latency{"Latency percentiles", x_label, "ms", {}, by_concurrency, true, x_ticks};
  for (double pct : {50.0, 99.0})
    for (const char* metric : {"ttft", "itl"}) latency.series.push_back({fmt::format("{} p{}", metric, percentile_word(pct)), {}});
  std::string table = fmt::format("{:<18} {:>10} {:>12} {:>12} {:>12} {:>12} {:>12} {:>12}\n", "point", "req/s",
                                  "out tok/s", "total tok/s", "TTFT p50", "TTFT p99", "ITL p50", "ITL p99");
  for (const auto& pt : points) {
    const auto& m = pt.metrics;
    throughput.series[0].points.emplace_back(pt.x, m.output_throughput);
    throughput.series[1].points.emplace_back(pt.x, m.total_token_throughput);
    std::size_t s = 0;
    for (double pct : {50.0, 99.0})
      for (const auto* values : {&m.ttfts_s, &m.itls_s}) latency.series[s++].points.emplace_back(pt.x, percentile(*values, pct) * 1000);
    table += fmt::format("{:<18} {:>10.2f} {:>12.2f} {:>12.2f} {:>12.2f} {:>12.2f} {:>12.2f} {:>12.2f}\n", pt.label,
                         m.request_throughput, m.output_throughput, m.total_token_throughput,
                         percentile(m.ttfts_s, 50) * 1000, percentile(m.ttfts_s, 99) * 1000,
                         percentile(m.itls_s, 50) * 1000, percentile(m.itls_s, 99) * 1000);
  }
  std::vector<LineChart> charts{throughput, latency};
  for (auto& c : latency_cdf_charts(points)) charts.push_back(std::move(c));
  write_text_file((std::filesystem::path(o.out_dir) / "sweep.svg").string(), render_charts_svg(charts), "--out-dir");
  write_text_file((std::filesystem::path(o.out_dir) / "sweep.txt").string(), table, "--out-dir");
  fmt::print("{}", table);
}

}  // namespace flashline

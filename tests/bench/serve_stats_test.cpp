// The serving benchmark's statistics, arrivals and result forms against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <numeric>

#include "base/input_error.h"
#include "bench/arrival_process.h"
#include "bench/latency_stats.h"
#include "bench/serve_result.h"
#include "bench/svg_chart.h"

namespace flashline {
namespace {

TEST(ServeStats, PercentileInterpolatesLinearlyAsNumpy) {
  const std::vector<double> v{4, 1, 3, 2};  // sorted: 1 2 3 4
  EXPECT_DOUBLE_EQ(percentile(v, 50), 2.5);
  EXPECT_DOUBLE_EQ(percentile(v, 90), 3.7);  // rank 0.9 * 3 = 2.7: 3 + 0.7 * (4 - 3)
  EXPECT_DOUBLE_EQ(percentile(v, 99), 3.97);
  EXPECT_DOUBLE_EQ(percentile(v, 25), 1.75);
  EXPECT_DOUBLE_EQ(percentile({10}, 99), 10);
  EXPECT_DOUBLE_EQ(percentile({}, 99), 0);
}

TEST(ServeStats, MeanAndPopulationStd) {
  const std::vector<double> v{2, 4, 4, 4, 5, 5, 7, 9};
  EXPECT_DOUBLE_EQ(mean_of(v), 5);
  EXPECT_DOUBLE_EQ(population_std(v), 2);  // sample std would be 2.138
  EXPECT_DOUBLE_EQ(mean_of({}), 0);
  EXPECT_DOUBLE_EQ(population_std({}), 0);
}

TEST(ServeStats, TpotExcludesTheFirstToken) {
  RequestRecord r;
  r.ttft_s = 0.1, r.latency_s = 1.0, r.output_tokens = 10;
  EXPECT_DOUBLE_EQ(time_per_output_token(r), 0.1);  // 0.9 s over the 9 tokens after the first
  r.output_tokens = 1;
  EXPECT_DOUBLE_EQ(time_per_output_token(r), 0);
}

TEST(ServeStats, ItlIsTheGapBetweenChunks) {
  const auto gaps = inter_token_latencies({0.1, 0.15, 0.3, 0.3});
  ASSERT_EQ(gaps.size(), 3u);
  EXPECT_DOUBLE_EQ(gaps[0], 0.05);
  EXPECT_DOUBLE_EQ(gaps[1], 0.15);
  EXPECT_DOUBLE_EQ(gaps[2], 0);
  EXPECT_TRUE(inter_token_latencies({0.2}).empty());
}

// Three successful requests and a failed one, every figure worked out by hand.
std::vector<RequestRecord> three_requests() {
  std::vector<RequestRecord> rs(4);
  // a: ttft 100 ms, 5 tokens ending at 500 ms: tpot 100 ms; gaps 100 x 4.
  rs[0] = {true, "", 10, 5, -1, -1, true, 0.0, 0.1, 0.5, {0.1, 0.1, 0.1, 0.1}, "aaaaa"};
  // b: ttft 300 ms, 3 tokens ending at 400 ms: tpot 50 ms; gaps 40, 60.
  rs[1] = {true, "", 20, 3, -1, -1, true, 0.5, 0.3, 0.4, {0.04, 0.06}, "bbb"};
  // c: ttft 200 ms, 1 token: no tpot (counts 0 against an objective), no gaps.
  rs[2] = {true, "", 30, 1, -1, -1, true, 1.0, 0.2, 0.2, {}, "c"};
  rs[3].error = "HTTP 500: boom";
  rs[3].start_s = 1.5, rs[3].latency_s = 0.01;
  return rs;
}

TEST(ServeStats, MetricsOfAHandComputedRun) {
  const auto m = calculate_metrics(three_requests(), 2.0, Slo{}, {50, 99});
  EXPECT_EQ(m.completed, 3);
  EXPECT_EQ(m.failed, 1);
  EXPECT_EQ(m.total_input, 60);
  EXPECT_EQ(m.total_output, 9);
  EXPECT_DOUBLE_EQ(m.request_throughput, 1.5);
  EXPECT_DOUBLE_EQ(m.output_throughput, 4.5);
  EXPECT_DOUBLE_EQ(m.total_token_throughput, 34.5);
  EXPECT_FALSE(m.request_goodput.has_value());
  EXPECT_NEAR(m.ttft.mean_ms, 200, 1e-9);
  EXPECT_NEAR(m.ttft.median_ms, 200, 1e-9);
  EXPECT_NEAR(m.ttft.std_ms, std::sqrt(20000.0 / 3), 1e-9);  // deviations -100, 100, 0
  EXPECT_NEAR(m.ttft.percentiles_ms[1].second, 298, 1e-9);   // rank 1.98 of 100 200 300
  ASSERT_EQ(m.tpots_s.size(), 2u);                            // one-token requests have none
  EXPECT_NEAR(m.tpot.mean_ms, 75, 1e-9);
  EXPECT_NEAR(m.itl.mean_ms, 500.0 / 6, 1e-9);  // 100 x 4, 40, 60
  EXPECT_NEAR(m.itl.median_ms, 100, 1e-9);
  EXPECT_NEAR(m.e2el.mean_ms, (500.0 + 400 + 200) / 3, 1e-9);
  EXPECT_EQ(m.max_concurrent_requests, 1);  // a ends at 0.5 as b starts, c after b
}

TEST(ServeStats, GoodputCountsRequestsMeetingEveryObjective) {
  const auto rs = three_requests();
  // ttft <= 250 ms: a, c. tpot <= 80 ms: b, c (0 for one token). Both: c only.
  EXPECT_DOUBLE_EQ(*calculate_metrics(rs, 2.0, parse_slo({"ttft:250"}), {99}).request_goodput, 1.0);
  EXPECT_DOUBLE_EQ(*calculate_metrics(rs, 2.0, parse_slo({"tpot:80"}), {99}).request_goodput, 1.0);
  EXPECT_DOUBLE_EQ(*calculate_metrics(rs, 2.0, parse_slo({"ttft:250", "tpot:80"}), {99}).request_goodput, 0.5);
  EXPECT_DOUBLE_EQ(*calculate_metrics(rs, 2.0, parse_slo({"e2el:1000"}), {99}).request_goodput, 1.5);
  // An objective met exactly counts as met.
  EXPECT_DOUBLE_EQ(*calculate_metrics(rs, 2.0, parse_slo({"ttft:300"}), {99}).request_goodput, 1.5);
}

TEST(ServeStats, BadObjectivesNameTheFlag) {
  EXPECT_THROW(parse_slo({"latency:5"}), InputError);
  EXPECT_THROW(parse_slo({"ttft:abc"}), InputError);
  EXPECT_THROW(parse_slo({"ttft:-1"}), InputError);
  EXPECT_THROW(parse_slo({"ttft"}), InputError);
  try {
    parse_slo({"ttft:5ms"});
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--goodput ttft:5ms"), std::string::npos) << e.what();
  }
}

TEST(ServeStats, PercentileFlags) {
  EXPECT_EQ(parse_percentiles("50,90,99.9"), (std::vector<double>{50, 90, 99.9}));
  EXPECT_EQ(percentile_word(99), "99");
  EXPECT_EQ(percentile_word(99.9), "99.9");
  EXPECT_THROW(parse_percentiles("50,x"), InputError);
  EXPECT_THROW(parse_percentiles("100"), InputError);
  EXPECT_THROW(parse_percentile_metrics("ttft,latency"), InputError);
}

// 10,000 gaps: the mean rate and the burstiness (gamma shape = mean^2 / variance) within 3 %.
void expect_rate_and_burstiness(double rate, double burstiness, uint64_t seed) {
  ArrivalProcess p(rate, burstiness, seed);
  std::vector<double> gaps;
  for (int i = 0; i < 10000; ++i) gaps.push_back(p.next_gap_s());
  const double mean = mean_of(gaps), var = population_std(gaps) * population_std(gaps);
  EXPECT_NEAR(1 / mean, rate, 0.03 * rate) << "rate " << rate << " burstiness " << burstiness;
  EXPECT_NEAR(mean * mean / var, burstiness, 0.03 * burstiness) << "rate " << rate << " burstiness " << burstiness;
}

TEST(ArrivalProcess, MeanRateAndBurstinessOfTenThousandDraws) {
  expect_rate_and_burstiness(5, 1, 1);    // Poisson
  expect_rate_and_burstiness(20, 0.5, 2);  // burstier
  expect_rate_and_burstiness(2, 4, 3);     // steadier
}

TEST(ArrivalProcess, OffsetsAccumulateAndInfinityIsAllAtOnce) {
  const auto offsets = arrival_offsets(5, 10, 1, 7);
  ASSERT_EQ(offsets.size(), 5u);
  EXPECT_EQ(offsets[0], 0);
  for (std::size_t i = 1; i < offsets.size(); ++i) EXPECT_GT(offsets[i], offsets[i - 1]);
  EXPECT_EQ(arrival_offsets(5, 10, 1, 7), offsets);  // deterministic in the seed
  for (double t : arrival_offsets(4, std::numeric_limits<double>::infinity(), 1, 7)) EXPECT_EQ(t, 0);
  EXPECT_TRUE(std::isinf(parse_rate("inf", "--request-rate")));
  EXPECT_EQ(parse_rate("2.5", "--request-rate"), 2.5);
  EXPECT_THROW(parse_rate("0", "--request-rate"), InputError);
  EXPECT_THROW(parse_rate("fast", "--request-rate"), InputError);
  EXPECT_THROW(ArrivalProcess(1, 0, 1), InputError);
}

TEST(ServeResult, JsonHasVllmKeysWithTheirTypes) {
  const auto rs = three_requests();
  ServeRunInfo info;
  info.model_id = "m";
  info.num_prompts = 4;
  info.request_rate = std::numeric_limits<double>::infinity();
  info.percentile_metrics = {"ttft", "tpot", "itl", "e2el"};
  info.percentiles = {50, 99.9};
  const auto m = calculate_metrics(rs, 2.0, parse_slo({"ttft:250"}), info.percentiles);
  const auto j = serve_result_json(info, rs, m);
  for (const char* k : {"completed", "total_input_tokens", "total_output_tokens", "num_prompts"})
    EXPECT_TRUE(j.at(k).is_number_integer()) << k;
  for (const char* k : {"request_throughput", "request_goodput", "output_throughput", "total_token_throughput",
                        "duration", "burstiness"})
    EXPECT_TRUE(j.at(k).is_number()) << k;
  for (const char* metric : {"ttft", "tpot", "itl", "e2el"})
    for (const std::string k : {"mean_", "median_", "std_", "p50_", "p99.9_"})
      EXPECT_TRUE(j.at(k + metric + "_ms").is_number()) << k << metric;
  EXPECT_EQ(j["request_rate"], "inf");
  EXPECT_TRUE(j["max_concurrency"].is_null());
  EXPECT_EQ(j["input_lens"], (nlohmann::json{10, 20, 30, 0}));
  EXPECT_EQ(j["output_lens"], (nlohmann::json{5, 3, 1, 0}));
  EXPECT_EQ(j["ttfts"].size(), 4u);
  EXPECT_EQ(j["ttfts"][1].get<double>(), 0.3);  // seconds, as vLLM
  EXPECT_EQ(j["itls"][0].size(), 4u);
  EXPECT_EQ(j["errors"][3], "HTTP 500: boom");
  EXPECT_EQ(j["generated_texts"][0], "aaaaa");
  EXPECT_EQ(j["completed"], 3);
  EXPECT_DOUBLE_EQ(j["mean_tpot_ms"].get<double>(), 75);
  const std::string table = serve_summary_table(info, m);
  EXPECT_NE(table.find("============ Serving Benchmark Result ============"), std::string::npos) << table;
  EXPECT_NE(table.find("Successful requests:                     3"), std::string::npos) << table;
  EXPECT_NE(table.find("-----Time per Output Token (excl. 1st token)------"), std::string::npos) << table;
  EXPECT_NE(table.find("P99.9 TTFT (ms):"), std::string::npos) << table;
  EXPECT_NE(table.find("Request goodput (req/s):                 1.00"), std::string::npos) << table;
}

TEST(ServeResult, PhaseThroughputOfRequestsArrivingTogether) {
  // Two requests of 10 prompt tokens from t = 0; first tokens at 0.2 and 0.4 s; then tokens at
  // 0.5, 0.6 (a) and 0.5, 0.6, 0.7, 0.8 (b): 6 tokens in 0.4 s after the last first token.
  std::vector<RequestRecord> rs(2);
  rs[0] = {true, "", 10, 4, -1, -1, true, 0, 0.2, 0.6, {0.2, 0.1, 0.1}, ""};
  rs[1] = {true, "", 10, 5, -1, -1, true, 0, 0.4, 0.8, {0.1, 0.1, 0.1, 0.1}, ""};
  const auto t = phase_throughput(rs);
  EXPECT_DOUBLE_EQ(t.last_first_token_s, 0.4);
  EXPECT_DOUBLE_EQ(t.prefill_tokens_per_s, 50);
  EXPECT_NEAR(t.decode_tokens_per_s, 6 / 0.4, 1e-9);
}

TEST(SvgChart, TicksAndAChartWithAxesAndLegend) {
  EXPECT_EQ(nice_ticks(0, 10, 6), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  EXPECT_EQ(nice_ticks(0, 0.9, 4), (std::vector<double>{0, 0.5, 1}));
  const auto cdf = cdf_points({3, 1, 2, 2});
  EXPECT_EQ(cdf, (std::vector<std::pair<double, double>>{{1, 0.25}, {2, 0.75}, {3, 1}}));
  LineChart c{"Throughput <&>", "concurrency", "tok/s", {{"output", {{1, 10}, {4, 35}, {16, 60}}}}, true, true, {}};
  EXPECT_EQ(render_charts_svg({c}).find(">16</text>"), std::string::npos);  // log axis: 1, 2, 5, 10
  EXPECT_NE(render_charts_svg({c}).find(">10</text>"), std::string::npos);
  c.x_ticks = {1, 4, 16};
  const std::string svg = render_charts_svg({c, c});
  EXPECT_EQ(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0), 0u);
  EXPECT_NE(svg.find("height=\"800\""), std::string::npos);  // two panels stacked
  EXPECT_NE(svg.find("Throughput &lt;&amp;&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">output</text>"), std::string::npos);
  EXPECT_NE(svg.find(">16</text>"), std::string::npos);  // the ticks asked for
  EXPECT_NE(svg.find("<path d=\"M"), std::string::npos);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
}

}  // namespace
}  // namespace flashline

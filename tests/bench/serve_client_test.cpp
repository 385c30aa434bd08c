// The load generator's client against a fake server with fixed delays (the TTFT and ITL it was
// built with come back), its SSE parsing on arbitrary splits, and the dataset readers.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "base/input_error.h"
#include "bench/bench_dataset.h"
#include "bench/openai_stream_client.h"
#include "bench/serve_result.h"
#include "serving/tokenizer.h"
#include "tests/bench/fake_slow_server.h"

namespace flashline {
namespace {

const std::string kData = FLASHLINE_TEST_DATA;

TEST(SseRecorder, ChunksSplitAnywhereGiveTheSameRecord) {
  const std::string stream =
      "data: {\"choices\":[{\"index\":0,\"text\":\"Hel\"}]}\n\n"
      "data: {\"choices\":[{\"index\":0,\"text\":\"\"}]}\r\n\r\n"  // held-back text: not a token chunk
      "data: {\"choices\":[{\"index\":0,\"text\":\"lo\"}]}\n\n"
      ": a comment line\n\n"
      "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":4,\"completion_tokens\":3}}\n\n"
      "data: [DONE]\n\n";
  for (std::size_t split = 1; split < stream.size(); split += 7) {
    RequestRecord r;
    SseRecorder sse(r, false);
    sse.feed(stream.substr(0, split), 0.5);
    sse.feed(stream.substr(split), 0.75);
    sse.finish(0.8);
    ASSERT_TRUE(r.success) << r.error;
    EXPECT_EQ(r.generated_text, "Hello");
    EXPECT_EQ(r.prompt_tokens, 4);
    EXPECT_EQ(r.output_tokens, 3);
    EXPECT_TRUE(sse.usage_seen());
    EXPECT_EQ(sse.chunks(), 2);
    EXPECT_EQ(r.itl_s.size(), 1u);
  }
}

TEST(SseRecorder, ChatDeltasErrorsAndTruncation) {
  RequestRecord chat;
  SseRecorder a(chat, true);
  a.feed("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\n\n", 0.1);  // role only: no token
  a.feed("data: {\"choices\":[{\"delta\":{\"reasoning_content\":\"hm\"}}]}\n\n", 0.2);
  a.feed("data: {\"choices\":[{\"delta\":{\"content\":\"ok\"}}]}\n\ndata: [DONE]\n\n", 0.5);
  a.finish(0.5);
  EXPECT_TRUE(chat.success);
  EXPECT_DOUBLE_EQ(chat.ttft_s, 0.2);
  EXPECT_DOUBLE_EQ(chat.latency_s, 0.5);
  EXPECT_EQ(chat.generated_text, "hmok");

  RequestRecord failed;
  SseRecorder b(failed, false);
  b.feed("data: {\"error\": {\"message\": \"engine failed\"}}\n\ndata: [DONE]\n\n", 0.1);
  b.finish(0.1);
  EXPECT_FALSE(failed.success);
  EXPECT_EQ(failed.error, "engine failed");

  RequestRecord cut;
  SseRecorder c(cut, false);
  c.feed("data: {\"choices\":[{\"text\":\"x\"}]}\n\n", 0.1);
  c.finish(0.2);
  EXPECT_FALSE(cut.success);
  EXPECT_NE(cut.error.find("[DONE]"), std::string::npos);
}

TEST(ServeClient, FakeSlowServerGivesTheTtftAndItlItWasBuiltWith) {
  constexpr double kTtft = 0.15, kItl = 0.03;
  constexpr int kTokens = 6;
  testing::FakeSlowServer server(kTtft, kItl, kTokens, 11);
  for (const std::string endpoint : {"/v1/completions", "/v1/chat/completions"}) {
    const auto s = parse_base_url(server.base_url(), endpoint);
    std::vector<BenchPrompt> prompts(8, BenchPrompt{"hello", 2, kTokens});
    const auto result = run_load(s, StreamRequestOptions{"fake", "", true, 0}, prompts, std::vector<double>(8, 0.0), 4);
    const auto m = calculate_metrics(result.records, result.duration_s, Slo{}, {50, 99});
    EXPECT_EQ(m.completed, 8) << endpoint << ": " << result.records[0].error;
    EXPECT_EQ(m.total_output, 8 * kTokens);  // the server's usage
    EXPECT_EQ(m.total_input, 8 * 11);
    EXPECT_EQ(m.itls_s.size(), 8u * (kTokens - 1));
    // Timers never fire early; a loaded machine may add a few milliseconds.
    EXPECT_GE(m.ttft.mean_ms, kTtft * 1000);
    EXPECT_LT(m.ttft.mean_ms, kTtft * 1000 + 40);
    EXPECT_NEAR(m.itl.mean_ms, kItl * 1000, 0.15 * kItl * 1000);
    EXPECT_NEAR(m.tpot.mean_ms, kItl * 1000, 0.15 * kItl * 1000);
    EXPECT_NEAR(m.e2el.mean_ms, (kTtft + (kTokens - 1) * kItl) * 1000, 40);
    // Concurrency 4, 8 requests of ~0.3 s: two rounds.
    EXPECT_EQ(m.max_concurrent_requests, 4);
    EXPECT_GT(result.duration_s, 2 * (kTtft + (kTokens - 1) * kItl));
    EXPECT_EQ(result.records[0].generated_text, "w0 w1 w2 w3 w4 w5 ");
  }
}

TEST(ServeClient, ArrivalsAreKeptAndErrorsRecorded) {
  testing::FakeSlowServer server(0.01, 0.005, 2);
  const auto s = parse_base_url(server.base_url(), "/v1/completions");
  std::vector<BenchPrompt> prompts{{"a", 1, 2}, {"fail", 1, 2}, {"b", 1, 2}};
  const auto result = run_load(s, StreamRequestOptions{"fake", "", false, 0}, prompts, {0.0, 0.05, 0.2}, 0);
  EXPECT_TRUE(result.records[0].success);
  EXPECT_FALSE(result.records[1].success);
  EXPECT_EQ(result.records[1].error.rfind("HTTP 400: ", 0), 0u) << result.records[1].error;
  EXPECT_TRUE(result.records[2].success);
  EXPECT_GE(result.records[2].start_s, 0.2);
  EXPECT_LT(result.records[2].start_s, 0.25);
  EXPECT_GE(result.records[1].start_s, 0.05);
  // No server at all: the request fails, naming where it tried.
  const auto none = parse_base_url("http://127.0.0.1:1", "/v1/completions");
  const auto refused = run_load(none, StreamRequestOptions{"fake", "", false, 0}, {prompts[0]}, {0.0}, 1);
  EXPECT_FALSE(refused.records[0].success);
  EXPECT_NE(refused.records[0].error.find("127.0.0.1:1"), std::string::npos) << refused.records[0].error;
}

TEST(ServeClient, BaseUrlsAndRequestBodies) {
  const auto s = parse_base_url("http://example.org:8080/proxy/", "/v1/chat/completions");
  EXPECT_EQ(s.host, "example.org");
  EXPECT_EQ(s.port, "8080");
  EXPECT_EQ(s.target, "/proxy/v1/chat/completions");
  EXPECT_TRUE(s.chat);
  EXPECT_EQ(parse_base_url("http://[::1]:9000", "/v1/completions").host, "::1");
  EXPECT_EQ(parse_base_url("http://localhost", "/v1/completions").port, "80");
  EXPECT_THROW(parse_base_url("https://x", "/v1/completions"), InputError);
  EXPECT_THROW(parse_base_url("http://x:80", "/v1/embeddings"), InputError);
  EXPECT_THROW(parse_base_url("http://:80", "/v1/completions"), InputError);
  const auto body = nlohmann::json::parse(stream_request_body({"hi", 1, 7}, {"m", "", true, 0}, false));
  EXPECT_EQ(body["prompt"], "hi");
  EXPECT_EQ(body["max_tokens"], 7);
  EXPECT_EQ(body["stream"], true);
  EXPECT_EQ(body["stream_options"]["include_usage"], true);
  EXPECT_EQ(body["ignore_eos"], true);
  const auto chat = nlohmann::json::parse(stream_request_body({"hi", 1, 7}, {"m", "", false, 0}, true));
  EXPECT_EQ(chat["messages"][0]["content"], "hi");
  EXPECT_FALSE(chat.contains("ignore_eos"));
}

class Datasets : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    tokenizer_ = new Tokenizer(Tokenizer::from_file(kData + "/tokenizer/tokenizer.json"));
  }
  static void TearDownTestSuite() { delete tokenizer_; }
  static Tokenizer* tokenizer_;
};
Tokenizer* Datasets::tokenizer_ = nullptr;

TEST_F(Datasets, RandomPromptsHaveTheirLengthsWithinTheRange) {
  DatasetOptions o;
  o.num_prompts = 20, o.input_len = 40, o.output_len = 10, o.range_ratio = 0.5, o.seed = 3;
  const auto prompts = random_prompts(o, *tokenizer_);
  ASSERT_EQ(prompts.size(), 20u);
  int exact = 0;
  for (const auto& p : prompts) {
    EXPECT_EQ(p.prompt_len, static_cast<int64_t>(tokenizer_->encode(p.prompt).size()));
    EXPECT_GE(p.prompt_len, 1);
    EXPECT_LE(p.prompt_len, 60);
    EXPECT_GE(p.output_len, 5);
    EXPECT_LE(p.output_len, 15);
    exact += p.prompt_len >= 20;
  }
  EXPECT_GE(exact, 18);  // re-tokenizing rarely shortens a prompt below the range
  EXPECT_EQ(random_prompts(o, *tokenizer_)[7].prompt, prompts[7].prompt);  // deterministic
  o.range_ratio = 1;
  EXPECT_THROW(random_prompts(o, *tokenizer_), InputError);
}

TEST_F(Datasets, ShareGptTakesTheFirstTurnAndTheReplyLength) {
  DatasetOptions o;
  o.name = "sharegpt", o.path = kData + "/bench/sharegpt-tiny.json", o.num_prompts = 5;
  const auto prompts = load_dataset(o, tokenizer_);
  ASSERT_EQ(prompts.size(), 5u);  // 3 usable conversations ("Hi" is too short, one has no reply), repeated
  for (const auto& p : prompts) {
    EXPECT_NE(p.prompt, "Hi");
    EXPECT_EQ(p.prompt_len, static_cast<int64_t>(tokenizer_->encode(p.prompt).size()));
    EXPECT_GE(p.output_len, 4);
  }
  o.output_len = 9, o.output_len_given = true;
  for (const auto& p : load_dataset(o, tokenizer_)) EXPECT_EQ(p.output_len, 9);
  EXPECT_THROW(load_dataset(o, nullptr), InputError);  // lengths need the tokenizer
}

TEST_F(Datasets, JsonlLinesAndTheirErrors) {
  DatasetOptions o;
  o.name = "jsonl", o.path = kData + "/bench/prompts.jsonl", o.num_prompts = 4, o.output_len = 16;
  const auto prompts = load_dataset(o, nullptr);
  ASSERT_EQ(prompts.size(), 4u);
  EXPECT_EQ(prompts[0].output_len, 12);
  EXPECT_EQ(prompts[1].output_len, 16);  // no output_len: --output-len
  EXPECT_EQ(prompts[2].prompt, "Count from one to five.");
  EXPECT_EQ(prompts[3].prompt, prompts[0].prompt);
  EXPECT_EQ(prompts[0].prompt_len, -1);  // no tokenizer: the server's usage tells

  const auto dir = std::filesystem::temp_directory_path() / ("bench-jsonl-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "bad.jsonl") << "{\"prompt\": \"ok\"}\n{\"prompt\": 3}\n";
  o.path = (dir / "bad.jsonl").string();
  try {
    load_dataset(o, nullptr);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.jsonl:2: prompt"), std::string::npos) << e.what();
  }
  std::filesystem::remove_all(dir);
  o.path = "/nonexistent/prompts.jsonl";
  EXPECT_THROW(load_dataset(o, nullptr), InputError);
  o.name = "csv";
  EXPECT_THROW(load_dataset(o, nullptr), InputError);
}

}  // namespace
}  // namespace flashline

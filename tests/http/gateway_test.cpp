// The gateway's parts (stop strings, choice text, request checks) and the whole gateway over
// HTTP in this process, on a free port, with ScriptedEngine behind it.
#include <gtest/gtest.h>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <thread>

#include "serving/api_error.h"
#include "serving/choice_output.h"
#include "serving/http_server.h"
#include "serving/openai_gateway.h"
#include "serving/openai_request.h"
#include "serving/stop_string_matcher.h"
#include "serving/utf8.h"
#include "tests/http/scripted_engine.h"

namespace flashline {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using Json = nlohmann::json;

const Tokenizer& tokenizer() {
  static const Tokenizer t = Tokenizer::from_file(std::string(FLASHLINE_TEST_DATA) + "/tokenizer/tokenizer.json");
  return t;
}

// ---- stop strings -----------------------------------------------------------------------------

std::string run_matcher(StopStringMatcher& m, const std::vector<std::string>& pieces, std::string* shown_before_finish = nullptr) {
  std::string out;
  for (const auto& p : pieces) {
    auto r = m.push(p);
    out += r.text;
    if (r.matched) break;
  }
  if (shown_before_finish) *shown_before_finish = out;
  return out + m.finish();
}

TEST(StopStringMatcher, MatchesAcrossPiecesAndNeverShowsTheStop) {
  StopStringMatcher m({"STOP"});
  std::string before;
  EXPECT_EQ(run_matcher(m, {"abc S", "T", "OP tail"}, &before), "abc ");
  EXPECT_TRUE(m.matched());
  EXPECT_EQ(before, "abc ");
}

TEST(StopStringMatcher, HoldsBackAPossiblePrefixUntilDecided) {
  StopStringMatcher m({"STOP"});
  EXPECT_EQ(m.push("abc ST").text, "abc ");
  EXPECT_EQ(m.push("x").text, "STx");  // not a stop after all
  EXPECT_EQ(m.push("S").text, "");
  EXPECT_EQ(m.finish(), "S");  // the end decides it
  EXPECT_FALSE(m.matched());
}

TEST(StopStringMatcher, EarliestOfSeveralStopsWins) {
  StopStringMatcher m({"world", "lo w"});
  EXPECT_EQ(run_matcher(m, {"hel", "lo wor", "ld"}), "hel");
}

TEST(StopStringMatcher, MultiByteStopsCutOnCharacterBoundaries) {
  StopStringMatcher m({"停止"});
  EXPECT_EQ(run_matcher(m, {"好的", "停", "止了"}), "好的");
  StopStringMatcher none({});
  EXPECT_EQ(none.push("abc").text, "abc");
}

// ---- one choice's text ------------------------------------------------------------------------

std::vector<int> ids_of(const std::string& text) { return tokenizer().encode(text); }

TEST(ChoiceOutput, StreamedToolCallNeverLeaksMarkupAndAddsUpToTheMessage) {
  const std::string text =
      "Checking.\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"get_weather\">\n<｜DSML｜parameter name=\"city\" "
      "string=\"true\">Paris</｜DSML｜parameter>\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>";
  ChoiceOutput out(tokenizer(), OutputKind::Chat, ThinkingMode::Chat, {});
  std::string content;
  std::vector<ParsedToolCall> calls;
  for (int id : ids_of(text)) {
    const ChoiceDelta d = out.push(id);
    EXPECT_EQ(d.message.content.find("DSML"), std::string::npos);
    EXPECT_EQ(d.message.content.find('<'), std::string::npos);
    content += d.message.content;
    calls.insert(calls.end(), d.message.tool_calls.begin(), d.message.tool_calls.end());
  }
  const ChoiceDelta last = out.finish();
  content += last.message.content;
  calls.insert(calls.end(), last.message.tool_calls.begin(), last.message.tool_calls.end());
  EXPECT_EQ(content, "Checking.");
  ASSERT_EQ(calls.size(), 1u);
  EXPECT_EQ(calls[0].name, "get_weather");
  EXPECT_EQ(calls[0].arguments, "{\"city\": \"Paris\"}");
  EXPECT_EQ(out.message().content, content);
}

TEST(ChoiceOutput, ReasoningCutByLengthBecomesReasoningContent) {
  ChoiceOutput out(tokenizer(), OutputKind::Chat, ThinkingMode::Thinking, {});
  std::string reasoning;
  for (int id : ids_of("I need to think about </thi")) reasoning += out.push(id).message.reasoning_content;
  reasoning += out.finish().message.reasoning_content;
  EXPECT_EQ(reasoning, "I need to think about </thi");
  EXPECT_EQ(out.message().reasoning_content, reasoning);
  EXPECT_EQ(out.message().content, "");
}

TEST(ChoiceOutput, ThinkingSplitsReasoningFromContent) {
  ChoiceOutput out(tokenizer(), OutputKind::Chat, ThinkingMode::Thinking, {});
  std::string reasoning, content;
  for (int id : ids_of("Two and two.</think>It is 4.")) {
    const ChoiceDelta d = out.push(id);
    reasoning += d.message.reasoning_content;
    content += d.message.content;
    EXPECT_EQ(d.message.content.find("think>"), std::string::npos);
  }
  const ChoiceDelta d = out.finish();
  reasoning += d.message.reasoning_content;
  content += d.message.content;
  EXPECT_EQ(reasoning, "Two and two.");
  EXPECT_EQ(content, "It is 4.");
}

TEST(ChoiceOutput, StopStringEndsTheChoiceAndNeverShows) {
  ChoiceOutput out(tokenizer(), OutputKind::Completion, ThinkingMode::Chat, {"cat"});
  std::string text;
  for (int id : ids_of("the concatenated cat sat")) {
    text += out.push(id).text;
    if (out.stopped()) break;
  }
  text += out.finish().text;
  EXPECT_TRUE(out.stopped());
  EXPECT_EQ(text, "the con");
}

TEST(ChoiceOutput, SplitUtf8IsHeldUntilComplete) {
  // "é" alone is one token's bytes or two; either way no delta may be a broken sequence.
  ChoiceOutput out(tokenizer(), OutputKind::Completion, ThinkingMode::Chat, {});
  std::string text;
  for (int id : ids_of("naïve café 😀 done")) {
    const std::string piece = out.push(id).text;
    EXPECT_TRUE(utf8::is_valid(piece)) << piece;
    text += piece;
  }
  text += out.finish().text;
  EXPECT_EQ(text, "naïve café 😀 done");
}

// ---- request checks ---------------------------------------------------------------------------

ApiError chat_error(const std::string& body) {
  try {
    parse_chat_request(parse_ordered_json(body, "body"));
  } catch (const ApiError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for " << body;
  return ApiError::bad_request("none");
}

TEST(OpenAiRequest, ErrorsNameTheJsonPath) {
  const std::string m = R"("messages": [{"role": "user", "content": "hi"}])";
  auto e = chat_error("{" + m + R"(, "temperature": "hot"})");
  EXPECT_EQ(e.param(), "temperature");
  EXPECT_NE(std::string(e.what()).find("expected a number, got string"), std::string::npos);
  e = chat_error("{" + m + R"(, "max_tokens": 0})");
  EXPECT_EQ(e.param(), "max_tokens");
  e = chat_error(R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})");
  EXPECT_EQ(e.param(), "messages[0].content[0].type");
  e = chat_error("{" + m + R"(, "tool_choice": "sometimes"})");
  EXPECT_EQ(e.param(), "tool_choice");
  e = chat_error("{" + m + R"(, "response_format": {"type": "xml"}})");
  EXPECT_EQ(e.param(), "response_format.type");
  e = chat_error("{" + m + R"(, "top_logprobs": 3})");
  EXPECT_EQ(e.param(), "top_logprobs");
  e = chat_error("{" + m + R"(, "stop": ["a", 3]})");
  EXPECT_EQ(e.param(), "stop[1]");
  e = chat_error("{" + m + R"(, "logit_bias": {"abc": 1}})");
  EXPECT_EQ(e.param(), "logit_bias.abc");
  e = chat_error(R"({"messages": []})");
  EXPECT_EQ(e.param(), "messages");
  EXPECT_EQ(e.status(), 400);
}

// A lower bound that excludes its value holds for the float the engine keeps, not only for the
// double in the body: top_p 1e-300 was accepted and became 0.
TEST(OpenAiRequest, OpenBoundsHoldForTheFloatKept) {
  const std::string m = R"({"messages": [{"role": "user", "content": "hi"}], )";
  EXPECT_EQ(chat_error(m + R"("top_p": 1e-300})").param(), "top_p");
  EXPECT_EQ(chat_error(m + R"("repetition_penalty": 1e-50})").param(), "repetition_penalty");
  EXPECT_GT(parse_chat_request(parse_ordered_json(m + R"("top_p": 1e-40})", "body")).gen.sampling.top_p, 0.0f);
}

// Nesting is bounded while parsing: copying or dumping a deeper value recursed once per level,
// and a 200 KB body of brackets overflowed the stack (the gateway died with it).
TEST(OpenAiRequest, DeepNestingIsABadRequest) {
  auto body = [](std::size_t depth) {  // the message object and `messages` are 3 levels
    return R"({"messages": [{"role": "user", "content": "x", "extra": )" + std::string(depth - 3, '[') +
           std::string(depth - 3, ']') + "}]}";
  };
  EXPECT_NO_THROW(parse_chat_request(parse_ordered_json(body(kMaxJsonDepth), "body")));
  EXPECT_THROW(parse_ordered_json(body(kMaxJsonDepth + 1), "body"), InputError);
  EXPECT_THROW(parse_ordered_json(body(100000), "body"), InputError);
}

TEST(OpenAiRequest, ToolsAndFormatGoOnTheLeadingSystemMessage) {
  const ChatRequest r = parse_chat_request(parse_ordered_json(
      R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}],
          "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
          "response_format": {"type": "json_object"}, "chat_template_kwargs": {"thinking": true}, "seed": 7, "n": 2})",
      "body"));
  ASSERT_EQ(r.messages.size(), 2u);
  EXPECT_EQ(r.messages[0]["role"], "system");
  EXPECT_EQ(r.messages[0]["tools"][0]["function"]["name"], "f");
  EXPECT_EQ(r.messages[0]["response_format"]["type"], "json_object");
  EXPECT_EQ(r.messages[1]["content"], "a\nb");
  EXPECT_EQ(r.options.mode, ThinkingMode::Thinking);
  EXPECT_EQ(r.gen.seed, 7u);
  EXPECT_EQ(r.gen.n, 2);
  EXPECT_TRUE(r.tools_given);
}

// ---- the gateway over HTTP --------------------------------------------------------------------

struct Reply {
  int status = 0;
  std::string body;
  std::string retry_after;
  Json json() const { return Json::parse(body); }
};

class GatewayHttp : public ::testing::Test {
 protected:
  void SetUp() override { start(GatewayOptions{}); }
  void TearDown() override { stop(); }

  void start(GatewayOptions g, std::size_t max_body = 1u << 20) {
    engine_ = std::make_unique<test::ScriptedEngine>(tokenizer(), 4096, std::chrono::microseconds(500));
    HttpServerOptions http;
    http.port = 0;
    http.max_body_bytes = max_body;
    http.error_body = [](int s, const std::string& m) { return OpenAiGateway::error_json(s, m); };
    server_ = std::make_unique<HttpServer>(http);
    g.served_model_name = "scripted";
    gateway_ = std::make_unique<OpenAiGateway>(*engine_, tokenizer(), g);
    server_->start([this](std::shared_ptr<HttpExchange> ex) { gateway_->handle(ex); });
  }
  void stop() {
    if (!server_) return;
    server_->stop_accepting();
    gateway_->abort_all();
    engine_->shutdown(0);
    server_->stop();
    gateway_.reset();
    server_.reset();
    engine_.reset();
  }

  Reply request(const std::string& method, const std::string& target, const std::string& body = {},
                std::vector<std::pair<std::string, std::string>> headers = {}) {
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->port()));
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, "127.0.0.1");
    req.set(http::field::content_type, "application/json");
    for (auto& [k, v] : headers) req.set(k, v);
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    beast::flat_buffer buf;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u << 20);
    http::read(stream, buf, parser);
    Reply r;
    r.status = parser.get().result_int();
    r.body = parser.get().body();
    r.retry_after = std::string(parser.get()[http::field::retry_after]);
    beast::error_code ec;
    stream.socket().shutdown(net::ip::tcp::socket::shutdown_both, ec);
    return r;
  }
  Reply chat(const std::string& extra, const std::string& user = "Hi") {
    return request("POST", "/v1/chat/completions",
                   R"({"model": "scripted", "messages": [{"role": "user", "content": ")" + user + R"("}])" + extra + "}");
  }
  // The JSON events of an SSE body, up to [DONE].
  static std::vector<Json> events(const std::string& body, bool* done = nullptr) {
    std::vector<Json> out;
    std::size_t pos = 0;
    if (done) *done = false;
    while ((pos = body.find("data: ", pos)) != std::string::npos) {
      const std::size_t end = body.find("\n\n", pos);
      const std::string data = body.substr(pos + 6, end - pos - 6);
      pos = end;
      if (data == "[DONE]") {
        if (done) *done = true;
        break;
      }
      out.push_back(Json::parse(data));
    }
    return out;
  }
  // Waits for a condition the server reaches on its own (no timing is asserted: a generous bound
  // only keeps a broken build from hanging).
  template <typename F>
  bool eventually(F f) {
    for (int i = 0; i < 2000; ++i) {
      if (f()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return f();
  }

  std::unique_ptr<test::ScriptedEngine> engine_;
  std::unique_ptr<HttpServer> server_;
  std::unique_ptr<OpenAiGateway> gateway_;
};

TEST_F(GatewayHttp, ChatCompletionWithUsage) {
  const Reply r = chat("");
  ASSERT_EQ(r.status, 200) << r.body;
  const Json j = r.json();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "Hello! This is a scripted reply. Stop here, please.");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  const int expected = static_cast<int>(ids_of("Hello! This is a scripted reply. Stop here, please.").size()) + 1;
  EXPECT_EQ(j["usage"]["completion_tokens"], expected);
  EXPECT_EQ(j["usage"]["total_tokens"], j["usage"]["prompt_tokens"].get<int>() + expected);
}

TEST_F(GatewayHttp, StreamedDeltasAddUpToTheMessage) {
  const Reply whole = chat("");
  const Reply r = chat(R"(, "stream": true, "stream_options": {"include_usage": true})");
  ASSERT_EQ(r.status, 200);
  bool done = false;
  const auto ev = events(r.body, &done);
  EXPECT_TRUE(done);
  std::string content;
  std::string finish;
  for (const auto& e : ev) {
    if (e["choices"].empty()) continue;
    const auto& c = e["choices"][0];
    if (c["delta"].contains("content")) content += c["delta"]["content"].get<std::string>();
    if (!c["finish_reason"].is_null()) finish = c["finish_reason"];
  }
  EXPECT_EQ(content, whole.json()["choices"][0]["message"]["content"]);
  EXPECT_EQ(finish, "stop");
  EXPECT_EQ(ev.back()["usage"], whole.json()["usage"]);
  EXPECT_EQ(ev.front()["choices"][0]["delta"]["role"], "assistant");
}

TEST_F(GatewayHttp, ToolCallsComeBackAsToolCalls) {
  const Reply r = chat(R"(, "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}])",
                       "SCRIPT:tool weather in Paris?");
  ASSERT_EQ(r.status, 200) << r.body;
  const Json c = r.json()["choices"][0];
  EXPECT_EQ(c["finish_reason"], "tool_calls");
  EXPECT_TRUE(c["message"]["content"].is_null());
  EXPECT_EQ(c["message"]["tool_calls"][0]["function"]["name"], "get_weather");
  EXPECT_EQ(c["message"]["tool_calls"][0]["function"]["arguments"], "{\"city\": \"Paris\"}");
}

TEST_F(GatewayHttp, StopStringCutsTheReplyAndFreesTheRequest) {
  const Reply r = chat(R"(, "stop": ["Stop here"])");
  ASSERT_EQ(r.status, 200);
  EXPECT_EQ(r.json()["choices"][0]["message"]["content"], "Hello! This is a scripted reply. ");
  EXPECT_EQ(r.json()["choices"][0]["finish_reason"], "stop");
  EXPECT_TRUE(eventually([&] { return engine_->stats().kv_pages_used == 0; }));
}

TEST_F(GatewayHttp, ClientGoneMidStreamAbortsItsRequest) {
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), server_->port()));
  const std::string body =
      R"({"messages": [{"role": "user", "content": "SCRIPT:long"}], "stream": true, "max_tokens": 4000})";
  const std::string req = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
                          std::to_string(body.size()) + "\r\n\r\n" + body;
  net::write(stream, net::buffer(req));
  std::string got;
  char buf[4096];
  while (got.find("word") == std::string::npos && got.find("error") == std::string::npos)
    got.append(buf, stream.read_some(net::buffer(buf)));
  ASSERT_NE(got.find("word"), std::string::npos) << got;
  EXPECT_EQ(engine_->stats().running, 1);
  stream.close();
  EXPECT_TRUE(eventually([&] { return engine_->stats().running == 0 && gateway_->in_flight() == 0; }));
  EXPECT_EQ(engine_->stats().kv_pages_used, 0);
  EXPECT_EQ(request("GET", "/health").status, 200);
}

TEST_F(GatewayHttp, ErrorsAreOpenAiErrorObjects) {
  Reply r = request("POST", "/v1/chat/completions", R"({"messages": [)");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"]["type"], "invalid_request_error");
  EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("byte"), std::string::npos);
  r = request("POST", "/v1/chat/completions", R"({"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]})");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.json()["error"]["code"], "model_not_found");
  r = chat(R"(, "max_tokens": 5000)");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"]["code"], "context_length_exceeded");
  EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("4096"), std::string::npos);
  EXPECT_NE(r.json()["error"]["message"].get<std::string>().find("5000 in the completion"), std::string::npos);
  r = request("POST", "/v1/completions", R"({"prompt": [1, 2, 999999]})");
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"]["param"], "prompt[2]");
  r = request("GET", "/v1/nothing");
  EXPECT_EQ(r.status, 404);
  r = request("GET", "/v1/chat/completions");
  EXPECT_EQ(r.status, 405);
  r = request("POST", "/v1/chat/completions", std::string(2u << 20, ' '));
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.json()["error"]["code"], "request_too_large");
  // The server still answers normally afterwards.
  EXPECT_EQ(chat("").status, 200);
}

TEST_F(GatewayHttp, EngineDownIs503AndHealthFollowsIt) {
  engine_->set_healthy(false);
  EXPECT_EQ(request("GET", "/health").status, 503);
  const Reply r = chat("");
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.json()["error"]["type"], "server_error");
  engine_->set_healthy(true);
  EXPECT_EQ(request("GET", "/health").status, 200);
}

TEST_F(GatewayHttp, ApiKeyAndQueueLimit) {
  stop();
  GatewayOptions g;
  g.api_key = "sekret";
  g.max_queue = 1;
  start(g);
  EXPECT_EQ(chat("").status, 401);
  const std::vector<std::pair<std::string, std::string>> auth{{"Authorization", "Bearer sekret"}};
  EXPECT_EQ(request("POST", "/v1/completions", R"({"prompt": "x"})", {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(request("GET", "/health").status, 200);  // outside /v1: no key needed
  // Two choices need two places in a queue of one.
  const Reply r = request("POST", "/v1/completions", R"({"prompt": "x", "n": 2})", auth);
  EXPECT_EQ(r.status, 429);
  EXPECT_EQ(r.retry_after, "1");
  EXPECT_EQ(r.json()["error"]["type"], "rate_limit_error");
  EXPECT_EQ(request("POST", "/v1/completions", R"({"prompt": "x"})", auth).status, 200);
}

TEST_F(GatewayHttp, CompletionsEchoLogprobsAndTokenIds) {
  Reply r = request("POST", "/v1/completions",
                    R"({"prompt": "Say", "max_tokens": 3, "echo": true, "return_token_ids": true})");
  ASSERT_EQ(r.status, 200) << r.body;
  Json c = r.json()["choices"][0];
  EXPECT_EQ(c["finish_reason"], "length");
  EXPECT_EQ(c["token_ids"].size(), 3u);
  EXPECT_EQ(c["text"], "Say" + tokenizer().decode(c["token_ids"].get<std::vector<int>>()));
  r = request("POST", "/v1/completions", R"({"prompt": [5, 6, 7], "max_tokens": 4, "logprobs": 2})");
  ASSERT_EQ(r.status, 200) << r.body;
  c = r.json()["choices"][0];
  EXPECT_EQ(c["logprobs"]["tokens"].size(), 4u);
  EXPECT_EQ(c["logprobs"]["top_logprobs"][0].size(), 2u);
  EXPECT_DOUBLE_EQ(c["logprobs"]["token_logprobs"][0].get<double>(), -0.25);
}

TEST_F(GatewayHttp, ModelsVersionTokenizeDetokenizeMetrics) {
  EXPECT_EQ(request("GET", "/v1/models").json()["data"][0]["id"], "scripted");
  EXPECT_EQ(request("GET", "/version").json()["version"], kFlashlineVersion);
  const Json t = request("POST", "/tokenize", R"({"prompt": "Hello world"})").json();
  EXPECT_EQ(t["tokens"].get<std::vector<int>>(), ids_of("Hello world"));
  EXPECT_EQ(t["count"], t["tokens"].size());
  EXPECT_EQ(request("POST", "/detokenize", Json{{"tokens", t["tokens"]}}.dump()).json()["prompt"], "Hello world");
  EXPECT_EQ(request("POST", "/detokenize", R"({"tokens": [1, -4]})").json()["error"]["param"], "tokens[1]");
  chat("");
  const std::string m = request("GET", "/metrics").body;
  for (const char* name : {"flashline:num_requests_running", "flashline:kv_cache_usage_perc",
                           "flashline:time_to_first_token_seconds_bucket", "flashline:e2e_request_latency_seconds_count",
                           "flashline:request_success_total{", "flashline:generation_tokens_total",
                           "flashline:stage_step_seconds{", "flashline:engine_steps_total"})
    EXPECT_NE(m.find(name), std::string::npos) << name;
}

}  // namespace
}  // namespace flashline

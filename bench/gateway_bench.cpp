// The gateway's own cost: tiny requests submitted to an engine directly (Engine::submit and the
// token callback) against the same requests through HTTP (JSON, templating, tokenizing, SSE,
// sockets). By default the engine is the scripted one with no delay between tokens, so every
// microsecond measured is the gateway's or the engine API's, never the model's; with --model the
// real engine runs the model, and the same rows show the gateway's share of a real request.
//   gateway_bench --tokenizer tokenizer.json [--model DIR] [--requests 2000] [--concurrency 8] [--tokens 16]
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <numeric>
#include <thread>

#include "launch/engine_bootstrap.h"
#include "serving/http_server.h"
#include "serving/openai_gateway.h"
#include "tests/http/scripted_engine.h"

namespace {

using namespace flashline;
using Clock = std::chrono::steady_clock;
namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

struct Sample {
  double ttft = 0, total = 0;
  int tokens = 0;
};

struct Result {
  double seconds = 0;
  std::vector<Sample> samples;
};

double ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// `make_client()` runs once per client thread (a connection) and returns what makes one request.
template <typename F>
Result run_clients(int requests, int concurrency, F make_client) {
  std::atomic<int> next{0};
  std::mutex m;
  Result r;
  const auto t0 = Clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < concurrency; ++c)
    threads.emplace_back([&] {
      auto one = make_client();
      std::vector<Sample> mine;
      while (next.fetch_add(1) < requests) mine.push_back(one());
      std::lock_guard lock(m);
      r.samples.insert(r.samples.end(), mine.begin(), mine.end());
    });
  for (auto& t : threads) t.join();
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

void report(const std::string& name, const Result& r) {
  std::vector<double> ttft;
  double tokens = 0, total = 0;
  for (const auto& s : r.samples) {
    ttft.push_back(s.ttft);
    tokens += s.tokens;
    total += s.total;
  }
  std::sort(ttft.begin(), ttft.end());
  const double mean_ttft = std::accumulate(ttft.begin(), ttft.end(), 0.0) / static_cast<double>(ttft.size());
  fmt::print("{:<28} {:>9.0f} req/s {:>10.0f} tok/s   TTFT mean {:.3f} ms p50 {:.3f} p99 {:.3f}   latency mean {:.3f} ms\n",
             name, static_cast<double>(r.samples.size()) / r.seconds, tokens / r.seconds, mean_ttft,
             ttft[ttft.size() / 2], ttft[ttft.size() * 99 / 100], total / static_cast<double>(r.samples.size()));
}

// One request straight to the engine: submit, wait for the finish on the callback.
struct Direct {
  Engine* engine;
  std::vector<int32_t> prompt;
  int tokens;
  Sample operator()() const {
    struct Wait {
      std::mutex m;
      std::condition_variable cv;
      bool done = false;
      Clock::time_point first{};
      int n = 0;
    };
    auto w = std::make_shared<Wait>();
    EngineRequest req;
    req.prompt = prompt;
    req.sampling.max_tokens = tokens;
    req.sampling.ignore_eos = true;
    req.on_token = [w](const TokenEvent& e) {
      std::lock_guard lock(w->m);
      if (e.id >= 0 && w->n++ == 0) w->first = Clock::now();
      if (e.finish != FinishReason::None) {
        w->done = true;
        w->cv.notify_one();
      }
    };
    const auto t0 = Clock::now();
    engine->submit(std::move(req));
    std::unique_lock lock(w->m);
    w->cv.wait(lock, [&] { return w->done; });
    return Sample{ms(w->first - t0), ms(Clock::now() - t0), w->n};
  }
};

// One HTTP request on a kept-alive connection; streaming reads the SSE body as it arrives.
struct OverHttp {
  int port;
  std::string body;
  bool stream;
  int tokens;
  // One kept-alive connection per client thread.
  std::function<Sample()> client() const {
    auto ioc = std::make_shared<net::io_context>();
    auto stream_ = std::make_shared<beast::tcp_stream>(*ioc);
    stream_->connect(net::ip::tcp::endpoint(net::ip::make_address("127.0.0.1"), static_cast<unsigned short>(port)));
    stream_->socket().set_option(net::ip::tcp::no_delay(true));
    return [this, ioc, stream_] { return request(*stream_); };
  }
  Sample request(beast::tcp_stream& conn) const {
    const std::string req = fmt::format(
        "POST /v1/completions HTTP/1.1\r\nHost: b\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
        body.size(), body);
    const auto t0 = Clock::now();
    net::write(conn, net::buffer(req));
    Sample s;
    if (!stream) {
      beast::flat_buffer buf;
      http::response<http::string_body> res;
      http::read(conn, buf, res);
      s.ttft = s.total = ms(Clock::now() - t0);
      s.tokens = tokens;
      return s;
    }
    std::string got;
    char buf[16384];
    bool first = false;
    while (!got.ends_with("0\r\n\r\n") || got.find("[DONE]") == std::string::npos) {
      got.append(buf, conn.read_some(net::buffer(buf)));
      if (!first && got.find("\"text\"") != std::string::npos) {
        first = true;
        s.ttft = ms(Clock::now() - t0);
      }
    }
    s.total = ms(Clock::now() - t0);
    s.tokens = tokens;
    return s;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The HTTP gateway's overhead per request and per token, against the engine API directly"};
  std::string tokenizer_path, model;
  int requests = 2000, concurrency = 8, tokens = 16;
  app.add_option("--tokenizer", tokenizer_path)->required();
  app.add_option("--model", model, "Run this model on the real engine (one process) instead of the scripted one");
  app.add_option("--requests", requests)->capture_default_str();
  app.add_option("--concurrency", concurrency)->capture_default_str();
  app.add_option("--tokens", tokens, "Tokens per request")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  const Tokenizer tokenizer = Tokenizer::from_file(tokenizer_path);
  test::ScriptedEngine scripted(tokenizer, 1 << 20, std::chrono::microseconds(0));
  std::unique_ptr<Engine> real;
  if (!model.empty()) {
    EngineOptions o;
    o.model = model;
    real = start_engine(o);
  }
  Engine& engine = real ? *real : static_cast<Engine&>(scripted);
  HttpServerOptions http;
  http.port = 0;
  HttpServer server(http);
  OpenAiGateway gateway(engine, tokenizer, GatewayOptions{"bench", "", "", 1u << 20, "fast", 1});
  server.start([&gateway](std::shared_ptr<HttpExchange> ex) { gateway.handle(ex); });

  std::vector<int32_t> prompt{0, 9906, 2185, 13};
  fmt::print("{} requests, {} concurrent clients, {} tokens each ({})\n", requests, concurrency, tokens,
             real ? "model " + model : std::string("scripted engine, no model time"));
  const Direct direct{&engine, prompt, tokens};
  run_clients(concurrency * 2, concurrency, [&] { return direct; });  // warm-up: first steps, pages, caches
  report("engine API", run_clients(requests, concurrency, [&] { return direct; }));
  const std::string body = fmt::format(R"({{"prompt": [0, 9906, 2185, 13], "max_tokens": {}, "ignore_eos": true}})", tokens);
  const OverHttp whole{server.port(), body, false, tokens};
  report("HTTP /v1/completions", run_clients(requests, concurrency, [&] { return whole.client(); }));
  const std::string sbody = fmt::format(R"({{"prompt": [0, 9906, 2185, 13], "max_tokens": {}, "ignore_eos": true, "stream": true}})", tokens);
  const OverHttp streamed{server.port(), sbody, true, tokens};
  report("HTTP /v1/completions SSE", run_clients(requests, concurrency, [&] { return streamed.client(); }));
  server.stop_accepting();
  engine.shutdown(0);
  scripted.shutdown(0);
  server.stop();
  return 0;
}

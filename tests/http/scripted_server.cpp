// The gateway over ScriptedEngine, for the HTTP end-to-end tests of what a random model never
// writes (tool calls, reasoning, stop strings at known places) and of an engine that is down.
// Prints "flashline: serving NAME on http://HOST:PORT" on stderr when ready; SIGTERM/SIGINT stop it.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <CLI/CLI.hpp>

#include "serving/http_server.h"
#include "serving/openai_gateway.h"
#include "tests/http/scripted_engine.h"

int main(int argc, char** argv) {
  using namespace flashline;
  CLI::App app{"flashline gateway over a scripted engine (tests)"};
  std::string tokenizer_path, api_key, name = "scripted";
  int port = 0, interval_us = 1000, context_limit = 4096;
  std::size_t max_queue = 1024, max_body = 1u << 20;
  bool unhealthy = false;
  double shutdown_timeout = 30;
  app.add_option("--tokenizer", tokenizer_path)->required();
  app.add_option("--port", port);
  app.add_option("--interval-us", interval_us, "Microseconds between tokens");
  app.add_option("--context-limit", context_limit);
  app.add_option("--api-key", api_key);
  app.add_option("--max-queue", max_queue);
  app.add_option("--max-body-bytes", max_body);
  app.add_option("--served-model-name", name);
  app.add_option("--shutdown-timeout", shutdown_timeout);
  app.add_flag("--unhealthy", unhealthy, "The engine reports itself down");
  CLI11_PARSE(app, argc, argv);

  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  try {
    const Tokenizer tokenizer = Tokenizer::from_file(tokenizer_path);
    test::ScriptedEngine engine(tokenizer, context_limit, std::chrono::microseconds(interval_us));
    engine.set_healthy(!unhealthy);
    HttpServerOptions http;
    http.port = port;
    http.max_body_bytes = max_body;
    http.error_body = [](int status, const std::string& m) { return OpenAiGateway::error_json(status, m); };
    HttpServer server(http);
    GatewayOptions g;
    g.served_model_name = name;
    g.api_key = api_key;
    g.max_queue = max_queue;
    OpenAiGateway gateway(engine, tokenizer, g);
    server.start([&gateway](std::shared_ptr<HttpExchange> ex) { gateway.handle(ex); });
    fmt::print(stderr, "flashline: serving {} on http://127.0.0.1:{}\n", name, server.port());
    int sig = 0;
    sigwait(&stop_signals, &sig);
    server.stop_accepting();
    gateway.drain(shutdown_timeout);
    engine.shutdown(1.0);
    server.stop();
  } catch (const std::exception& e) {
    fmt::print(stderr, "scripted_server: error: {}\n", e.what());
    return 2;
  }
  return 0;
}

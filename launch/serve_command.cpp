// `flashline serve`: the OpenAI-compatible HTTP gateway on world rank 0 (or the only process).
// Other ranks of a plan's world run their engine loop inside start_engine and exit 0 when rank 0
// shuts the engine down. SIGTERM/SIGINT/SIGUSR1: stop accepting, let requests in flight finish for
// up to --shutdown-timeout seconds, abort the rest, shut the engine down, exit 0.
#include <fmt/format.h>
#include <pthread.h>
#include <signal.h>

#include <chrono>

#include "base/input_error.h"
#include "launch/commands.h"
#include "launch/engine_bootstrap.h"
#include "serving/http_server.h"
#include "serving/openai_gateway.h"
#include "serving/tokenizer.h"

namespace flashline {
namespace {

struct ServeOptions {
  EngineOptions engine;
  std::string numerics = "fast";
  std::string tokenizer;
  std::string host = "127.0.0.1";
  int port = 8000;
  int io_threads = 2;
  std::string served_model_name = "deepseek-v4-flash";
  std::string api_key;
  std::size_t max_body_bytes = 32u << 20;
  std::size_t max_queue = 1024;
  double shutdown_timeout = 30.0;
};

void run_serve(ServeOptions& o) {
  finish_engine_flags(o.engine, o.numerics);
  if (o.max_queue < 1) throw InputError("--max-queue: expected a number >= 1");
  if (o.shutdown_timeout < 0) throw InputError("--shutdown-timeout: expected seconds >= 0");
  // Every thread started from here on (engine, I/O) inherits the mask, so only the main thread's
  // sigwait sees the signals.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  // mpirun forwards SIGUSR1 to every rank without killing the job (SIGTERM to mpirun kills every
  // rank a few seconds later): the graceful stop of a world. Blocked on every rank, only rank 0
  // acts on it; the others end when rank 0 shuts the engine down.
  sigaddset(&stop_signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  // Before the engine: a bad tokenizer must not cost a model load.
  const Tokenizer tokenizer = Tokenizer::from_file(o.tokenizer);
  std::unique_ptr<Engine> engine = start_engine(o.engine);
  if (!engine) return;  // a rank other than 0: its loop has ended

  HttpServerOptions http;
  http.host = o.host;
  http.port = o.port;
  http.io_threads = o.io_threads;
  http.max_body_bytes = o.max_body_bytes;
  http.error_body = [](int status, const std::string& message) { return OpenAiGateway::error_json(status, message); };
  HttpServer server(http);  // declared before the gateway: exchanges the gateway holds die first

  GatewayOptions g;
  g.served_model_name = o.served_model_name;
  g.model_path = o.engine.model;
  g.api_key = o.api_key;
  g.max_queue = o.max_queue;
  g.numerics = o.numerics;
  OpenAiGateway gateway(*engine, tokenizer, g);
  server.start([&gateway](std::shared_ptr<HttpExchange> ex) { gateway.handle(ex); });
  fmt::print(stderr, "flashline: serving {} on http://{}:{}\n", o.served_model_name,
             o.host.find(':') != std::string::npos ? "[" + o.host + "]" : o.host, server.port());

  int sig = 0;
  sigwait(&stop_signals, &sig);
  fmt::print(stderr, "flashline: {} received: no new connections; {} requests in flight\n",
             sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "SIGUSR1", gateway.in_flight());
  server.stop_accepting();
  const auto t0 = std::chrono::steady_clock::now();
  if (const std::size_t aborted = gateway.drain(o.shutdown_timeout))
    fmt::print(stderr, "flashline: aborted {} requests still in flight after {} s\n", aborted, o.shutdown_timeout);
  const double spent = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  engine->shutdown(std::max(0.0, o.shutdown_timeout - spent));
  server.stop();
  // Every rank's pool should be empty again: a page still used here was leaked by a request.
  for (const RankStats& r : engine->rank_stats())
    fmt::print(stderr, "flashline: rank {} (stage {}, lane {}): kv pages used {} of {}, live states {}, {} steps, {} preemptions\n",
               r.rank, r.stage, r.lane, r.pages_used, r.pages_total, r.live_states, r.steps, r.preemptions);
  engine.reset();  // its callbacks hold exchanges: they must go while the server's I/O context exists
  fmt::print(stderr, "flashline: stopped\n");
}

}  // namespace

void add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  auto* cmd = app.add_subcommand("serve", "OpenAI-compatible HTTP server (chat and text completions, SSE streaming, "
                                          "tools, thinking, metrics) on rank 0");
  add_engine_flags(*cmd, o->engine, o->numerics);
  cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.json of the model")->required();
  cmd->add_option("--host", o->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", o->port, "Port to listen on (0: any free port; the URL is printed on stderr)")
      ->capture_default_str();
  cmd->add_option("--io-threads", o->io_threads, "HTTP I/O threads")->capture_default_str();
  cmd->add_option("--served-model-name", o->served_model_name, "Model name clients send and /v1/models lists")
      ->capture_default_str();
  cmd->add_option("--api-key", o->api_key, "Require 'Authorization: Bearer KEY' on /v1 endpoints");
  cmd->add_option("--max-body-bytes", o->max_body_bytes, "Largest request body (larger: 413)")->capture_default_str();
  cmd->add_option("--max-queue", o->max_queue,
                  "Engine requests in flight at once, each choice counting (more: 429 with Retry-After)")
      ->capture_default_str();
  cmd->add_option("--shutdown-timeout", o->shutdown_timeout,
                  "Seconds requests in flight may take to finish after SIGTERM/SIGINT before they are aborted")
      ->capture_default_str();
  cmd->callback([o] { run_serve(*o); });
}

}  // namespace flashline

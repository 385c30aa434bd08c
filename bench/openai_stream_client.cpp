#include "bench/openai_stream_client.h"

#include <fmt/format.h>

#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without it

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <limits>
#include <nlohmann/json.hpp>
#include <sys/resource.h>

#include "base/input_error.h"

namespace flashline {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;
using nlohmann::json;

double seconds_between(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

// Streams are as long as the server makes them. Not boost::none: Boost 1.74's parser compares the
// Content-Length with the optional limit directly, so "no limit" refuses every sized body.
constexpr std::uint64_t kNoBodyLimit = std::numeric_limits<std::uint64_t>::max();

std::string short_text(std::string_view s) { return std::string(s.substr(0, 300)); }

}  // namespace

ServerEndpoint parse_base_url(const std::string& base_url, const std::string& endpoint) {
  const std::string scheme = "http://";
  if (!base_url.starts_with(scheme))
    throw InputError(fmt::format("--base-url {}: expected http://HOST[:PORT][/PATH] (plain HTTP; put a TLS proxy in "
                                 "front for https)",
                                 base_url));
  if (endpoint != "/v1/completions" && endpoint != "/v1/chat/completions")
    throw InputError(fmt::format("--endpoint {}: expected /v1/completions or /v1/chat/completions", endpoint));
  ServerEndpoint s;
  std::string rest = base_url.substr(scheme.size());
  const auto slash = rest.find('/');
  std::string authority = rest.substr(0, slash);
  s.prefix = slash == std::string::npos ? "" : rest.substr(slash);
  while (s.prefix.ends_with('/')) s.prefix.pop_back();
  const auto colon = authority.rfind(':');
  const auto bracket = authority.find(']');  // [IPv6]:port
  if (colon != std::string::npos && (bracket == std::string::npos || colon > bracket)) {
    s.host = authority.substr(0, colon);
    s.port = authority.substr(colon + 1);
  } else {
    s.host = authority;
    s.port = "80";
  }
  if (s.host.starts_with('[') && s.host.ends_with(']')) s.host = s.host.substr(1, s.host.size() - 2);
  if (s.host.empty() || s.port.empty() || s.port.find_first_not_of("0123456789") != std::string::npos)
    throw InputError(fmt::format("--base-url {}: expected http://HOST[:PORT][/PATH]", base_url));
  s.target = s.prefix + endpoint;
  s.chat = endpoint == "/v1/chat/completions";
  return s;
}

std::string stream_request_body(const BenchPrompt& prompt, const StreamRequestOptions& o, bool chat) {
  json body = {{"model", o.model},
               {"max_tokens", prompt.output_len},
               {"temperature", o.temperature},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (chat)
    body["messages"] = json::array({{{"role", "user"}, {"content", prompt.prompt}}});
  else
    body["prompt"] = prompt.prompt;
  if (o.ignore_eos) body["ignore_eos"] = true;
  return body.dump();
}

void SseRecorder::feed(std::string_view bytes, double t_s) {
  pending_.append(bytes);
  for (;;) {
    // Events end with a blank line; servers use \n or \r\n.
    std::size_t end = pending_.find("\n\n"), skip = 2;
    const std::size_t crlf = pending_.find("\r\n\r\n");
    if (crlf != std::string::npos && (end == std::string::npos || crlf < end)) end = crlf, skip = 4;
    if (end == std::string::npos) return;
    const std::string block = pending_.substr(0, end);
    pending_.erase(0, end + skip);
    std::size_t pos = 0;
    while (pos <= block.size()) {
      std::size_t nl = block.find('\n', pos);
      if (nl == std::string::npos) nl = block.size();
      std::string_view line(block.data() + pos, nl - pos);
      if (line.ends_with('\r')) line.remove_suffix(1);
      if (line.starts_with("data:")) {
        line.remove_prefix(5);
        while (line.starts_with(' ')) line.remove_prefix(1);
        event(line, t_s);
      }
      pos = nl + 1;
    }
  }
}

void SseRecorder::event(std::string_view data, double t_s) {
  if (data == "[DONE]") {
    done_ = true;
    return;
  }
  json chunk = json::parse(data, nullptr, false);
  if (chunk.is_discarded() || !chunk.is_object()) {
    record_.error = fmt::format("server sent a chunk that is not JSON: {}", short_text(data));
    return;
  }
  if (chunk.contains("error")) {
    const auto& e = chunk["error"];
    record_.error = e.is_object() && e.contains("message") && e["message"].is_string()
                        ? e["message"].get<std::string>()
                        : short_text(data);
    return;
  }
  if (chunk.contains("choices") && chunk["choices"].is_array() && !chunk["choices"].empty()) {
    const auto& choice = chunk["choices"][0];
    std::string text;
    auto take = [&](const json& obj, const char* key) {
      if (obj.is_object() && obj.contains(key) && obj[key].is_string()) text += obj[key].get<std::string>();
    };
    if (chat_) {
      if (choice.contains("delta")) {
        take(choice["delta"], "reasoning_content");
        take(choice["delta"], "content");
      }
    } else {
      take(choice, "text");
    }
    if (!text.empty()) {
      if (chunks_ == 0)
        record_.ttft_s = t_s;
      else
        record_.itl_s.push_back(t_s - last_s_);
      last_s_ = t_s;
      ++chunks_;
      record_.latency_s = t_s;
      record_.generated_text += text;
    }
  }
  if (chunk.contains("usage") && chunk["usage"].is_object()) {
    const auto& u = chunk["usage"];
    if (u.contains("prompt_tokens") && u["prompt_tokens"].is_number_integer())
      record_.prompt_tokens = u["prompt_tokens"].get<int64_t>();
    if (u.contains("completion_tokens") && u["completion_tokens"].is_number_integer()) {
      record_.output_tokens = u["completion_tokens"].get<int64_t>();
      usage_seen_ = true;
    }
  }
}

void SseRecorder::finish(double t_s) {
  if (!pending_.empty()) feed("\n\n", t_s);  // a last event without its blank line
  if (chunks_ == 0) record_.latency_s = t_s;
  if (record_.error.empty() && !done_) record_.error = "the stream ended before data: [DONE]";
  record_.success = record_.error.empty();
}

namespace {

struct LoadRun {
  const ServerEndpoint& server;
  const StreamRequestOptions& options;
  const std::vector<BenchPrompt>& prompts;
  const std::vector<double>& offsets;
  tcp::resolver::results_type endpoints;
  Clock::time_point start;
  std::vector<RequestRecord> records;
  std::vector<int64_t> chunks;
  std::vector<bool> usage;
  std::size_t next = 0;
  int done = 0;
  double last_end_s = 0;
  std::function<void(int, int)> progress;
};

http::request<http::string_body> make_post(const ServerEndpoint& s, const std::string& api_key, std::string body) {
  http::request<http::string_body> req{http::verb::post, s.target, 11};
  req.set(http::field::host, s.host + ":" + s.port);
  req.set(http::field::content_type, "application/json");
  req.set(http::field::accept, "text/event-stream");
  req.set(http::field::user_agent, "flashline-bench");
  if (!api_key.empty()) req.set(http::field::authorization, "Bearer " + api_key);
  req.body() = std::move(body);
  req.prepare_payload();
  return req;
}

net::awaitable<void> send_one(LoadRun& run, std::size_t i) {
  RequestRecord& rec = run.records[i];
  auto executor = co_await net::this_coro::executor;
  tcp::socket socket(executor);
  boost::system::error_code ec;
  const auto t0 = Clock::now();
  rec.start_s = seconds_between(run.start, t0);
  auto fail = [&](const std::string& what) {
    rec.error = fmt::format("{}: {}", what, ec.message());
    rec.latency_s = seconds_between(t0, Clock::now());
  };
  co_await net::async_connect(socket, run.endpoints, net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return fail(fmt::format("connecting to {}:{}", run.server.host, run.server.port));
  auto req = make_post(run.server, run.options.api_key, stream_request_body(run.prompts[i], run.options, run.server.chat));
  co_await http::async_write(socket, req, net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return fail("sending the request");
  beast::flat_buffer buffer;
  http::response_parser<http::buffer_body> parser;
  parser.body_limit(kNoBodyLimit);
  co_await http::async_read_header(socket, buffer, parser, net::redirect_error(net::use_awaitable, ec));
  if (ec) co_return fail("reading the response header");
  const auto status = parser.get().result_int();
  SseRecorder sse(rec, run.server.chat);
  std::string error_body;
  char chunk[16384];
  while (!parser.is_done()) {
    parser.get().body().data = chunk;
    parser.get().body().size = sizeof chunk;
    // One read at a time, so each piece of the stream is timed when it arrives.
    co_await http::async_read_some(socket, buffer, parser, net::redirect_error(net::use_awaitable, ec));
    if (ec == http::error::need_buffer) ec = {};
    if (ec) break;
    const std::size_t n = sizeof chunk - parser.get().body().size;
    if (status == 200)
      sse.feed(std::string_view(chunk, n), seconds_between(t0, Clock::now()));
    else if (error_body.size() < 4096)
      error_body.append(chunk, n);
  }
  const double end_s = seconds_between(t0, Clock::now());
  if (status != 200) {
    rec.error = fmt::format("HTTP {}: {}", status, short_text(error_body));
    rec.latency_s = end_s;
  } else if (ec && ec != http::error::end_of_stream) {
    fail("reading the stream");
  } else {
    sse.finish(end_s);
  }
  run.chunks[i] = sse.chunks();
  run.usage[i] = sse.usage_seen();
  socket.close(ec);
}

net::awaitable<void> worker(LoadRun& run) {
  auto executor = co_await net::this_coro::executor;
  net::steady_timer timer(executor);
  while (run.next < run.prompts.size()) {
    const std::size_t i = run.next++;
    timer.expires_at(run.start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(run.offsets[i])));
    boost::system::error_code ec;
    co_await timer.async_wait(net::redirect_error(net::use_awaitable, ec));
    co_await send_one(run, i);
    run.last_end_s = std::max(run.last_end_s, seconds_between(run.start, Clock::now()));
    ++run.done;
    if (run.progress) run.progress(run.done, static_cast<int>(run.prompts.size()));
  }
}

// One socket per request in flight: with an infinite rate and no concurrency limit that is every
// request at once, past the usual soft limit of 1024 descriptors; take what the hard limit allows.
void raise_open_file_limit(std::size_t sockets) {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= sockets + 64) return;
  limit.rlim_cur = std::min<rlim_t>(limit.rlim_max, sockets + 64);
  setrlimit(RLIMIT_NOFILE, &limit);
}

tcp::resolver::results_type resolve(net::io_context& io, const ServerEndpoint& s) {
  tcp::resolver resolver(io);
  boost::system::error_code ec;
  auto endpoints = resolver.resolve(s.host, s.port, ec);
  if (ec) throw InputError(fmt::format("--base-url: cannot resolve {}: {}", s.host, ec.message()));
  return endpoints;
}

}  // namespace

LoadResult run_load(const ServerEndpoint& server, const StreamRequestOptions& options,
                    const std::vector<BenchPrompt>& prompts, const std::vector<double>& offsets_s, int max_concurrency,
                    const std::function<void(int, int)>& progress) {
  raise_open_file_limit(prompts.size());
  net::io_context io(1);
  LoadRun run{server, options, prompts, offsets_s, resolve(io, server), {}, {}, {}, {}, 0, 0, 0, progress};
  run.records.resize(prompts.size());
  run.chunks.resize(prompts.size());
  run.usage.resize(prompts.size());
  const std::size_t workers =
      max_concurrency > 0 ? std::min<std::size_t>(static_cast<std::size_t>(max_concurrency), prompts.size())
                          : prompts.size();
  run.start = Clock::now();
  for (std::size_t w = 0; w < workers; ++w) net::co_spawn(io, worker(run), net::detached);
  io.run();
  LoadResult result;
  result.duration_s = run.last_end_s;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    RequestRecord& r = run.records[i];
    if (r.prompt_tokens == 0 && prompts[i].prompt_len >= 0) r.prompt_tokens = prompts[i].prompt_len;
    r.tokenizer_prompt_tokens = prompts[i].prompt_len;
    r.server_usage = run.usage[i];
    if (!r.server_usage) r.output_tokens = run.chunks[i];
  }
  result.records = std::move(run.records);
  return result;
}

std::string http_get_text(const ServerEndpoint& server, const std::string& path, const std::string& api_key) {
  net::io_context io;
  const auto endpoints = resolve(io, server);
  tcp::socket socket(io);
  boost::system::error_code ec;
  const std::string url = fmt::format("http://{}:{}{}{}", server.host, server.port, server.prefix, path);
  net::connect(socket, endpoints, ec);
  if (ec)
    throw InputError(fmt::format("--base-url: cannot connect to {}:{} ({}): is the server up?", server.host,
                                 server.port, ec.message()));
  http::request<http::empty_body> req{http::verb::get, server.prefix + path, 11};
  req.set(http::field::host, server.host + ":" + server.port);
  if (!api_key.empty()) req.set(http::field::authorization, "Bearer " + api_key);
  http::write(socket, req, ec);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(kNoBodyLimit);
  if (!ec) http::read(socket, buffer, parser, ec);
  if (ec) throw InputError(fmt::format("GET {}: {}", url, ec.message()));
  if (parser.get().result_int() != 200)
    throw InputError(fmt::format("GET {}: HTTP {}: {}", url, parser.get().result_int(), short_text(parser.get().body())));
  return parser.get().body();
}

std::string first_served_model(const ServerEndpoint& server, const std::string& api_key) {
  const std::string url = fmt::format("http://{}:{}{}/v1/models", server.host, server.port, server.prefix);
  const json models = json::parse(http_get_text(server, "/v1/models", api_key), nullptr, false);
  if (models.is_discarded() || !models.contains("data") || !models["data"].is_array() || models["data"].empty() ||
      !models["data"][0].is_object() || !models["data"][0].contains("id") || !models["data"][0]["id"].is_string())
    throw InputError(fmt::format("GET {}: no data[0].id in the answer (pass --model NAME)", url));
  return models["data"][0]["id"].get<std::string>();
}

}  // namespace flashline

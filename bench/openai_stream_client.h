#pragma once
// The load generator's client: streaming OpenAI requests (/v1/completions or
// /v1/chat/completions) from one thread, many in flight at once (Boost.Beast on one Asio
// io_context, one coroutine per connection), each chunk timed as it arrives. Works against any
// OpenAI-compatible server over plain HTTP.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/bench_dataset.h"
#include "bench/latency_stats.h"

namespace flashline {

struct ServerEndpoint {
  std::string host, port;
  std::string prefix;  // the base URL's path ("" for http://host:port)
  std::string target;  // prefix + the endpoint, e.g. /v1/completions
  bool chat = false;   // the endpoint is a chat one (messages, deltas)
};
// http://HOST[:PORT][/prefix] + /v1/completions | /v1/chat/completions; InputError naming the flag.
ServerEndpoint parse_base_url(const std::string& base_url, const std::string& endpoint);

struct StreamRequestOptions {
  std::string model;
  std::string api_key;     // sent as Authorization: Bearer
  bool ignore_eos = false; // vLLM's extension: generate exactly max_tokens
  double temperature = 0;
};

// The JSON body of one streamed request (usage asked for in the last chunk).
std::string stream_request_body(const BenchPrompt& prompt, const StreamRequestOptions& options, bool chat);

// Turns the bytes of one SSE response into a RequestRecord as they arrive: a chunk whose first
// choice carries text (completions `text`, chat `delta.content` or `delta.reasoning_content`)
// is a token chunk; `usage` gives the token counts; `error` fails the request.
class SseRecorder {
 public:
  SseRecorder(RequestRecord& record, bool chat) : record_(record), chat_(chat) {}
  void feed(std::string_view bytes, double t_s);  // t_s: arrival time, from the request's start
  void finish(double t_s);                        // the response ended at t_s
  int64_t chunks() const { return chunks_; }
  bool usage_seen() const { return usage_seen_; }

 private:
  void event(std::string_view data, double t_s);
  RequestRecord& record_;
  bool chat_;
  std::string pending_;
  int64_t chunks_ = 0;
  double last_s_ = 0;
  bool usage_seen_ = false, done_ = false;
};

// When request i is sent: at offsets_s[i] from the start, or later when max_concurrency (> 0)
// requests are already in flight. Records come back in the order of `prompts`; the token counts
// fall back to the tokenizer (or the chunk count) where the server sent no usage.
struct LoadResult {
  std::vector<RequestRecord> records;
  double duration_s = 0;  // first send to last response
};
LoadResult run_load(const ServerEndpoint& server, const StreamRequestOptions& options,
                    const std::vector<BenchPrompt>& prompts, const std::vector<double>& offsets_s,
                    int max_concurrency, const std::function<void(int done, int total)>& progress = {});

// GET {base}{path}: the body of a 200 answer; InputError naming the URL otherwise.
std::string http_get_text(const ServerEndpoint& server, const std::string& path, const std::string& api_key);

// GET {base}/v1/models: the first model's id (what the benchmark asks for when --model is not
// given). InputError naming the URL when the server cannot be reached or answers otherwise.
std::string first_served_model(const ServerEndpoint& server, const std::string& api_key);

}  // namespace flashline

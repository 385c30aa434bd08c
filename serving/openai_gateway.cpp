#include "serving/openai_gateway.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>

#include "serving/api_error.h"
#include "serving/chat_format.h"
#include "serving/choice_output.h"
#include "serving/openai_request.h"
#include "serving/utf8.h"

namespace flashline {

namespace {

using Clock = std::chrono::steady_clock;
using Json = OrderedJson;

double seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

std::string dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

std::string random_hex(std::size_t chars) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(chars, '0');
  for (auto& c : out) c = kDigits[rng() & 15];
  return out;
}

std::int64_t unix_now() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

Json error_object(int status, const std::string& message, const std::string& type, const std::string& param,
                  const std::string& code) {
  Json e;
  e["message"] = message;
  e["type"] = type;
  e["param"] = param.empty() ? Json() : Json(param);
  e["code"] = code.empty() ? Json() : Json(code);
  (void)status;
  return Json{{"error", e}};
}

// Logprobs never hold -inf in JSON (a token the sampler could not pick): OpenAI's floor instead.
double finite_logprob(float lp) { return std::isfinite(lp) ? static_cast<double>(lp) : -9999.0; }

Json bytes_of(std::string_view s) {
  Json a = Json::array();
  for (unsigned char c : s) a.push_back(static_cast<int>(c));
  return a;
}

// The text of one token for logprobs; an id the tokenizer lacks (a model vocabulary padded past
// the tokenizer's) shows as U+FFFD.
std::string token_text(const Tokenizer& t, int id) {
  try {
    return utf8::to_valid_lossy(t.token_bytes(id));
  } catch (const InputError&) {
    return std::string(utf8::kReplacement);
  }
}

// encode_chat's InputError names a JSON path first ("messages[2].role: ..."): use it as `param`.
std::string param_of(const std::string& message) {
  const std::size_t colon = message.find(": ");
  if (colon == std::string::npos) return {};
  const std::string head = message.substr(0, colon);
  return head.starts_with("messages") ? head : std::string();
}

}  // namespace

struct OpenAiGateway::Job : std::enable_shared_from_this<Job> {
  struct Prompt {
    std::vector<std::int32_t> ids;
    std::string text;  // for echo
  };
  struct Choice {
    Choice(const Tokenizer& t, OutputKind k, ThinkingMode m, std::vector<std::string> stops)
        : out(t, k, m, std::move(stops)) {}
    int index = 0;
    std::size_t prompt = 0;
    std::int64_t engine_id = -1;
    ChoiceOutput out;
    std::vector<std::int32_t> ids;  // every generated token, the final EOS included
    Json logprobs = Json::array();  // chat: one entry per shown token
    std::size_t logprobs_sent = 0;
    Json lp_tokens = Json::array(), lp_values = Json::array(), lp_top = Json::array(), lp_offsets = Json::array();
    std::size_t lp_sent = 0;  // completions: entries already streamed
    std::size_t text_bytes = 0;
    std::size_t calls_sent = 0;
    std::size_t ids_sent = 0;  // streamed with return_token_ids
    bool done = false, engine_done = false, has_token = false;
    std::string finish_reason;
    Clock::time_point last_token;
  };

  Job(OpenAiGateway& g, std::shared_ptr<HttpExchange> e, OutputKind k) : gw(g), ex(std::move(e)), kind(k) {}

  OpenAiGateway& gw;
  std::shared_ptr<HttpExchange> ex;
  OutputKind kind;
  ThinkingMode mode = ThinkingMode::Chat;
  GenerationSpec gen;
  bool echo = false;
  std::string id;
  std::int64_t created = unix_now();
  Clock::time_point arrival = Clock::now();
  std::vector<Prompt> prompts;
  std::vector<std::unique_ptr<Choice>> choices;
  int open = 0;
  bool answered = false, first_token_seen = false;
  std::string error;

  const char* object() const { return kind == OutputKind::Chat ? "chat.completion" : "text_completion"; }

  Json envelope(bool chunk) const {
    Json j;
    j["id"] = id;
    j["object"] = kind == OutputKind::Chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
    j["created"] = created;
    j["model"] = gw.options_.served_model_name;
    j["system_fingerprint"] = gw.fingerprint_;
    j["choices"] = Json::array();
    return j;
  }

  Json usage() const {
    std::size_t prompt = 0, completion = 0;
    for (const auto& p : prompts) prompt += p.ids.size();
    for (const auto& c : choices) completion += c->ids.size();
    return Json{{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
  }

  void submit() {
    const std::size_t n = choices.size();
    gw.reserve(n);
    std::size_t submitted = 0;
    try {
      for (; submitted < n; ++submitted) {
        Choice& c = *choices[submitted];
        EngineRequest r;
        r.prompt = prompts[c.prompt].ids;
        r.sampling = gen.sampling;
        if (gen.seed) {
          r.sampling.seed = *gen.seed + static_cast<std::uint64_t>(c.index);
          r.sampling.has_seed = true;
        }
        r.sampling.logprobs = gen.logprobs ? gen.top_logprobs : -1;
        const std::size_t i = submitted;
        r.on_token = [job = shared_from_this(), i](const TokenEvent& e) {
          job->ex->post([job, i, e] { job->guarded_event(i, e); });
        };
        c.engine_id = gw.engine_.submit(std::move(r));
        std::lock_guard lock(gw.live_mutex_);
        gw.live_.insert(c.engine_id);
      }
    } catch (const InputError& e) {
      gw.admitted_ -= n - submitted;
      abort();
      throw ApiError::bad_request(e.what());
    } catch (...) {
      gw.admitted_ -= n - submitted;
      abort();
      throw;
    }
    gw.metrics_.observe_queue_time(seconds(Clock::now() - arrival));
    open = static_cast<int>(n);
    std::weak_ptr<Job> weak = shared_from_this();
    ex->on_disconnect([weak] {
      if (auto job = weak.lock()) job->abort();
    });
    if (gen.stream) {
      ex->begin_stream(200, "text/event-stream");
      for (const auto& c : choices) {
        Json chunk = envelope(true);
        if (kind == OutputKind::Chat) {
          chunk["choices"].push_back(Json{{"index", c->index},
                                          {"delta", Json{{"role", "assistant"}, {"content", ""}}},
                                          {"logprobs", nullptr},
                                          {"finish_reason", nullptr}});
        } else {
          if (!echo) continue;
          const std::string& text = prompts[c->prompt].text;
          chunk["choices"].push_back(
              Json{{"index", c->index}, {"text", text}, {"logprobs", nullptr}, {"finish_reason", nullptr}});
        }
        send_chunk(chunk);
      }
    }
  }

  // Stops every choice still generating (client gone, or shutdown).
  void abort() {
    for (const auto& c : choices)
      if (c->engine_id >= 0 && !c->engine_done) gw.engine_.abort(c->engine_id);
  }

  void send_chunk(Json& chunk) {
    if (gen.include_usage) chunk["usage"] = nullptr;
    if (gen.return_token_ids) {
      // The ids generated since this choice's last chunk (vLLM's streamed token_ids).
      for (auto& c : chunk["choices"]) {
        Choice& choice = *choices[c["index"].get<std::size_t>()];
        c["token_ids"] = std::vector<std::int32_t>(choice.ids.begin() + static_cast<std::ptrdiff_t>(choice.ids_sent), choice.ids.end());
        choice.ids_sent = choice.ids.size();
      }
    }
    ex->send("data: " + dump(chunk) + "\n\n");
  }

  void add_logprob(Choice& c, const TokenEvent& e) {
    const std::string text = token_text(gw.tokenizer_, e.id);
    if (kind == OutputKind::Chat) {
      Json top = Json::array();
      for (std::size_t k = 0; k < e.top.size() && static_cast<int>(k) < gen.top_logprobs; ++k) {
        const std::string t = token_text(gw.tokenizer_, e.top[k].first);
        top.push_back(Json{{"token", t}, {"logprob", finite_logprob(e.top[k].second)}, {"bytes", bytes_of(t)}});
      }
      c.logprobs.push_back(Json{{"token", text}, {"logprob", finite_logprob(e.logprob)}, {"bytes", bytes_of(text)},
                                {"top_logprobs", top}});
    } else {
      c.lp_tokens.push_back(text);
      c.lp_values.push_back(finite_logprob(e.logprob));
      Json top = Json::object();
      for (std::size_t k = 0; k < e.top.size() && static_cast<int>(k) < gen.top_logprobs; ++k)
        top[token_text(gw.tokenizer_, e.top[k].first)] = finite_logprob(e.top[k].second);
      c.lp_top.push_back(top);
      c.lp_offsets.push_back(c.text_bytes);
    }
  }

  // Logprobs of the tokens not yet sent (streaming), or all of them.
  Json logprobs_json(Choice& c, bool pending_only) {
    if (!gen.logprobs) return nullptr;
    if (kind == OutputKind::Chat) {
      Json content = Json::array();
      for (std::size_t k = pending_only ? c.logprobs_sent : 0; k < c.logprobs.size(); ++k) content.push_back(c.logprobs[k]);
      c.logprobs_sent = c.logprobs.size();
      return Json{{"content", content}};
    }
    const std::size_t from = pending_only ? c.lp_sent : 0;
    auto slice = [&](const Json& a) {
      Json out = Json::array();
      for (std::size_t k = from; k < a.size(); ++k) out.push_back(a[k]);
      return out;
    };
    Json j{{"tokens", slice(c.lp_tokens)},
           {"token_logprobs", slice(c.lp_values)},
           {"top_logprobs", slice(c.lp_top)},
           {"text_offset", slice(c.lp_offsets)}};
    c.lp_sent = c.lp_tokens.size();
    return j;
  }

  // A failure while turning an event into text or JSON fails this request only.
  void guarded_event(std::size_t ci, const TokenEvent& e) {
    try {
      on_event(ci, e);
    } catch (const std::exception& ex_what) {
      Choice& c = *choices[ci];
      if (e.finish != FinishReason::None && !c.engine_done) {
        c.engine_done = true;
        gw.release(c.engine_id);
      }
      error = fmt::format("internal error: {}", ex_what.what());
      abort();
      for (auto& other : choices) other->done = true;
      open = 0;
      complete();
    }
  }

  void on_event(std::size_t ci, const TokenEvent& e) {
    Choice& c = *choices[ci];
    if (e.finish != FinishReason::None && !c.engine_done) {
      c.engine_done = true;
      gw.release(c.engine_id);
    }
    if (c.done) return;
    const auto now = Clock::now();
    ChoiceDelta delta;
    if (e.id >= 0) {
      if (!first_token_seen) {
        first_token_seen = true;
        gw.metrics_.observe_time_to_first_token(seconds(now - arrival));
      }
      if (c.has_token) gw.metrics_.observe_inter_token_latency(seconds(now - c.last_token));
      c.has_token = true;
      c.last_token = now;
      c.ids.push_back(e.id);
      const auto& stops = gen.sampling.stop_token_ids;
      const bool final_stop_token =
          e.finish == FinishReason::Stop &&
          ((e.id == gw.engine_.eos_id() && !gen.sampling.ignore_eos) || std::find(stops.begin(), stops.end(), e.id) != stops.end());
      if (!final_stop_token) {
        if (gen.logprobs) add_logprob(c, e);
        delta = c.out.push(e.id);
        c.text_bytes += delta.text.size();
      }
    }
    std::string reason;
    if (c.out.stopped()) {
      reason = "stop";
      if (!c.engine_done) gw.engine_.abort(c.engine_id);
    } else if (e.finish == FinishReason::Stop) {
      reason = "stop";
    } else if (e.finish == FinishReason::Length) {
      reason = "length";
    } else if (e.finish == FinishReason::Abort) {
      reason = "abort";
    } else if (e.finish == FinishReason::Error) {
      reason = "error";
      error = e.error.empty() ? std::string("the engine failed this request") : e.error;
    }
    if (!reason.empty()) {
      ChoiceDelta rest = c.out.finish();
      delta.text += rest.text;
      c.text_bytes += rest.text.size();
      delta.message.reasoning_content += rest.message.reasoning_content;
      delta.message.content += rest.message.content;
      delta.message.tool_calls.insert(delta.message.tool_calls.end(), rest.message.tool_calls.begin(),
                                      rest.message.tool_calls.end());
      gw.metrics_.count_finished(reason);
      if (kind == OutputKind::Chat && reason == "stop" && !c.out.message().tool_calls.empty()) reason = "tool_calls";
      c.done = true;
      c.finish_reason = reason;
      --open;
    }
    if (gen.stream) stream(c, delta);
    if (open == 0) complete();
  }

  void stream(Choice& c, const ChoiceDelta& d) {
    if (kind == OutputKind::Completion) {
      if (d.text.empty() && !c.done) return;
      Json chunk = envelope(true);
      chunk["choices"].push_back(Json{{"index", c.index},
                                      {"text", d.text},
                                      {"logprobs", logprobs_json(c, true)},
                                      {"finish_reason", c.done ? Json(c.finish_reason) : Json()}});
      send_chunk(chunk);
      return;
    }
    auto send_delta = [&](Json delta, bool last) {
      Json chunk = envelope(true);
      chunk["choices"].push_back(Json{{"index", c.index},
                                      {"delta", std::move(delta)},
                                      {"logprobs", logprobs_json(c, true)},
                                      {"finish_reason", last ? Json(c.finish_reason) : Json()}});
      send_chunk(chunk);
    };
    const CompletionDelta& m = d.message;
    if (!m.reasoning_content.empty() || !m.content.empty()) {
      Json delta = Json::object();
      if (!m.reasoning_content.empty()) delta["reasoning_content"] = m.reasoning_content;
      if (!m.content.empty()) delta["content"] = m.content;
      send_delta(std::move(delta), false);
    }
    for (const auto& call : m.tool_calls) {
      const std::size_t k = c.calls_sent++;
      send_delta(Json{{"tool_calls", Json::array({Json{{"index", k},
                                                       {"id", "call_" + random_hex(24)},
                                                       {"type", "function"},
                                                       {"function", Json{{"name", call.name}, {"arguments", ""}}}}})}},
                 false);
      send_delta(Json{{"tool_calls", Json::array({Json{{"index", k}, {"function", Json{{"arguments", call.arguments}}}}})}},
                 false);
    }
    if (c.done) send_delta(Json::object(), true);
  }

  void complete() {
    if (answered) return;
    answered = true;
    gw.metrics_.observe_e2e_latency(seconds(Clock::now() - arrival));
    if (!error.empty()) {
      const std::string body = dump(error_object(500, error, "server_error", "", "engine_error"));
      if (gen.stream) {
        ex->send("data: " + body + "\n\ndata: [DONE]\n\n");
        ex->end_stream();
      } else {
        ex->respond(500, "application/json", body);
      }
      return;
    }
    if (gen.stream) {
      if (gen.include_usage) {
        Json chunk = envelope(true);
        chunk["usage"] = usage();
        ex->send("data: " + dump(chunk) + "\n\n");
      }
      ex->send("data: [DONE]\n\n");
      ex->end_stream();
      return;
    }
    Json body = envelope(false);
    for (auto& cp : choices) {
      Choice& c = *cp;
      Json choice{{"index", c.index}};
      if (kind == OutputKind::Chat) {
        const AssistantMessage& m = c.out.message();
        Json msg{{"role", "assistant"}};
        msg["content"] = m.content.empty() && !m.tool_calls.empty() ? Json() : Json(m.content);
        if (mode == ThinkingMode::Thinking) msg["reasoning_content"] = m.reasoning_content;
        if (!m.tool_calls.empty()) {
          Json calls = Json::array();
          for (const auto& call : m.tool_calls)
            calls.push_back(Json{{"id", "call_" + random_hex(24)},
                                 {"type", "function"},
                                 {"function", Json{{"name", call.name}, {"arguments", call.arguments}}}});
          msg["tool_calls"] = calls;
        }
        choice["message"] = msg;
      } else {
        choice["text"] = (echo ? prompts[c.prompt].text : std::string()) + c.out.text();
      }
      choice["logprobs"] = logprobs_json(c, false);
      choice["finish_reason"] = c.finish_reason;
      if (gen.return_token_ids) {
        choice["token_ids"] = c.ids;
        choice["prompt_token_ids"] = prompts[c.prompt].ids;
      }
      body["choices"].push_back(std::move(choice));
    }
    body["usage"] = usage();
    ex->respond(200, "application/json", dump(body));
  }
};

OpenAiGateway::OpenAiGateway(Engine& engine, const Tokenizer& tokenizer, GatewayOptions options)
    : engine_(engine),
      tokenizer_(tokenizer),
      options_(std::move(options)),
      metrics_(options_.served_model_name),
      fingerprint_(fmt::format("fp_flashline_{}_{}", kFlashlineVersion, options_.numerics)),
      created_(unix_now()) {}

OpenAiGateway::~OpenAiGateway() = default;

std::string OpenAiGateway::error_json(int status, const std::string& message) {
  std::string type = "invalid_request_error", code;
  if (status == 401) code = "invalid_api_key";
  if (status == 404) code = "not_found";
  if (status == 413) code = "request_too_large";
  if (status == 429) type = "rate_limit_error", code = "queue_full";
  if (status >= 500) type = "server_error";
  return dump(error_object(status, message, type, "", code));
}

std::size_t OpenAiGateway::in_flight() const {
  std::lock_guard lock(live_mutex_);
  return live_.size();
}

void OpenAiGateway::abort_all() {
  std::vector<std::int64_t> ids;
  {
    std::lock_guard lock(live_mutex_);
    ids.assign(live_.begin(), live_.end());
  }
  for (auto id : ids) engine_.abort(id);
}

std::size_t OpenAiGateway::drain(double timeout_s) {
  stop_admitting();
  auto wait_until = [&](Clock::time_point deadline) {
    while (in_flight() > 0 && Clock::now() < deadline) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  };
  wait_until(Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(timeout_s)));
  const std::size_t left = in_flight();
  if (left > 0) {
    abort_all();
    wait_until(Clock::now() + std::chrono::seconds(10));
  }
  // The last chunks are posted to the connections' strands: give them a moment to be written.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  return left;
}

void OpenAiGateway::reserve(std::size_t n) {
  const std::size_t before = admitted_.fetch_add(n);
  if (before + n > options_.max_queue) {
    admitted_ -= n;
    ApiError e(429, "rate_limit_error",
               fmt::format("too many requests in flight: {} admitted, this one needs {}, the limit is {} (--max-queue)",
                           before, n, options_.max_queue),
               "", "queue_full");
    e.retry_after = options_.retry_after_s;
    throw e;
  }
}

void OpenAiGateway::release(std::int64_t engine_id) {
  --admitted_;
  std::lock_guard lock(live_mutex_);
  live_.erase(engine_id);
}

void OpenAiGateway::check_model(const std::optional<std::string>& model) const {
  if (model && *model != options_.served_model_name)
    throw ApiError(404, "invalid_request_error",
                   fmt::format("The model `{}` does not exist (this server serves `{}`)", *model, options_.served_model_name),
                   "model", "model_not_found");
}

void OpenAiGateway::check_engine() const {
  if (draining_) throw ApiError(503, "server_error", "the server is shutting down", "", "shutting_down");
  if (!engine_.healthy())
    throw ApiError(503, "server_error", "the engine is not running (see GET /health)", "", "engine_unavailable");
}

void OpenAiGateway::reject(const std::shared_ptr<HttpExchange>& ex, const ApiError& e) {
  metrics_.count_rejected(e.status());
  std::vector<HttpHeader> headers;
  if (e.retry_after > 0) headers.push_back({"Retry-After", std::to_string(e.retry_after)});
  ex->respond(e.status(), "application/json", dump(error_object(e.status(), e.what(), e.type(), e.param(), e.code())),
              std::move(headers));
}

namespace {

OrderedJson parse_body(const HttpRequest& r) {
  try {
    return parse_ordered_json(r.body, "request body");
  } catch (const InputError& e) {
    throw ApiError::bad_request(e.what());
  }
}

}  // namespace

void OpenAiGateway::handle(const std::shared_ptr<HttpExchange>& ex) {
  const HttpRequest& r = ex->request();
  try {
    const bool get = r.method == "GET", post = r.method == "POST";
    if (r.path.starts_with("/v1/") && !options_.api_key.empty()) {
      const std::string_view auth = r.header("Authorization");
      if (auth.empty())
        throw ApiError(401, "invalid_request_error", "missing API key: send the header 'Authorization: Bearer KEY'", "",
                       "invalid_api_key");
      if (auth != "Bearer " + options_.api_key)
        throw ApiError(401, "invalid_request_error", "incorrect API key provided", "", "invalid_api_key");
    }
    auto method_check = [&](bool ok, const char* allowed) {
      if (!ok) throw ApiError(405, "invalid_request_error", fmt::format("{} {}: expected {}", r.method, r.path, allowed));
    };
    if (r.path == "/health") {
      method_check(get, "GET");
      if (!engine_.healthy()) throw ApiError(503, "server_error", "the engine is not running", "", "engine_unavailable");
      return ex->respond(200, "text/plain", "");
    }
    if (r.path == "/version") {
      method_check(get, "GET");
      return ex->respond(200, "application/json", dump(Json{{"version", kFlashlineVersion}}));
    }
    if (r.path == "/metrics") {
      method_check(get, "GET");
      return ex->respond(200, "text/plain; version=0.0.4; charset=utf-8", metrics_.render(engine_.stats()));
    }
    if (r.path == "/v1/models") {
      method_check(get, "GET");
      Json model{{"id", options_.served_model_name},
                 {"object", "model"},
                 {"created", created_},
                 {"owned_by", "flashline"},
                 {"root", options_.model_path},
                 {"parent", nullptr},
                 {"max_model_len", engine_.context_limit()}};
      return ex->respond(200, "application/json", dump(Json{{"object", "list"}, {"data", Json::array({model})}}));
    }
    if (r.path == "/v1/chat/completions") {
      method_check(post, "POST");
      return handle_chat(ex);
    }
    if (r.path == "/v1/completions") {
      method_check(post, "POST");
      return handle_completion(ex);
    }
    if (r.path == "/tokenize") {
      method_check(post, "POST");
      return handle_tokenize(ex);
    }
    if (r.path == "/detokenize") {
      method_check(post, "POST");
      return handle_detokenize(ex);
    }
    throw ApiError(404, "invalid_request_error", fmt::format("no such endpoint: {} {}", r.method, r.path), "", "not_found");
  } catch (const ApiError& e) {
    reject(ex, e);
  } catch (const InputError& e) {
    reject(ex, ApiError::bad_request(e.what()));
  } catch (const std::exception& e) {
    reject(ex, ApiError(500, "server_error", fmt::format("internal error: {}", e.what())));
  }
}

namespace {

void check_ids(const std::vector<std::int64_t>& ids, int vocab, const std::string& where) {
  for (std::size_t i = 0; i < ids.size(); ++i)
    if (ids[i] >= vocab)
      throw ApiError::bad_request(
          fmt::format("{}[{}]: token id {} is not in the vocabulary (0..{})", where, i, ids[i], vocab - 1),
          fmt::format("{}[{}]", where, i));
}

}  // namespace

void OpenAiGateway::handle_chat(const std::shared_ptr<HttpExchange>& ex) {
  const OrderedJson body = parse_body(ex->request());
  ChatRequest req = parse_chat_request(body);
  check_model(req.gen.model);
  auto job = std::make_shared<Job>(*this, ex, OutputKind::Chat);
  job->id = "chatcmpl-" + random_hex(32);
  job->mode = req.options.mode;
  std::string prompt;
  try {
    prompt = encode_chat(req.messages, req.options);
  } catch (const InputError& e) {
    throw ApiError::bad_request(e.what(), param_of(e.what()));
  }
  Job::Prompt p;
  for (int id : tokenizer_.encode(prompt)) p.ids.push_back(id);
  job->prompts.push_back(std::move(p));
  GenerationSpec& g = req.gen;
  const std::int64_t limit = engine_.context_limit(), plen = static_cast<std::int64_t>(job->prompts[0].ids.size());
  if (!g.max_tokens_given) g.sampling.max_tokens = static_cast<std::int32_t>(std::max<std::int64_t>(1, std::min<std::int64_t>(limit - plen, INT32_MAX)));
  if (plen + g.sampling.max_tokens > limit)
    throw ApiError::bad_request(
        fmt::format("This model's maximum context length is {} tokens. However, you requested {} tokens ({} in the "
                    "messages, {} in the completion). Please reduce the length of the messages or completion.",
                    limit, plen + g.sampling.max_tokens, plen, g.sampling.max_tokens),
        "messages", "context_length_exceeded");
  for (const auto& [id, bias] : g.sampling.logit_bias)
    if (id >= engine_.vocab_size())
      throw ApiError::bad_request(fmt::format("logit_bias.{}: token id {} is not in the vocabulary (0..{})", id, id,
                                              engine_.vocab_size() - 1),
                                  fmt::format("logit_bias.{}", id));
  job->gen = std::move(g);
  for (int i = 0; i < job->gen.n; ++i) {
    auto c = std::make_unique<Job::Choice>(tokenizer_, OutputKind::Chat, job->mode, job->gen.stop);
    c->index = i;
    job->choices.push_back(std::move(c));
  }
  check_engine();
  job->submit();
}

void OpenAiGateway::handle_completion(const std::shared_ptr<HttpExchange>& ex) {
  const OrderedJson body = parse_body(ex->request());
  CompletionRequest req = parse_completion_request(body);
  check_model(req.gen.model);
  if (req.echo && req.gen.logprobs)
    throw ApiError::bad_request("echo: not supported together with logprobs (prompt logprobs are not computed)", "echo");
  auto job = std::make_shared<Job>(*this, ex, OutputKind::Completion);
  job->id = "cmpl-" + random_hex(32);
  job->echo = req.echo;
  const std::int64_t limit = engine_.context_limit();
  for (std::size_t k = 0; k < req.prompts.size(); ++k) {
    const std::string where = req.prompts.size() == 1 ? std::string("prompt") : fmt::format("prompt[{}]", k);
    Job::Prompt p;
    if (const auto* text = std::get_if<std::string>(&req.prompts[k])) {
      for (int id : tokenizer_.encode(*text)) p.ids.push_back(id);
      p.text = *text;
    } else {
      const auto& ids = std::get<std::vector<std::int64_t>>(req.prompts[k]);
      check_ids(ids, std::min(engine_.vocab_size(), tokenizer_.vocab_size()), where);
      for (auto id : ids) p.ids.push_back(static_cast<std::int32_t>(id));
      if (req.echo) {
        std::vector<int> as_int(p.ids.begin(), p.ids.end());
        p.text = tokenizer_.decode(as_int);
      }
    }
    const std::int64_t plen = static_cast<std::int64_t>(p.ids.size());
    if (plen + req.gen.sampling.max_tokens > limit)
      throw ApiError::bad_request(
          fmt::format("This model's maximum context length is {} tokens. However, you requested {} tokens ({} in the "
                      "prompt, {} in the completion). Please reduce the length of the prompt or completion.",
                      limit, plen + req.gen.sampling.max_tokens, plen, req.gen.sampling.max_tokens),
          where, "context_length_exceeded");
    job->prompts.push_back(std::move(p));
  }
  for (const auto& [id, bias] : req.gen.sampling.logit_bias)
    if (id >= engine_.vocab_size())
      throw ApiError::bad_request(fmt::format("logit_bias.{}: token id {} is not in the vocabulary (0..{})", id, id,
                                              engine_.vocab_size() - 1),
                                  fmt::format("logit_bias.{}", id));
  job->gen = std::move(req.gen);
  for (std::size_t k = 0; k < job->prompts.size(); ++k)
    for (int i = 0; i < job->gen.n; ++i) {
      auto c = std::make_unique<Job::Choice>(tokenizer_, OutputKind::Completion, ThinkingMode::Chat, job->gen.stop);
      c->index = static_cast<int>(k) * job->gen.n + i;
      c->prompt = k;
      job->choices.push_back(std::move(c));
    }
  check_engine();
  job->submit();
}

void OpenAiGateway::handle_tokenize(const std::shared_ptr<HttpExchange>& ex) {
  const OrderedJson body = parse_body(ex->request());
  if (!body.is_object()) throw ApiError::bad_request("request body: expected a JSON object");
  std::string text;
  if (body.contains("messages")) {
    ChatOptions options;
    bool tools = false;
    OrderedJson messages = chat_messages_for_template(body, options, tools);
    try {
      text = encode_chat(messages, options);
    } catch (const InputError& e) {
      throw ApiError::bad_request(e.what(), param_of(e.what()));
    }
  } else {
    auto p = body.find("prompt");
    if (p == body.end() || !p->is_string())
      throw ApiError::bad_request("prompt: expected a string (or give messages)", "prompt");
    text = p->get<std::string>();
  }
  const std::vector<int> ids = tokenizer_.encode(text);
  Json out{{"count", ids.size()}, {"max_model_len", engine_.context_limit()}, {"tokens", ids}};
  auto strs = body.find("return_token_strs");
  if (strs != body.end() && strs->is_boolean() && strs->get<bool>()) {
    Json s = Json::array();
    for (int id : ids) s.push_back(utf8::to_valid_lossy(tokenizer_.token_bytes(id)));
    out["token_strs"] = s;
  } else {
    out["token_strs"] = nullptr;
  }
  ex->respond(200, "application/json", dump(out));
}

void OpenAiGateway::handle_detokenize(const std::shared_ptr<HttpExchange>& ex) {
  const OrderedJson body = parse_body(ex->request());
  if (!body.is_object()) throw ApiError::bad_request("request body: expected a JSON object");
  auto t = body.find("tokens");
  if (t == body.end() || !t->is_array()) throw ApiError::bad_request("tokens: expected an array of token ids", "tokens");
  std::vector<int> ids;
  for (std::size_t i = 0; i < t->size(); ++i) {
    const auto& v = (*t)[i];
    const std::string where = fmt::format("tokens[{}]", i);
    if (!v.is_number_integer() && !v.is_number_unsigned())
      throw ApiError::bad_request(fmt::format("{}: expected an integer, got {}", where, v.type_name()), where);
    const std::int64_t id = v.get<std::int64_t>();
    bool known = id >= 0 && id < tokenizer_.vocab_size();
    try {
      if (known) tokenizer_.token_bytes(static_cast<int>(id));
    } catch (const InputError&) {
      known = false;
    }
    if (!known) throw ApiError::bad_request(fmt::format("{}: token id {} is not in the vocabulary", where, id), where);
    ids.push_back(static_cast<int>(id));
  }
  ex->respond(200, "application/json", dump(Json{{"prompt", tokenizer_.decode(ids)}}));
}

}  // namespace flashline

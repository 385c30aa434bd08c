#include "serving/openai_request.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>

namespace flashline {

namespace {

std::string type_of(const OrderedJson& v) {
  if (v.is_binary()) return "number";  // an integer beyond 64 bits
  if (v.is_number_integer() || v.is_number_unsigned()) return "integer";
  if (v.is_number_float()) return "number";
  return v.type_name();
}

std::string join_path(const std::string& path, std::string_view key) {
  return path.empty() ? std::string(key) : fmt::format("{}.{}", path, key);
}

// Reads the fields of one JSON object, naming each by its path in errors.
class Fields {
 public:
  Fields(const OrderedJson& obj, std::string path) : obj_(obj), path_(std::move(path)) {}

  // The value, or nullptr when missing or null (the OpenAI API treats both as "not given").
  const OrderedJson* get(std::string_view key) const {
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  std::string path(std::string_view key) const { return join_path(path_, key); }

  [[noreturn]] void fail(std::string_view key, const std::string& what) const {
    throw ApiError::bad_request(fmt::format("{}: {}", path(key), what), path(key));
  }

  std::optional<bool> boolean(std::string_view key) const {
    const OrderedJson* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean()) fail(key, fmt::format("expected a boolean, got {}", type_of(*v)));
    return v->get<bool>();
  }

  std::optional<double> number(std::string_view key, double lo, double hi, bool lo_open = false) const {
    const OrderedJson* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_number()) fail(key, fmt::format("expected a number, got {}", type_of(*v)));
    const double x = v->get<double>();
    const bool in_range = (lo_open ? x > lo : x >= lo) && x <= hi;
    // The engine keeps a float: 1e-300 > 0, but as a float it is 0 (then refused later, unnamed).
    if (!in_range || (lo_open && !(static_cast<float>(x) > lo)))
      fail(key, fmt::format("expected a number {} {} and <= {}, got {}", lo_open ? ">" : ">=", lo, hi, x));
    return x;
  }

  std::optional<std::int64_t> integer(std::string_view key, std::int64_t lo, std::int64_t hi) const {
    const OrderedJson* v = get(key);
    if (!v) return std::nullopt;
    return integer_value(*v, path(key), lo, hi);
  }

  std::optional<std::string> string(std::string_view key) const {
    const OrderedJson* v = get(key);
    if (!v) return std::nullopt;
    if (!v->is_string()) fail(key, fmt::format("expected a string, got {}", type_of(*v)));
    return v->get<std::string>();
  }

  const OrderedJson* object(std::string_view key) const {
    const OrderedJson* v = get(key);
    if (v && !v->is_object()) fail(key, fmt::format("expected an object, got {}", type_of(*v)));
    return v;
  }

  const OrderedJson* array(std::string_view key) const {
    const OrderedJson* v = get(key);
    if (v && !v->is_array()) fail(key, fmt::format("expected an array, got {}", type_of(*v)));
    return v;
  }

  static std::int64_t integer_value(const OrderedJson& v, const std::string& where, std::int64_t lo, std::int64_t hi) {
    std::int64_t x = 0;
    bool ok = false;
    if (v.is_number_integer()) {
      x = v.get<std::int64_t>();
      ok = true;
    } else if (v.is_number_unsigned()) {
      ok = v.get<std::uint64_t>() <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
      x = ok ? static_cast<std::int64_t>(v.get<std::uint64_t>()) : 0;
    } else if (v.is_number_float()) {
      // 16.0 is an integer to Python clients; 16.5 is not.
      const double d = v.get<double>();
      ok = std::trunc(d) == d && std::abs(d) < 9.0e15;
      x = ok ? static_cast<std::int64_t>(d) : 0;
      if (!ok) throw ApiError::bad_request(fmt::format("{}: expected an integer, got {}", where, d), where);
    } else if (!v.is_binary()) {
      throw ApiError::bad_request(fmt::format("{}: expected an integer, got {}", where, type_of(v)), where);
    }
    if (!ok || x < lo || x > hi)
      throw ApiError::bad_request(
          fmt::format("{}: expected an integer from {} to {}, got {}", where, lo, hi, ok ? std::to_string(x) : std::string("a larger one")),
          where);
    return x;
  }

 private:
  const OrderedJson& obj_;
  std::string path_;
};

constexpr std::int64_t kMaxTokensLimit = std::numeric_limits<std::int32_t>::max();

void require_object(const OrderedJson& body) {
  if (!body.is_object())
    throw ApiError::bad_request(fmt::format("request body: expected a JSON object, got {}", type_of(body)));
}

// The sampling fields shared by both endpoints.
void read_generation(const Fields& f, GenerationSpec& g, bool chat) {
  g.model = f.string("model");
  SamplingParams& s = g.sampling;
  auto max_tokens = f.integer("max_tokens", 1, kMaxTokensLimit);
  if (chat) {
    if (auto m = f.integer("max_completion_tokens", 1, kMaxTokensLimit)) max_tokens = m;
  }
  if (max_tokens) {
    s.max_tokens = static_cast<std::int32_t>(*max_tokens);
    g.max_tokens_given = true;
  }
  if (auto t = f.number("temperature", 0.0, 2.0)) s.temperature = static_cast<float>(*t);
  if (auto p = f.number("top_p", 0.0, 1.0, true)) s.top_p = static_cast<float>(*p);
  if (auto k = f.integer("top_k", -1, std::numeric_limits<std::int32_t>::max())) s.top_k = static_cast<std::int32_t>(*k);
  if (auto p = f.number("min_p", 0.0, 1.0)) s.min_p = static_cast<float>(*p);
  if (auto p = f.number("presence_penalty", -2.0, 2.0)) s.presence_penalty = static_cast<float>(*p);
  if (auto p = f.number("frequency_penalty", -2.0, 2.0)) s.frequency_penalty = static_cast<float>(*p);
  if (auto p = f.number("repetition_penalty", 0.0, 1e9, true)) s.repetition_penalty = static_cast<float>(*p);
  if (const OrderedJson* v = f.get("seed")) {
    const std::int64_t seed = Fields::integer_value(*v, f.path("seed"), std::numeric_limits<std::int64_t>::min(),
                                                    std::numeric_limits<std::int64_t>::max());
    g.seed = static_cast<std::uint64_t>(seed);
  }
  if (const OrderedJson* v = f.get("stop")) {
    if (v->is_string()) {
      g.stop.push_back(v->get<std::string>());
    } else if (v->is_array()) {
      for (std::size_t i = 0; i < v->size(); ++i) {
        if (!(*v)[i].is_string())
          throw ApiError::bad_request(fmt::format("stop[{}]: expected a string, got {}", i, type_of((*v)[i])),
                                      fmt::format("stop[{}]", i));
        g.stop.push_back((*v)[i].get<std::string>());
      }
    } else {
      f.fail("stop", fmt::format("expected a string or an array of strings, got {}", type_of(*v)));
    }
    std::erase_if(g.stop, [](const std::string& s) { return s.empty(); });
  }
  if (const OrderedJson* ids = f.array("stop_token_ids"))
    for (std::size_t i = 0; i < ids->size(); ++i)
      s.stop_token_ids.push_back(static_cast<std::int32_t>(
          Fields::integer_value((*ids)[i], fmt::format("stop_token_ids[{}]", i), 0, std::numeric_limits<std::int32_t>::max())));
  if (auto b = f.boolean("ignore_eos")) s.ignore_eos = *b;
  if (const OrderedJson* bias = f.object("logit_bias")) {
    for (const auto& [key, value] : bias->items()) {
      const std::string where = fmt::format("logit_bias.{}", key);
      std::int64_t id = -1;
      auto [ptr, ec] = std::from_chars(key.data(), key.data() + key.size(), id);
      if (ec != std::errc() || ptr != key.data() + key.size() || id < 0 || id > std::numeric_limits<std::int32_t>::max())
        throw ApiError::bad_request(fmt::format("{}: expected a token id as the key, got '{}'", where, key), where);
      if (!value.is_number())
        throw ApiError::bad_request(fmt::format("{}: expected a number, got {}", where, type_of(value)), where);
      const double b = value.get<double>();
      if (!(b >= -100.0 && b <= 100.0))
        throw ApiError::bad_request(fmt::format("{}: expected a bias from -100 to 100, got {}", where, b), where);
      s.logit_bias.emplace_back(static_cast<std::int32_t>(id), static_cast<float>(b));
    }
  }
  if (auto n = f.integer("n", 1, 128)) g.n = static_cast<int>(*n);
  if (auto b = f.boolean("stream")) g.stream = *b;
  if (const OrderedJson* so = f.object("stream_options")) {
    if (!g.stream) f.fail("stream_options", "only allowed when stream is true");
    const Fields sf(*so, "stream_options");
    if (auto u = sf.boolean("include_usage")) g.include_usage = *u;
  }
  if (auto r = f.boolean("return_token_ids")) g.return_token_ids = *r;
}

// OpenAI content parts -> one string (the V4 format has text only).
std::string content_text(const OrderedJson& content, const std::string& path) {
  std::string out;
  for (std::size_t j = 0; j < content.size(); ++j) {
    const std::string ppath = fmt::format("{}[{}]", path, j);
    const OrderedJson& part = content[j];
    if (!part.is_object()) throw ApiError::bad_request(fmt::format("{}: expected a content part object", ppath), ppath);
    const Fields pf(part, ppath);
    const auto type = pf.string("type");
    if (!type) pf.fail("type", "expected a string");
    if (*type != "text" && *type != "input_text")
      pf.fail("type", fmt::format("unsupported content part '{}' (expected text)", *type));
    const auto text = pf.string("text");
    if (!text) pf.fail("text", "expected a string");
    if (j) out += '\n';
    out += *text;
  }
  return out;
}

}  // namespace

OrderedJson chat_messages_for_template(const OrderedJson& body, ChatOptions& options, bool& tools_given) {
  require_object(body);
  const Fields f(body, "");
  const OrderedJson* in = f.array("messages");
  if (!in) f.fail("messages", "expected a non-empty array of messages");
  if (in->empty()) f.fail("messages", "expected at least one message");
  OrderedJson messages = OrderedJson::array();
  for (std::size_t i = 0; i < in->size(); ++i) {
    const std::string path = fmt::format("messages[{}]", i);
    const OrderedJson& m = (*in)[i];
    if (!m.is_object()) throw ApiError::bad_request(fmt::format("{}: expected a message object", path), path);
    OrderedJson copy = m;
    auto content = m.find("content");
    const bool is_tool = m.contains("role") && m["role"] == "tool";
    if (content != m.end() && content->is_array() && !is_tool)
      copy["content"] = content_text(*content, path + ".content");
    messages.push_back(std::move(copy));
  }

  // Thinking: chat_template_kwargs {"thinking": true} (or "enable_thinking"), or reasoning_effort.
  if (const OrderedJson* kw = f.object("chat_template_kwargs")) {
    const Fields kf(*kw, "chat_template_kwargs");
    std::optional<bool> thinking = kf.boolean("thinking");
    if (!thinking) thinking = kf.boolean("enable_thinking");
    if (thinking) options.mode = *thinking ? ThinkingMode::Thinking : ThinkingMode::Chat;
    if (auto e = kf.string("reasoning_effort")) {
      if (*e != "high" && *e != "max")
        kf.fail("reasoning_effort", fmt::format("unknown value '{}' (expected high or max)", *e));
      options.reasoning_effort = *e;
    }
  }
  if (auto effort = f.string("reasoning_effort")) {
    // OpenAI's levels; V4 has a default ("high") and an absolute maximum ("max").
    if (*effort == "none") {
      options.mode = ThinkingMode::Chat;
    } else if (*effort == "minimal" || *effort == "low" || *effort == "medium" || *effort == "high") {
      options.mode = ThinkingMode::Thinking;
      options.reasoning_effort = "high";
    } else if (*effort == "max" || *effort == "xhigh") {
      options.mode = ThinkingMode::Thinking;
      options.reasoning_effort = "max";
    } else {
      f.fail("reasoning_effort", fmt::format("unknown value '{}' (expected none, minimal, low, medium, high or max)", *effort));
    }
  }

  // Tools and the response format go on the leading system message, where the V4 format puts
  // them (a system message is added when the conversation has none).
  OrderedJson tools;
  if (const OrderedJson* t = f.array("tools")) {
    for (std::size_t i = 0; i < t->size(); ++i) {
      const std::string path = fmt::format("tools[{}]", i);
      const OrderedJson& tool = (*t)[i];
      if (!tool.is_object()) throw ApiError::bad_request(fmt::format("{}: expected a tool object", path), path);
      const Fields tf(tool, path);
      const auto type = tf.string("type");
      if (type && *type != "function") tf.fail("type", fmt::format("unknown tool type '{}' (expected function)", *type));
      const OrderedJson* fn = tf.object("function");
      if (!fn) tf.fail("function", "expected an object");
      const Fields ff(*fn, path + ".function");
      if (!ff.string("name")) ff.fail("name", "expected a string");
      ff.object("parameters");
    }
    if (!t->empty()) tools = *t;
  }
  if (const OrderedJson* choice = f.get("tool_choice")) {
    if (choice->is_string()) {
      const std::string c = choice->get<std::string>();
      if (c == "none")
        tools = OrderedJson();
      else if (c != "auto")
        f.fail("tool_choice", fmt::format("unsupported value '{}' (expected auto or none: the model decides "
                                          "itself whether to call a tool)", c));
    } else if (choice->is_object()) {
      f.fail("tool_choice", "forcing a named function is not supported (expected auto or none)");
    } else {
      f.fail("tool_choice", fmt::format("expected a string, got {}", type_of(*choice)));
    }
  }
  OrderedJson response_format;
  if (const OrderedJson* rf = f.object("response_format")) {
    const Fields rff(*rf, "response_format");
    const auto type = rff.string("type");
    if (!type) rff.fail("type", "expected a string");
    if (*type == "json_schema") {
      const OrderedJson* js = rff.object("json_schema");
      if (!js) rff.fail("json_schema", "expected an object");
      const Fields jf(*js, "response_format.json_schema");
      if (!jf.string("name")) jf.fail("name", "expected a string");
      jf.object("schema");
      response_format = *rf;
    } else if (*type == "json_object") {
      response_format = *rf;
    } else if (*type != "text") {
      rff.fail("type", fmt::format("unknown value '{}' (expected text, json_object or json_schema)", *type));
    }
  }
  tools_given = !tools.is_null();
  if (!tools.is_null() || !response_format.is_null()) {
    const bool has_system = !messages.empty() && messages[0].is_object() && messages[0].contains("role") &&
                            messages[0]["role"] == "system";
    if (!has_system) messages.insert(messages.begin(), OrderedJson{{"role", "system"}, {"content", ""}});
    if (!tools.is_null()) messages[0]["tools"] = tools;
    if (!response_format.is_null()) messages[0]["response_format"] = response_format;
  }
  return messages;
}

ChatRequest parse_chat_request(const OrderedJson& body) {
  require_object(body);
  ChatRequest r;
  const Fields f(body, "");
  read_generation(f, r.gen, true);
  r.messages = chat_messages_for_template(body, r.options, r.tools_given);
  if (auto lp = f.boolean("logprobs")) r.gen.logprobs = *lp;
  if (auto top = f.integer("top_logprobs", 0, 20)) {
    if (!r.gen.logprobs) f.fail("top_logprobs", "needs logprobs: true");
    r.gen.top_logprobs = static_cast<int>(*top);
  }
  return r;
}

CompletionRequest parse_completion_request(const OrderedJson& body) {
  require_object(body);
  CompletionRequest r;
  const Fields f(body, "");
  read_generation(f, r.gen, false);
  if (auto e = f.boolean("echo")) r.echo = *e;
  if (auto lp = f.integer("logprobs", 0, 20)) {
    r.gen.logprobs = true;
    r.gen.top_logprobs = static_cast<int>(*lp);
  }
  if (const OrderedJson* suffix = f.get("suffix")) {
    if (!suffix->is_string() || !suffix->get<std::string>().empty()) f.fail("suffix", "not supported by this model");
  }
  if (auto best = f.integer("best_of", 1, 128)) {
    if (*best != r.gen.n) f.fail("best_of", fmt::format("expected the same value as n ({}), got {}", r.gen.n, *best));
  }
  const OrderedJson* p = f.get("prompt");
  if (!p) f.fail("prompt", "expected a string, an array of token ids, or an array of either");
  auto ids = [](const OrderedJson& a, const std::string& where) {
    std::vector<std::int64_t> out;
    for (std::size_t i = 0; i < a.size(); ++i)
      out.push_back(Fields::integer_value(a[i], fmt::format("{}[{}]", where, i), 0, std::numeric_limits<std::int32_t>::max()));
    return out;
  };
  if (p->is_string()) {
    r.prompts.emplace_back(p->get<std::string>());
  } else if (p->is_array() && !p->empty() && ((*p)[0].is_string() || (*p)[0].is_array())) {
    for (std::size_t i = 0; i < p->size(); ++i) {
      const std::string where = fmt::format("prompt[{}]", i);
      const OrderedJson& e = (*p)[i];
      if (e.is_string())
        r.prompts.emplace_back(e.get<std::string>());
      else if (e.is_array())
        r.prompts.emplace_back(ids(e, where));
      else
        throw ApiError::bad_request(fmt::format("{}: expected a string or an array of token ids, got {}", where, type_of(e)), where);
    }
  } else if (p->is_array()) {
    r.prompts.emplace_back(ids(*p, "prompt"));
  } else {
    f.fail("prompt", fmt::format("expected a string, an array of token ids, or an array of either, got {}", type_of(*p)));
  }
  for (std::size_t i = 0; i < r.prompts.size(); ++i) {
    const bool empty = std::visit([](const auto& v) { return v.empty(); }, r.prompts[i]);
    const std::string where = r.prompts.size() == 1 && !p->is_array() ? "prompt" : fmt::format("prompt[{}]", i);
    if (empty) throw ApiError::bad_request(fmt::format("{}: must not be empty", r.prompts.size() == 1 ? std::string("prompt") : where), "prompt");
  }
  if (!r.gen.max_tokens_given) r.gen.sampling.max_tokens = 16;  // OpenAI's default for completions
  r.gen.max_tokens_given = true;
  return r;
}

}  // namespace flashline

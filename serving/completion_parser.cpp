#include "serving/completion_parser.h"

#include "base/input_error.h"

#include <fmt/format.h>

#include <algorithm>
#include <initializer_list>
#include <set>
#include <span>


namespace flashline {

namespace {

using namespace chat_markers;

constexpr std::string_view kToolCallsStart = "\n\n<｜DSML｜tool_calls";  // no '>' on purpose
constexpr std::string_view kToolCallsEnd = "</｜DSML｜tool_calls>";
constexpr std::string_view kInvokeOpen = "<｜DSML｜invoke";
constexpr std::string_view kInvokeClose = "</｜DSML｜invoke";
constexpr std::string_view kParamOpen = "<｜DSML｜parameter";
constexpr std::string_view kParamClose = "/｜DSML｜parameter";  // the '<' ends the value

struct Found {
  std::size_t pos = std::string_view::npos;
  std::size_t which = 0;
  std::size_t length = 0;
  bool found() const { return pos != std::string_view::npos; }
  std::size_t end() const { return pos + length; }
};

// The earliest occurrence at or after `from` of any of `stops`.
Found find_first(std::string_view text, std::size_t from, std::span<const std::string_view> stops) {
  Found best;
  std::size_t k = 0;
  for (std::string_view s : stops) {
    const std::size_t p = text.find(s, from);
    if (p != std::string_view::npos && (!best.found() || p < best.pos)) best = {p, k, s.size()};
    ++k;
  }
  return best;
}

Found find_first(std::string_view text, std::size_t from, std::initializer_list<std::string_view> stops) {
  return find_first(text, from, std::span<const std::string_view>(stops.begin(), stops.size()));
}

// The length of the longest tail of `text` that is a proper prefix of one of `strings`.
std::size_t partial_prefix_length(std::string_view text, std::span<const std::string_view> strings) {
  std::size_t best = 0;
  for (std::string_view s : strings)
    for (std::size_t k = std::min(s.size() - 1, text.size()); k > best; --k)
      if (text.ends_with(s.substr(0, k))) {
        best = k;
        break;
      }
  return best;
}

// The streaming parser's stops (which end a region) and markers (which may not appear in it).
constexpr std::string_view kReasoningStops[] = {kThinkClose, kToolCallsStart};
constexpr std::string_view kReasoningMarkers[] = {kBos, kEos, kThinkOpen, kDsml};
constexpr std::string_view kContentStops[] = {kEos, kToolCallsStart};
constexpr std::string_view kContentMarkers[] = {kBos, kThinkOpen, kThinkClose, kDsml};

std::string shown(std::string_view s) { return py_json_string(s); }

InputError format_error(std::string_view what, std::size_t offset) {
  return InputError(fmt::format("completion: {} (at byte {})", what, offset));
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// `name="NAME">\n`, after optional whitespace, with one extra "\n" tolerated.
bool parse_invoke_header(std::string_view h, std::string& name) {
  std::size_t i = 0;
  while (i < h.size() && is_space(h[i])) ++i;
  h.remove_prefix(i);
  constexpr std::string_view kLead = "name=\"";
  if (!h.starts_with(kLead)) return false;
  h.remove_prefix(kLead.size());
  for (std::string_view tail : {std::string_view("\">\n\n"), std::string_view("\">\n")}) {
    if (h.size() >= tail.size() && h.ends_with(tail)) {
      const std::string_view n = h.substr(0, h.size() - tail.size());
      if (n.find('\n') != std::string_view::npos) return false;
      name = n;
      return true;
    }
  }
  return false;
}

// ` name="KEY" string="true|false">VALUE<` with the shortest KEY.
bool parse_parameter(std::string_view body, std::string& key, bool& is_string, std::string& value) {
  constexpr std::string_view kLead = " name=\"";
  if (!body.starts_with(kLead) || !body.ends_with('<')) return false;
  for (std::size_t p = kLead.size(); p < body.size(); ++p) {
    for (std::string_view flag : {std::string_view("\" string=\"true\">"), std::string_view("\" string=\"false\">")}) {
      if (body.substr(p).starts_with(flag) && p + flag.size() < body.size()) {
        key = body.substr(kLead.size(), p - kLead.size());
        is_string = flag.find("true") != std::string_view::npos;
        value = body.substr(p + flag.size(), body.size() - 1 - (p + flag.size()));
        return true;
      }
    }
  }
  return false;
}

enum class BlockStatus { Done, Incomplete, Malformed };

// Section 9 step 3: the invokes of a tool-call block, from just after its opening marker.
// With `partial`, running out of text returns Incomplete (and `calls` holds the complete
// invokes); without it, every defect throws.
BlockStatus parse_tool_block(std::string_view text, std::size_t& pos, std::vector<ParsedToolCall>& calls,
                             bool partial) {
  auto fail = [&](std::string what, std::size_t at) -> BlockStatus {
    if (partial) return BlockStatus::Malformed;
    throw format_error(what, at);
  };
  auto missing = [&](std::string what) -> BlockStatus {
    if (partial) return BlockStatus::Incomplete;
    throw format_error(what, text.size());
  };
  while (pos < text.size()) {
    Found f = find_first(text, pos, {kInvokeOpen, kToolCallsEnd});
    if (!f.found()) return missing("unterminated tool_calls block");
    if (text.substr(pos, f.pos - pos) != ">\n")
      return fail("tool_calls format error: " + shown(text.substr(pos, f.pos - pos)), pos);
    if (f.which == 1) {
      pos = f.end();
      return BlockStatus::Done;
    }
    std::size_t p = f.end();
    f = find_first(text, p, {kParamOpen, kInvokeClose});
    if (!f.found()) return missing("unterminated invoke");
    ParsedToolCall call;
    if (!parse_invoke_header(text.substr(p, f.pos - p), call.name))
      return fail("tool name format error: " + shown(text.substr(p, f.pos - p)), p);
    p = f.end();
    std::string args = "{";
    std::set<std::string> keys;
    while (f.which == 0) {
      const Found close = find_first(text, p, {kParamClose});
      if (!close.found()) return missing("unterminated parameter");
      std::string key, value;
      bool is_string = false;
      if (!parse_parameter(text.substr(p, close.pos - p), key, is_string, value))
        return fail("parameter format error: " + shown(text.substr(p, close.pos - p)), p);
      if (!keys.insert(key).second) return fail("parameter " + shown(key) + " repeated", p);
      if (keys.size() > 1) args += ", ";
      args += py_json_string(key);
      args += ": ";
      // string="false" values are pasted verbatim, as the reference parser does.
      args += is_string ? py_json_string(value) : value;
      p = close.end();
      f = find_first(text, p, {kParamOpen, kInvokeClose});
      if (!f.found()) return missing("unterminated invoke");
      if (text.substr(p, f.pos - p) != ">\n")
        return fail("parameter format error after value: " + shown(text.substr(p, f.pos - p)), p);
      p = f.end();
    }
    args += "}";
    call.arguments = std::move(args);
    calls.push_back(std::move(call));
    pos = p;
  }
  // Out of text before </｜DSML｜tool_calls>: a completion cut inside its tool calls.
  return missing("unterminated tool_calls block (the completion ends inside it)");
}

void check_no_markup(std::string_view field, std::string_view value) {
  for (std::string_view m : {kBos, kEos, kThinkOpen, kThinkClose, kDsml}) {
    const std::size_t p = value.find(m);
    if (p != std::string_view::npos)
      throw InputError(fmt::format("completion: {} contains the marker {} (at byte {} of it)", field, m, p));
  }
}

}  // namespace

OrderedJson AssistantMessage::to_json() const {
  OrderedJson j;
  j["role"] = "assistant";
  j["content"] = content;
  j["reasoning_content"] = reasoning_content;
  j["tool_calls"] = OrderedJson::array();
  for (const auto& c : tool_calls)
    j["tool_calls"].push_back({{"type", "function"}, {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
  return j;
}

AssistantMessage parse_completion(std::string_view text, ThinkingMode mode) {
  AssistantMessage m;
  std::size_t pos = 0;
  if (mode == ThinkingMode::Thinking) {
    const Found f = find_first(text, 0, {kThinkClose, kToolCallsStart});
    if (!f.found() || f.which != 0) throw format_error("invalid thinking format: missing </think>", f.found() ? f.pos : text.size());
    m.reasoning_content = text.substr(0, f.pos);
    pos = f.end();
  }
  const Found f = find_first(text, pos, {kEos, kToolCallsStart});
  if (!f.found()) throw format_error("missing EOS", text.size());
  m.content = text.substr(pos, f.pos - pos);
  pos = f.end();
  if (f.which == 1) {
    parse_tool_block(text, pos, m.tool_calls, false);
    const Found eos = find_first(text, pos, {kEos});
    const std::size_t stop = eos.found() ? eos.pos : text.size();
    if (stop != pos) throw format_error("unexpected text after the tool calls: " + shown(text.substr(pos, stop - pos)), pos);
    pos = eos.found() ? eos.end() : text.size();
  }
  if (pos != text.size()) throw format_error("unexpected content at end: " + shown(text.substr(pos)), pos);
  check_no_markup("reasoning_content", m.reasoning_content);
  check_no_markup("content", m.content);
  return m;
}

CompletionStream::CompletionStream(ThinkingMode mode)
    : mode_(mode), phase_(mode == ThinkingMode::Thinking ? Phase::Reasoning : Phase::Content) {}

CompletionDelta CompletionStream::push(std::string_view text) {
  text_ += text;
  CompletionDelta delta;
  advance(delta);
  return delta;
}

void CompletionStream::emit_text(std::size_t limit, CompletionDelta& delta) {
  if (limit <= emitted_) return;
  const std::string_view piece = std::string_view(text_).substr(emitted_, limit - emitted_);
  if (phase_ == Phase::Reasoning) {
    delta.reasoning_content += piece;
    reasoning_sent_ += piece;
  } else {
    delta.content += piece;
    content_sent_ += piece;
  }
  emitted_ = limit;
}

void CompletionStream::advance(CompletionDelta& delta) {
  while (!held_) {
    if (phase_ == Phase::Reasoning || phase_ == Phase::Content) {
      const bool reasoning = phase_ == Phase::Reasoning;
      // Stops end the region; markers may not appear in it at all.
      const std::span<const std::string_view> stops = reasoning ? kReasoningStops : kContentStops;
      const std::span<const std::string_view> markers = reasoning ? kReasoningMarkers : kContentMarkers;
      const Found stop = find_first(text_, emitted_, stops);
      const Found bad = find_first(text_, emitted_, markers);
      const std::string_view rest = std::string_view(text_).substr(emitted_);
      if (bad.found() && (!stop.found() || bad.pos < stop.pos)) {
        // A marker inside a stop that is still arriving (｜DSML｜ in "\n\n<｜DSML｜tool_calls")
        // is not a leak yet: wait for the rest.
        const std::size_t partial_stop = text_.size() - partial_prefix_length(rest, stops);
        if (partial_stop <= bad.pos) {
          emit_text(partial_stop, delta);
          return;
        }
        emit_text(bad.pos, delta);
        held_ = true;  // the whole parse will reject this; nothing more is emitted
        return;
      }
      if (!stop.found()) {
        // Hold back a tail that may be the start of a stop or a marker.
        const std::size_t hold = std::max(partial_prefix_length(rest, stops), partial_prefix_length(rest, markers));
        emit_text(text_.size() - hold, delta);
        return;
      }
      emit_text(stop.pos, delta);
      if (reasoning && stop.which == 1) {  // a tool block before </think>: malformed
        held_ = true;
        return;
      }
      emitted_ = region_start_ = stop.end();
      if (reasoning)
        phase_ = Phase::Content;
      else
        phase_ = stop.which == 0 ? Phase::Done : Phase::Tools;
      continue;
    }
    if (phase_ == Phase::Tools) {
      // Only a closing tag can complete an invoke or the block: without a new one there is
      // nothing to parse (keeps long argument values linear in their length).
      const std::size_t from = std::max(region_start_, checked_ >= kToolCallsEnd.size() ? checked_ - kToolCallsEnd.size() : 0);
      checked_ = text_.size();
      if (!find_first(text_, from, {kInvokeClose, kToolCallsEnd}).found()) return;
      std::vector<ParsedToolCall> calls;
      std::size_t pos = region_start_;
      const BlockStatus status = parse_tool_block(text_, pos, calls, true);
      delta.tool_calls.insert(delta.tool_calls.end(), calls.begin(), calls.end());
      calls_emitted_ += calls.size();
      region_start_ = pos;  // after the last complete invoke: parsing resumes there
      if (status == BlockStatus::Malformed) held_ = true;
      if (status == BlockStatus::Done) phase_ = Phase::Done;
    }
    return;
  }
}

CompletionDelta CompletionStream::finish() {
  final_ = parse_completion(text_, mode_);
  // Everything emitted so far is a prefix of the whole parse's fields, by construction.
  CompletionDelta delta;
  delta.reasoning_content = final_.reasoning_content.substr(reasoning_sent_.size());
  delta.content = final_.content.substr(content_sent_.size());
  for (std::size_t i = calls_emitted_; i < final_.tool_calls.size(); ++i) delta.tool_calls.push_back(final_.tool_calls[i]);
  phase_ = Phase::Done;
  return delta;
}

}  // namespace flashline

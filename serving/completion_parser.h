#pragma once
// Turns a generated completion (decoded text, special tokens kept, final EOS included) back
// into an assistant message: reasoning_content, content and OpenAI-style tool_calls. Both
// whole and incrementally; the incremental parser never lets DSML markup, think markers,
// BOS or EOS reach content or reasoning, even for a moment.
#include <string>
#include <string_view>
#include <vector>

#include "base/input_error.h"
#include "serving/chat_format.h"
#include "serving/py_json.h"

namespace flashline {

struct ParsedToolCall {
  std::string name;
  std::string arguments;  // JSON object text
  bool operator==(const ParsedToolCall&) const = default;
};

struct AssistantMessage {
  std::string content;
  std::string reasoning_content;
  std::vector<ParsedToolCall> tool_calls;
  // {"role": "assistant", "content", "reasoning_content", "tool_calls": [{"type": "function",
  //  "function": {"name", "arguments"}}]}
  OrderedJson to_json() const;
  bool operator==(const AssistantMessage&) const = default;
};

// Throws InputError describing the first malformed spot (missing EOS or </think>, bad DSML,
// text after the end, markup inside content or reasoning).
AssistantMessage parse_completion(std::string_view text, ThinkingMode mode);

// What one push() adds to the message.
struct CompletionDelta {
  std::string reasoning_content;
  std::string content;
  std::vector<ParsedToolCall> tool_calls;  // each call once, when its invoke is complete
  bool empty() const { return reasoning_content.empty() && content.empty() && tool_calls.empty(); }
};

class CompletionStream {
 public:
  explicit CompletionStream(ThinkingMode mode);

  // Text as it is generated (any split, e.g. one token's text at a time).
  CompletionDelta push(std::string_view text);
  // Ends the completion: parses it whole (throws InputError like parse_completion) and
  // returns what was not yet emitted. All deltas together equal message().
  CompletionDelta finish();
  const AssistantMessage& message() const { return final_; }

 private:
  enum class Phase { Reasoning, Content, Tools, Done };
  void advance(CompletionDelta& delta);
  void emit_text(std::size_t limit, CompletionDelta& delta);

  ThinkingMode mode_;
  std::string text_;
  Phase phase_;
  std::size_t region_start_ = 0;  // where the current phase's text begins
  std::size_t emitted_ = 0;       // text_ before this has been emitted (or consumed)
  bool held_ = false;             // markup seen inside text: stop emitting, finish() reports it
  std::size_t calls_emitted_ = 0;
  std::size_t checked_ = 0;  // text_ before this was searched for closing tags
  std::string reasoning_sent_, content_sent_;
  AssistantMessage final_;
};

}  // namespace flashline

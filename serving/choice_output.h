#pragma once
// One choice of a completion, built token by token: ids -> text (streaming detokenizer, never a
// broken UTF-8 sequence) -> stop strings (a possible stop prefix is held back, a match ends the
// choice) -> for chat, the completion parser (reasoning_content, content, tool_calls; no DSML or
// think markup ever reaches content). Every delta is safe to show at once; all deltas together
// equal the final text or message.
#include <string>
#include <vector>

#include "serving/completion_parser.h"
#include "serving/stop_string_matcher.h"
#include "serving/stream_detokenizer.h"
#include "serving/tokenizer.h"

namespace flashline {

enum class OutputKind { Completion, Chat };

struct ChoiceDelta {
  std::string text;         // Completion: new text
  CompletionDelta message;  // Chat: new reasoning, content, complete tool calls
  bool empty() const { return text.empty() && message.empty(); }
};

class ChoiceOutput {
 public:
  ChoiceOutput(const Tokenizer& tokenizer, OutputKind kind, ThinkingMode mode, std::vector<std::string> stops);

  // A generated token that belongs to the text (not the EOS or stop token that ends the choice).
  ChoiceDelta push(int id);
  // The choice ended (EOS, stop token, length, abort): the rest of the text. A chat completion cut
  // short (length, stop string, no EOS) is closed as if EOS followed; if what was generated still
  // does not parse (a half-written tool call), the message is what was already shown.
  ChoiceDelta finish();
  // A stop string matched: nothing more is shown, the engine request should stop.
  bool stopped() const { return stop_.matched(); }
  // Completion: all text shown. Chat: the message (complete after finish()).
  const std::string& text() const { return text_; }
  const AssistantMessage& message() const { return message_; }

 private:
  void add(ChoiceDelta& into, const CompletionDelta& d);
  void feed(ChoiceDelta& delta, const std::string& text);

  OutputKind kind_;
  StreamDetokenizer detokenizer_;
  StopStringMatcher stop_;
  CompletionStream parser_;
  std::string text_;
  AssistantMessage message_;  // chat: what has been shown so far, then the final message
  bool finished_ = false;
};

}  // namespace flashline

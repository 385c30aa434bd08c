#include "serving/choice_output.h"

#include "serving/chat_format.h"
#include "serving/utf8.h"

namespace flashline {

ChoiceOutput::ChoiceOutput(const Tokenizer& tokenizer, OutputKind kind, ThinkingMode mode,
                           std::vector<std::string> stops)
    : kind_(kind), detokenizer_(tokenizer), stop_(std::move(stops)), parser_(mode) {}

void ChoiceOutput::add(ChoiceDelta& into, const CompletionDelta& d) {
  into.message.reasoning_content += d.reasoning_content;
  into.message.content += d.content;
  into.message.tool_calls.insert(into.message.tool_calls.end(), d.tool_calls.begin(), d.tool_calls.end());
  message_.reasoning_content += d.reasoning_content;
  message_.content += d.content;
  message_.tool_calls.insert(message_.tool_calls.end(), d.tool_calls.begin(), d.tool_calls.end());
}

void ChoiceOutput::feed(ChoiceDelta& delta, const std::string& text) {
  if (text.empty()) return;
  if (kind_ == OutputKind::Completion) {
    delta.text += text;
    text_ += text;
  } else {
    add(delta, parser_.push(text));
  }
}

ChoiceDelta ChoiceOutput::push(int id) {
  ChoiceDelta delta;
  if (finished_ || stop_.matched()) return delta;
  std::string text;
  try {
    text = detokenizer_.push(id);
  } catch (const InputError&) {
    text = utf8::kReplacement;  // an id of the model's padded vocabulary that the tokenizer lacks
  }
  const StopStringMatcher::Result r = stop_.push(text);
  feed(delta, r.text);
  return delta;
}

ChoiceDelta ChoiceOutput::finish() {
  ChoiceDelta delta;
  if (finished_) return delta;
  finished_ = true;
  if (!stop_.matched()) {
    const StopStringMatcher::Result r = stop_.push(detokenizer_.finish());
    feed(delta, r.text);
    feed(delta, stop_.finish());
  }
  if (kind_ == OutputKind::Completion) return delta;
  // The parser needs the closing markers the model did not write (EOS is never fed: the engine's
  // final token is not part of the text).
  using namespace chat_markers;
  const std::string closings[] = {std::string(kEos), std::string(kThinkClose) + std::string(kEos)};
  for (const std::string& closing : closings) {
    CompletionStream attempt = parser_;
    try {
      CompletionDelta pushed = attempt.push(closing);
      const CompletionDelta rest = attempt.finish();
      pushed.reasoning_content += rest.reasoning_content;
      pushed.content += rest.content;
      pushed.tool_calls.insert(pushed.tool_calls.end(), rest.tool_calls.begin(), rest.tool_calls.end());
      add(delta, pushed);
      message_ = attempt.message();
      parser_ = std::move(attempt);
      return delta;
    } catch (const InputError&) {
      // Try the next closing; if none parses, the message is what was shown.
    }
  }
  return delta;
}

}  // namespace flashline

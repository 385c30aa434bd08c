// libFuzzer target: chat-parse, a completion (special tokens as text) back to a message, without
// a tokenizer so the DSML tool-call grammar is reached quickly (tests/fuzz/chat_parse.dict).
// Properties: only InputError on bad input; streaming in chunks whose sizes come from the
// first byte gives the same verdict and message as parsing whole, and the streamed deltas add
// up to the message; a message's JSON dumps.
#include <cstdint>
#include <string>

#include "serving/completion_parser.h"
#include "serving/utf8.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flashline;
  if (size == 0) return 0;
  const std::size_t chunk = 1 + data[0] % 17;
  const std::string text = utf8::to_valid_lossy(std::string(reinterpret_cast<const char*>(data + 1), size - 1));
  for (ThinkingMode mode : {ThinkingMode::Chat, ThinkingMode::Thinking}) {
    AssistantMessage whole;
    const bool whole_ok = fuzz::accepts([&] { whole = parse_completion(text, mode); });
    CompletionStream stream(mode);
    AssistantMessage seen;
    const bool stream_ok = fuzz::accepts([&] {
      for (std::size_t p = 0; p < text.size(); p += chunk) {
        const CompletionDelta d = stream.push(std::string_view(text).substr(p, chunk));
        seen.content += d.content;
        seen.reasoning_content += d.reasoning_content;
      }
      const CompletionDelta d = stream.finish();
      seen.content += d.content;
      seen.reasoning_content += d.reasoning_content;
    });
    if (whole_ok != stream_ok) fuzz::fail("streamed and whole parsing disagree on validity");
    if (!whole_ok) continue;
    if (!(stream.message() == whole)) fuzz::fail("streamed and whole parsing give different messages");
    if (seen.content != whole.content || seen.reasoning_content != whole.reasoning_content)
      fuzz::fail("the deltas do not add up to the message");
    (void)whole.to_json().dump();
  }
  return 0;
}

// libFuzzer target: arbitrary bytes through encode/decode, the streaming detokenizer and the
// completion parser. Properties checked:
//   decode(encode(b)) == utf8::to_valid_lossy(b)        (invalid UTF-8 is replaced, never lost)
//   streamed detokenization == decode, and every streamed piece is valid UTF-8
//   streamed completion parsing == whole parsing (same message, or both reject)
// The tokenizer file comes from $FLASHLINE_TOKENIZER.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "serving/completion_parser.h"
#include "serving/stream_detokenizer.h"
#include "serving/tokenizer.h"
#include "serving/utf8.h"
#include "base/input_error.h"

namespace {

std::unique_ptr<flashline::Tokenizer> tokenizer;

[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "property violated: %s\n", what);
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* file = std::getenv("FLASHLINE_TOKENIZER");
  if (!file) {
    std::fprintf(stderr, "set FLASHLINE_TOKENIZER to a tokenizer.json\n");
    std::exit(2);
  }
  tokenizer = std::make_unique<flashline::Tokenizer>(flashline::Tokenizer::from_file(file));
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flashline;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::string valid = utf8::to_valid_lossy(input);
  if (!utf8::is_valid(valid)) fail("to_valid_lossy output is not valid UTF-8");

  const std::vector<int> ids = tokenizer->encode(input);
  if (tokenizer->decode(ids) != valid) fail("decode(encode(b)) != to_valid_lossy(b)");

  StreamDetokenizer detok(*tokenizer);
  std::string streamed;
  for (int id : ids) {
    const std::string piece = detok.push(id);
    if (!utf8::is_valid(piece)) fail("streamed piece is not valid UTF-8");
    streamed += piece;
  }
  streamed += detok.finish();
  if (streamed != valid) fail("streamed detokenization != decode");

  for (ThinkingMode mode : {ThinkingMode::Chat, ThinkingMode::Thinking}) {
    bool whole_ok = true, stream_ok = true;
    AssistantMessage whole;
    try {
      whole = parse_completion(valid, mode);
    } catch (const InputError&) {
      whole_ok = false;
    }
    CompletionStream stream(mode);
    StreamDetokenizer d(*tokenizer);
    AssistantMessage seen;
    try {
      for (int id : ids) {
        const CompletionDelta delta = stream.push(d.push(id));
        seen.content += delta.content;
        seen.reasoning_content += delta.reasoning_content;
        if (seen.content.find("｜DSML｜") != std::string::npos || seen.content.find("</think>") != std::string::npos)
          fail("markup leaked into streamed content");
      }
      stream.push(d.finish());
      stream.finish();
    } catch (const InputError&) {
      stream_ok = false;
    }
    if (whole_ok != stream_ok) fail("streamed and whole parsing disagree on validity");
    if (whole_ok && !(stream.message() == whole)) fail("streamed and whole parsing give different messages");
    if (whole_ok && (!whole.content.starts_with(seen.content) ||
                     !whole.reasoning_content.starts_with(seen.reasoning_content)))
      fail("streamed deltas are not a prefix of the message");
  }
  return 0;
}

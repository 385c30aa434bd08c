// libFuzzer target: chat-prompt's messages JSON through encode_chat, with the options taken from
// the first input byte. Properties: only InputError on bad input; the prompt is valid UTF-8 when
// the input is, and starts with BOS exactly when asked to (and no --context precedes it).
#include <cstdint>
#include <string>

#include "serving/chat_format.h"
#include "serving/py_json.h"
#include "serving/utf8.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace flashline;
  if (size == 0) return 0;
  const std::uint8_t flags = data[0];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  OrderedJson messages;
  if (!fuzz::accepts([&] { messages = parse_ordered_json(text, "messages.json"); })) return 0;
  // Message text is copied into the prompt verbatim: text that spells the BOS marker itself can
  // start a continuation's prompt, so the BOS property below holds only for other text.
  const bool spells_bos = messages.dump().find(chat_markers::kBos) != std::string::npos;
  ChatOptions o;
  o.mode = flags & 1 ? ThinkingMode::Thinking : ThinkingMode::Chat;
  o.drop_thinking = !(flags & 2);
  o.add_bos = !(flags & 4);
  if (flags & 8) o.reasoning_effort = flags & 16 ? "max" : "high";
  if (flags & 32) {  // the first half of the list as already-encoded context
    if (messages.is_array() && messages.size() > 1) {
      OrderedJson ctx = OrderedJson::array(), rest = OrderedJson::array();
      for (std::size_t i = 0; i < messages.size(); ++i) (i < messages.size() / 2 ? ctx : rest).push_back(messages[i]);
      o.context = ctx;
      messages = rest;
    }
  }
  std::string prompt;
  if (!fuzz::accepts([&] { prompt = encode_chat(messages, o); })) return 0;
  if (utf8::is_valid(text) && !utf8::is_valid(prompt)) fuzz::fail("prompt is not valid UTF-8");
  // A continuation of earlier messages (--context) never starts with BOS: the context did.
  const bool want_bos = o.add_bos && o.context.empty();
  if (!spells_bos && want_bos != prompt.starts_with(chat_markers::kBos))
    fuzz::fail("BOS at the start exactly when asked");
  return 0;
}

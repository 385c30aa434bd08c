// libFuzzer target: an HTTP request body as the gateway reads it for POST /v1/chat/completions
// and POST /v1/completions (every input goes to both): the JSON parse, the request checks, and
// for an accepted chat request its prompt (encode_chat), as the gateway does before tokenizing.
// Properties: a bad body is only ever a 400 with a message (ApiError 400, or an InputError the
// gateway turns into one), never another exception (a 500) or a crash; the sampling parameters
// of an accepted request lie in the ranges the engine checks.
#include <cmath>
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "serving/chat_format.h"
#include "serving/openai_request.h"
#include "serving/py_json.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

using namespace flashline;

// Runs `f`; false when it refused the request as the gateway answers a bad one: ApiError 400 or
// InputError (the gateway makes it a 400). Anything else would be a 500 ("internal error").
template <class F>
bool accepts_request(F&& f) {
  try {
    f();
    return true;
  } catch (const ApiError& e) {
    if (e.status() != 400) fuzz::fail("a request refused with status " + std::to_string(e.status()));
    if (std::string(e.what()).empty()) fuzz::fail("a 400 without a message");
    return false;
  } catch (const InputError&) {
    return false;
  } catch (const std::exception& e) {
    fuzz::fail(std::string("not a 400: ") + e.what());
  } catch (...) {
    fuzz::fail("not a 400: a non-standard exception");
  }
}

bool in(double x, double lo, double hi) { return x >= lo && x <= hi; }

void check_generation(const GenerationSpec& g) {
  const SamplingParams& s = g.sampling;
  if (!in(s.temperature, 0, 2)) fuzz::fail("temperature out of [0, 2]");
  if (!(s.top_p > 0 && s.top_p <= 1)) fuzz::fail("top_p out of (0, 1]");
  if (s.top_k < -1) fuzz::fail("top_k below -1");
  if (!in(s.min_p, 0, 1)) fuzz::fail("min_p out of [0, 1]");
  if (!in(s.presence_penalty, -2, 2) || !in(s.frequency_penalty, -2, 2)) fuzz::fail("penalty out of [-2, 2]");
  if (!(std::isfinite(s.repetition_penalty) && s.repetition_penalty > 0)) fuzz::fail("repetition_penalty not > 0");
  if (s.max_tokens < 1) fuzz::fail("max_tokens below 1");
  for (const auto& [id, bias] : s.logit_bias)
    if (id < 0 || !in(bias, -100, 100)) fuzz::fail("logit_bias entry out of range");
  for (int32_t id : s.stop_token_ids)
    if (id < 0) fuzz::fail("negative stop token id");
  for (const auto& stop : g.stop)
    if (stop.empty()) fuzz::fail("an empty stop string");
  if (g.n < 1 || g.n > 128) fuzz::fail("n out of [1, 128]");
  if (g.top_logprobs < 0 || g.top_logprobs > 20) fuzz::fail("top_logprobs out of [0, 20]");
  if (g.include_usage && !g.stream) fuzz::fail("include_usage without stream");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  OrderedJson body;
  if (!fuzz::accepts([&] { body = parse_ordered_json(text, "request body"); })) return 0;

  ChatRequest chat;
  if (accepts_request([&] { chat = parse_chat_request(body); })) {
    check_generation(chat.gen);
    if (chat.gen.top_logprobs > 0 && !chat.gen.logprobs) fuzz::fail("top_logprobs without logprobs");
    if (!chat.messages.is_array() || chat.messages.empty()) fuzz::fail("no messages");
    accepts_request([&] { encode_chat(chat.messages, chat.options); });
  }

  CompletionRequest completion;
  if (accepts_request([&] { completion = parse_completion_request(body); })) {
    check_generation(completion.gen);
    if (completion.prompts.empty()) fuzz::fail("no prompt");
    for (const auto& p : completion.prompts) {
      if (std::visit([](const auto& v) { return v.empty(); }, p)) fuzz::fail("an empty prompt");
      if (const auto* ids = std::get_if<std::vector<std::int64_t>>(&p))
        for (std::int64_t id : *ids)
          if (id < 0 || id > INT32_MAX) fuzz::fail("a prompt token id out of [0, 2^31)");
    }
  }
  return 0;
}

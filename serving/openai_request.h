#pragma once
// OpenAI (and vLLM) request bodies -> what the gateway submits. Every check names the JSON path
// of the field and what was expected ("messages[2].content[0].type: unsupported content part
// 'image_url' (expected text)"); fields this server does not use are ignored, values it cannot
// honour are refused (ApiError 400 with `param` set to the path).
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "runtime/sampling_params.h"
#include "serving/api_error.h"
#include "serving/chat_format.h"
#include "serving/py_json.h"

namespace flashline {

// What both endpoints ask of the generation.
struct GenerationSpec {
  std::optional<std::string> model;
  SamplingParams sampling;           // max_tokens set only when given (see max_tokens_given)
  bool max_tokens_given = false;
  std::optional<std::uint64_t> seed;
  std::vector<std::string> stop;     // stop strings (never shown)
  int n = 1;
  bool stream = false;
  bool include_usage = false;        // stream_options.include_usage
  bool logprobs = false;             // chat: logprobs; completions: logprobs present
  int top_logprobs = 0;
  bool return_token_ids = false;     // vLLM: the generated (and prompt) ids in each choice
};

struct ChatRequest {
  GenerationSpec gen;
  OrderedJson messages;  // ready for encode_chat: content parts joined, tools/response_format attached
  ChatOptions options;
  bool tools_given = false;  // tools offered (and tool_choice is not "none")
};

// One prompt of /v1/completions: text to tokenize or ids as given.
using CompletionPrompt = std::variant<std::string, std::vector<std::int64_t>>;

struct CompletionRequest {
  GenerationSpec gen;
  std::vector<CompletionPrompt> prompts;  // a batch: choices are numbered prompt * n + i
  bool echo = false;
};

ChatRequest parse_chat_request(const OrderedJson& body);
CompletionRequest parse_completion_request(const OrderedJson& body);

// The messages of /tokenize's chat form (or a chat request) as encode_chat wants them.
OrderedJson chat_messages_for_template(const OrderedJson& body, ChatOptions& options, bool& tools_given);

}  // namespace flashline

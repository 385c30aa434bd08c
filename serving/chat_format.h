#pragma once
// The DeepSeek-V4 chat prompt format (see docs/tokenizer.md and the format specification):
// OpenAI-style messages plus options -> the prompt string, which is then tokenized with a
// plain encode (it carries its own BOS).
#include <optional>
#include <string>
#include <string_view>

#include "base/input_error.h"
#include "serving/py_json.h"

namespace flashline {

enum class ThinkingMode { Chat, Thinking };

// Parses "chat" / "thinking"; throws InputError naming `where` otherwise.
ThinkingMode parse_thinking_mode(std::string_view name, std::string_view where);

namespace chat_markers {
inline constexpr std::string_view kBos = "<｜begin▁of▁sentence｜>";
inline constexpr std::string_view kEos = "<｜end▁of▁sentence｜>";
inline constexpr std::string_view kUser = "<｜User｜>";
inline constexpr std::string_view kAssistant = "<｜Assistant｜>";
inline constexpr std::string_view kReminder = "<｜latest_reminder｜>";
inline constexpr std::string_view kThinkOpen = "<think>";
inline constexpr std::string_view kThinkClose = "</think>";
inline constexpr std::string_view kDsml = "｜DSML｜";
}  // namespace chat_markers

struct ChatOptions {
  ThinkingMode mode = ThinkingMode::Chat;
  bool drop_thinking = true;
  bool add_bos = true;
  std::optional<std::string> reasoning_effort;  // "high" or "max"
  OrderedJson context = OrderedJson::array();   // messages already encoded by an earlier call
};

// The prompt for `messages` (a JSON array of message objects). Throws InputError naming
// the JSON path (e.g. "messages[2].tool_calls[0].function.name") for malformed input,
// unknown roles or tasks, an empty developer message and an invalid reasoning effort.
std::string encode_chat(const OrderedJson& messages, const ChatOptions& options);

}  // namespace flashline

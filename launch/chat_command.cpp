// `flashline chat-prompt` and `flashline chat-parse`: the V4 chat format on its own, for
// checks against the reference encoder and parser.
#include <fmt/format.h>

#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string_view>

#include "base/input_file.h"
#include "launch/commands.h"
#include "serving/chat_format.h"
#include "serving/completion_parser.h"
#include "serving/tokenizer.h"
#include "serving/utf8.h"
#include "model/model_config.h"

namespace flashline {
namespace {

struct ChatPromptOptions {
  std::string messages;
  std::string context;
  std::string mode = "chat";
  std::string effort;
  std::string tokenizer;
  bool keep_thinking = false;
  bool no_bos = false;
  bool ids = false;
};

OrderedJson read_messages_file(const std::string& file, std::string_view what) {
  return parse_ordered_json(read_input_file(file, what), file);
}

void run_chat_prompt(const ChatPromptOptions& o) {
  ChatOptions opt;
  opt.mode = parse_thinking_mode(o.mode, "--mode");
  opt.drop_thinking = !o.keep_thinking;
  opt.add_bos = !o.no_bos;
  if (!o.effort.empty()) {
    // Checked here, not by the encoder, whose message would be blamed on the messages file.
    if (o.effort != "high" && o.effort != "max")
      throw InputError(fmt::format("--reasoning-effort {}: expected high or max", o.effort));
    opt.reasoning_effort = o.effort;
  }
  if (!o.context.empty()) opt.context = read_messages_file(o.context, "--context file");
  const OrderedJson messages = read_messages_file(o.messages, "--messages file");
  std::string prompt;
  try {
    prompt = encode_chat(messages, opt);
  } catch (const InputError& e) {
    // The paths in the message ("messages[2].role", "context[0].role") are relative to the
    // file named here.
    const bool in_context = std::string_view(e.what()).starts_with("context");
    throw InputError(fmt::format("{}: {}", in_context ? o.context : o.messages, e.what()));
  }
  if (o.ids) {
    const Tokenizer tok = Tokenizer::from_file(o.tokenizer);
    fmt::print("{}\n", nlohmann::json(tok.encode(prompt)).dump());
  } else {
    std::fwrite(prompt.data(), 1, prompt.size(), stdout);
  }
}

void run_chat_parse(const std::string& mode) {
  const ThinkingMode m = parse_thinking_mode(mode, "--mode");
  std::cin >> std::noskipws;
  const std::string raw((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
  // Invalid UTF-8 is replaced as the tokenizer does: the output must be valid JSON.
  const AssistantMessage message = parse_completion(utf8::to_valid_lossy(raw), m);
  fmt::print("{}\n", message.to_json().dump());
}

}  // namespace

void add_chat_prompt_command(CLI::App& app) {
  auto o = std::make_shared<ChatPromptOptions>();
  auto* cmd = app.add_subcommand("chat-prompt",
                                 "Render OpenAI-style messages as the DeepSeek-V4 prompt string (byte-exact), "
                                 "or its token ids with --ids");
  cmd->add_option("--messages", o->messages, "JSON file holding an array of messages")->required();
  cmd->add_option("--mode", o->mode, "chat or thinking (default chat)");
  cmd->add_flag("--keep-thinking", o->keep_thinking, "Keep earlier turns' reasoning (drop_thinking=false)");
  cmd->add_option("--reasoning-effort", o->effort, "high or max (max adds the effort preamble in thinking mode)");
  cmd->add_option("--context", o->context, "JSON file of messages already encoded by an earlier call");
  cmd->add_flag("--no-bos", o->no_bos, "Do not start the prompt with BOS");
  auto* ids = cmd->add_flag("--ids", o->ids, "Print the prompt's token ids as a JSON array instead");
  auto* tok = cmd->add_option("--tokenizer", o->tokenizer, "tokenizer.json, needed by --ids");
  ids->needs(tok);
  cmd->callback([o] { run_chat_prompt(*o); });
}

void add_chat_parse_command(CLI::App& app) {
  auto mode = std::make_shared<std::string>("chat");
  auto* cmd = app.add_subcommand("chat-parse",
                                 "Completion text on stdin (special tokens as text, final EOS included) -> the "
                                 "assistant message as JSON (content, reasoning_content, tool_calls)");
  cmd->add_option("--mode", *mode, "chat or thinking (default chat): thinking completions start with reasoning");
  cmd->callback([mode] { run_chat_parse(*mode); });
}

}  // namespace flashline

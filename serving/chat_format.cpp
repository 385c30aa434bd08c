#include "serving/chat_format.h"

#include "base/input_error.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>
#include <vector>


namespace flashline {

namespace {

using namespace chat_markers;

constexpr std::string_view kEffortMax =
    "Reasoning Effort: Absolute maximum with no shortcuts permitted.\n"
    "You MUST be very thorough in your thinking and comprehensively decompose the problem to resolve the root "
    "cause, rigorously stress-testing your logic against all potential paths, edge cases, and adversarial "
    "scenarios.\n"
    "Explicitly write out your entire deliberation process, documenting every intermediate step, considered "
    "alternative, and rejected hypothesis to ensure absolutely no assumption is left unchecked.\n\n";

constexpr std::string_view kToolsHead =
    "## Tools\n\nYou have access to a set of tools to help answer the user's question. You can invoke tools by "
    "writing a \"<｜DSML｜tool_calls>\" block like the following:\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke "
    "name=\"$TOOL_NAME\">\n<｜DSML｜parameter name=\"$PARAMETER_NAME\" "
    "string=\"true|false\">$PARAMETER_VALUE</｜DSML｜parameter>\n...\n</｜DSML｜invoke>\n<｜DSML｜invoke "
    "name=\"$TOOL_NAME2\">\n...\n</｜DSML｜invoke>\n</｜DSML｜tool_calls>\n\nString parameters should be "
    "specified as is and set `string=\"true\"`. For all other types (numbers, booleans, arrays, objects), pass "
    "the value in JSON format and set `string=\"false\"`.\n\nIf thinking_mode is enabled (triggered by "
    "<think>), you MUST output your complete reasoning inside <think>...</think> BEFORE any tool calls or "
    "final response.\n\nOtherwise, output directly after </think> with tool calls or final response.\n\n### "
    "Available Tool Schemas\n\n";
constexpr std::string_view kToolsTail =
    "\n\nYou MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.\n";
constexpr std::string_view kResponseFormatHead =
    "## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n";

constexpr std::array<std::pair<std::string_view, std::string_view>, 6> kTasks{{
    {"action", "<｜action｜>"},
    {"query", "<｜query｜>"},
    {"authority", "<｜authority｜>"},
    {"domain", "<｜domain｜>"},
    {"title", "<｜title｜>"},
    {"read_url", "<｜read_url｜>"},
}};

constexpr std::array<std::string_view, 6> kRoles{"system", "user", "assistant", "developer", "tool",
                                                  "latest_reminder"};

struct Block {
  std::string type;  // "text", "tool_result" or another (rendered as unsupported)
  std::string text;  // text, or the tool result's content already joined
  std::string tool_use_id;
};

struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text
  std::string path;
};

struct Message {
  std::string role;
  std::string path;  // where it came from, for errors
  std::string content;
  bool content_present = false;
  std::string reasoning;
  std::vector<ToolCall> tool_calls;
  const OrderedJson* tools = nullptr;  // a non-empty array
  const OrderedJson* response_format = nullptr;
  std::optional<std::string> task;
  std::string task_path;
  bool wo_eos = false;
  bool has_blocks = false;
  std::vector<Block> blocks;
};

const OrderedJson* field(const OrderedJson& obj, const char* key) {
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string string_field(const OrderedJson& obj, const char* key, const std::string& path, bool* present = nullptr) {
  const OrderedJson* v = field(obj, key);
  if (present) *present = v != nullptr;
  if (!v) return {};
  if (!v->is_string()) throw InputError(fmt::format("{}.{}: expected a string, got {}", path, key, v->type_name()));
  return v->get<std::string>();
}

// 4.3: a tool result is a string or a list of parts.
std::string tool_result_text(const OrderedJson* content, const std::string& path) {
  if (!content) return {};
  if (content->is_string()) return content->get<std::string>();
  if (!content->is_array())
    throw InputError(fmt::format("{}.content: expected a string or a list of parts", path));
  std::string out;
  for (std::size_t i = 0; i < content->size(); ++i) {
    const auto& part = (*content)[i];
    const std::string ppath = fmt::format("{}.content[{}]", path, i);
    if (!part.is_object()) throw InputError(fmt::format("{}: expected an object", ppath));
    const std::string type = string_field(part, "type", ppath);
    if (i) out += "\n\n";
    if (type == "text")
      out += string_field(part, "text", ppath);
    else
      out += fmt::format("[Unsupported {}]", type);
  }
  return out;
}

Message read_message(const OrderedJson& j, const std::string& path) {
  if (!j.is_object()) throw InputError(fmt::format("{}: expected a message object", path));
  Message m;
  m.path = path;
  const OrderedJson* role = field(j, "role");
  if (!role || !role->is_string()) throw InputError(fmt::format("{}.role: expected a string", path));
  m.role = role->get<std::string>();
  if (std::find(kRoles.begin(), kRoles.end(), m.role) == kRoles.end())
    throw InputError(fmt::format("{}.role: unknown role '{}' (expected system, user, assistant, developer, tool "
                                 "or latest_reminder)",
                                 path, m.role));
  if (m.role == "tool") {
    Block b{"tool_result", tool_result_text(field(j, "content"), path), string_field(j, "tool_call_id", path)};
    m.blocks.push_back(std::move(b));
    m.has_blocks = true;
    return m;
  }
  m.content = string_field(j, "content", path, &m.content_present);
  m.task = std::nullopt;
  if (const OrderedJson* t = field(j, "task")) {
    if (!t->is_string()) throw InputError(fmt::format("{}.task: expected a string", path));
    m.task = t->get<std::string>();
    m.task_path = path + ".task";
  }
  if (const OrderedJson* w = field(j, "wo_eos")) {
    if (!w->is_boolean()) throw InputError(fmt::format("{}.wo_eos: expected a boolean", path));
    m.wo_eos = w->get<bool>();
  }
  if (m.role == "user") return m;  // every other field of a user message is discarded (4.1)

  m.reasoning = string_field(j, "reasoning_content", path);
  if (const OrderedJson* tools = field(j, "tools")) {
    if (!tools->is_array()) throw InputError(fmt::format("{}.tools: expected an array", path));
    for (std::size_t i = 0; i < tools->size(); ++i) {
      const auto& t = (*tools)[i];
      if (!t.is_object() || !field(t, "function"))
        throw InputError(fmt::format("{}.tools[{}].function: expected a tool definition", path, i));
    }
    if (!tools->empty()) m.tools = tools;
  }
  m.response_format = field(j, "response_format");
  if (m.role != "assistant") return m;

  if (const OrderedJson* calls = field(j, "tool_calls")) {
    if (!calls->is_array()) throw InputError(fmt::format("{}.tool_calls: expected an array", path));
    for (std::size_t i = 0; i < calls->size(); ++i) {
      const auto& c = (*calls)[i];
      ToolCall call;
      call.path = fmt::format("{}.tool_calls[{}]", path, i);
      if (!c.is_object()) throw InputError(fmt::format("{}: expected an object", call.path));
      const OrderedJson* fn = field(c, "function");
      if (!fn || !fn->is_object()) throw InputError(fmt::format("{}.function: expected an object", call.path));
      const std::string fpath = call.path + ".function";
      bool has_name = false;
      call.name = string_field(*fn, "name", fpath, &has_name);
      if (!has_name) throw InputError(fmt::format("{}.name: expected a string", fpath));
      const OrderedJson* args = field(*fn, "arguments");
      if (!args || !args->is_string())
        throw InputError(fmt::format("{}.arguments: expected a string of JSON text", fpath));
      call.arguments = args->get<std::string>();
      call.id = string_field(c, "id", call.path);
      if (call.id.empty()) call.id = string_field(*fn, "id", fpath);
      m.tool_calls.push_back(std::move(call));
    }
  }
  return m;
}

// 4.1: tool results and consecutive user messages become one user turn.
std::vector<Message> merge_tool_messages(const OrderedJson& list, const std::string& name) {
  if (!list.is_array()) throw InputError(fmt::format("{}: expected an array of messages", name));
  std::vector<Message> out;
  for (std::size_t i = 0; i < list.size(); ++i) {
    Message m = read_message(list[i], fmt::format("{}[{}]", name, i));
    Message* last = out.empty() ? nullptr : &out.back();
    const bool last_user_blocks = last && last->role == "user" && last->has_blocks;
    if (m.role == "tool") {
      if (last_user_blocks) {
        last->blocks.push_back(std::move(m.blocks[0]));
      } else {
        m.role = "user";
        out.push_back(std::move(m));
      }
    } else if (m.role == "user") {
      Block b{"text", m.content, ""};
      if (last_user_blocks && !last->task) {
        last->blocks.push_back(std::move(b));
      } else {
        m.blocks.push_back(std::move(b));
        m.has_blocks = true;
        out.push_back(std::move(m));
      }
    } else {
      out.push_back(std::move(m));
    }
  }
  return out;
}

// 4.4: parallel tool results follow the order of the calls they answer.
void sort_tool_results(std::vector<Message>& all) {
  std::map<std::string, int> order;
  for (Message& m : all) {
    if (m.role == "assistant" && !m.tool_calls.empty()) {
      order.clear();
      for (std::size_t i = 0; i < m.tool_calls.size(); ++i)
        if (!m.tool_calls[i].id.empty()) order[m.tool_calls[i].id] = static_cast<int>(i);
    } else if (m.role == "user" && !order.empty()) {
      std::vector<std::size_t> slots;
      for (std::size_t i = 0; i < m.blocks.size(); ++i)
        if (m.blocks[i].type == "tool_result") slots.push_back(i);
      if (slots.size() <= 1) continue;
      std::vector<Block> results;
      for (std::size_t s : slots) results.push_back(m.blocks[s]);
      auto rank = [&](const Block& b) {
        auto it = order.find(b.tool_use_id);
        return it == order.end() ? 0 : it->second;
      };
      std::stable_sort(results.begin(), results.end(),
                       [&](const Block& a, const Block& b) { return rank(a) < rank(b); });
      for (std::size_t k = 0; k < slots.size(); ++k) m.blocks[slots[k]] = std::move(results[k]);
    }
  }
}

int last_user(const std::vector<Message>& list) {
  for (int i = static_cast<int>(list.size()) - 1; i >= 0; --i)
    if (list[i].role == "user" || list[i].role == "developer") return i;
  return -1;
}

// 5: earlier reasoning and earlier developer messages are dropped in thinking mode.
std::vector<Message> drop_filter(const std::vector<Message>& list) {
  const int last = last_user(list);
  std::vector<Message> out;
  for (int i = 0; i < static_cast<int>(list.size()); ++i) {
    const Message& m = list[i];
    if (m.role == "user" || m.role == "system" || m.role == "tool" || m.role == "latest_reminder" || i >= last) {
      out.push_back(m);
    } else if (m.role == "assistant") {
      out.push_back(m);
      out.back().reasoning.clear();
    }
  }
  return out;
}

std::string_view task_token(const Message& m) {
  for (const auto& [name, token] : kTasks)
    if (name == *m.task) return token;
  throw InputError(fmt::format("{}: unknown task '{}' (expected action, query, authority, domain, title or "
                               "read_url)",
                               m.task_path, *m.task));
}

void append_tool_sections(std::string& out, const Message& m) {
  if (m.tools) {
    out += "\n\n";
    out += kToolsHead;
    for (std::size_t i = 0; i < m.tools->size(); ++i) {
      if (i) out += '\n';
      out += py_json_dumps((*m.tools)[i]["function"]);
    }
    out += kToolsTail;
  }
  if (m.response_format) {
    out += "\n\n";
    out += kResponseFormatHead;
    out += py_json_dumps(*m.response_format);
  }
}

// 6.2: one tool call as DSML.
void append_invoke(std::string& out, const ToolCall& call) {
  out += "<｜DSML｜invoke name=\"";
  out += call.name;
  out += "\">\n";
  OrderedJson args;
  std::vector<std::string> params;
  auto param = [&](std::string_view key, bool is_string, std::string_view value) {
    params.push_back(fmt::format("<｜DSML｜parameter name=\"{}\" string=\"{}\">{}</｜DSML｜parameter>", key,
                                 is_string ? "true" : "false", value));
  };
  if (!try_parse_ordered_json(call.arguments, args)) {
    param("arguments", true, call.arguments);  // not JSON: passed through as one string
  } else {
    if (!args.is_object())
      throw InputError(fmt::format("{}.function.arguments: expected a JSON object, got {}", call.path,
                                   args.type_name()));
    for (const auto& [key, value] : args.items()) {
      if (value.is_string())
        param(key, true, value.get_ref<const std::string&>());
      else
        param(key, false, py_json_dumps(value));
    }
  }
  for (std::size_t i = 0; i < params.size(); ++i) {
    if (i) out += '\n';
    out += params[i];
  }
  out += "\n</｜DSML｜invoke>";
}

std::string render(int i, const std::vector<Message>& f, ThinkingMode mode, bool drop,
                   const std::optional<std::string>& effort) {
  const Message& m = f[i];
  const int last = last_user(f);
  const bool thinking = mode == ThinkingMode::Thinking;
  std::string out;
  if (i == 0 && thinking && effort && *effort == "max") out += kEffortMax;

  if (m.task) task_token(m);  // validates the name
  if (m.role == "system") {
    out += m.content;
    append_tool_sections(out, m);
  } else if (m.role == "developer") {
    if (m.content.empty())
      throw InputError(fmt::format("{}.content: a developer message must have non-empty content", m.path));
    out += kUser;
    out += m.content;
    append_tool_sections(out, m);
  } else if (m.role == "user") {
    out += kUser;
    for (std::size_t b = 0; b < m.blocks.size(); ++b) {
      if (b) out += "\n\n";
      const Block& block = m.blocks[b];
      if (block.type == "text")
        out += block.text;
      else if (block.type == "tool_result")
        out += "<tool_result>" + block.text + "</tool_result>";
      else
        out += fmt::format("[Unsupported {}]", block.type);
    }
  } else if (m.role == "latest_reminder") {
    out += kReminder;
    out += m.content;
  } else if (m.role == "assistant") {
    if (thinking && !(i > 0 && f[i - 1].task) && (!drop || i > last)) {
      out += m.reasoning;
      out += kThinkClose;
    }
    out += m.content;
    if (!m.tool_calls.empty()) {
      out += "\n\n<｜DSML｜tool_calls>\n";
      for (std::size_t c = 0; c < m.tool_calls.size(); ++c) {
        if (c) out += '\n';
        append_invoke(out, m.tool_calls[c]);
      }
      out += "\n</｜DSML｜tool_calls>";
    }
    if (!m.wo_eos) out += kEos;
  } else {
    throw InputError(fmt::format("{}.role: role '{}' cannot be rendered here", m.path, m.role));
  }

  // (c) open the next assistant turn when one follows or this is the end.
  const bool has_next = i + 1 < static_cast<int>(f.size());
  if (has_next && f[i + 1].role != "assistant" && f[i + 1].role != "latest_reminder") return out;
  if (m.task) {
    if (*m.task == "action") {
      out += kAssistant;
      out += thinking ? kThinkOpen : kThinkClose;
    }
    out += task_token(m);
  } else if (m.role == "user" || m.role == "developer") {
    out += kAssistant;
    out += thinking && (!drop || i >= last) ? kThinkOpen : kThinkClose;
  }
  return out;
}

}  // namespace

ThinkingMode parse_thinking_mode(std::string_view name, std::string_view where) {
  if (name == "chat") return ThinkingMode::Chat;
  if (name == "thinking") return ThinkingMode::Thinking;
  throw InputError(fmt::format("{}: invalid thinking mode '{}' (expected chat or thinking)", where, name));
}

std::string encode_chat(const OrderedJson& messages, const ChatOptions& options) {
  if (options.reasoning_effort && *options.reasoning_effort != "high" && *options.reasoning_effort != "max")
    throw InputError(
        fmt::format("reasoning effort: invalid value '{}' (expected high or max)", *options.reasoning_effort));
  const std::vector<Message> context = merge_tool_messages(options.context, "context");
  std::vector<Message> all = context;
  {
    std::vector<Message> current = merge_tool_messages(messages, "messages");
    all.insert(all.end(), std::make_move_iterator(current.begin()), std::make_move_iterator(current.end()));
  }
  sort_tool_results(all);

  std::string prompt;
  if (options.add_bos && context.empty()) prompt += kBos;
  bool drop = options.drop_thinking;
  for (const Message& m : all)
    if (m.tools) drop = false;  // tool use keeps every turn's reasoning

  std::vector<Message> filtered;
  std::size_t first;
  if (options.mode == ThinkingMode::Thinking && drop) {
    filtered = drop_filter(all);
    const std::vector<Message> context_part(all.begin(), all.begin() + context.size());
    // Python slicing semantics: a negative count renders nothing.
    const long n = static_cast<long>(filtered.size()) - static_cast<long>(drop_filter(context_part).size());
    first = n <= 0 ? filtered.size() : filtered.size() - static_cast<std::size_t>(n);
  } else {
    filtered = std::move(all);
    first = context.size();
  }
  for (std::size_t i = first; i < filtered.size(); ++i)
    prompt += render(static_cast<int>(i), filtered, options.mode, drop, options.reasoning_effort);
  return prompt;
}

}  // namespace flashline

// The V4 prompt encoder against the reference encoder's vectors (prompt strings and ids),
// plus the Python-compatible JSON serialisation it relies on.
#include "serving/chat_format.h"

#include <gtest/gtest.h>

#include "base/input_error.h"
#include "tests/serving/test_data.h"

namespace flashline {
namespace {

// The case's options; throws InputError for an invalid thinking mode, as the encoder would.
ChatOptions options_of(const OrderedJson& o) {
  ChatOptions opt;
  opt.mode = parse_thinking_mode(o["thinking_mode"].get<std::string>(), "thinking_mode");
  opt.drop_thinking = o["drop_thinking"].get<bool>();
  opt.add_bos = o["add_default_bos_token"].get<bool>();
  if (!o["reasoning_effort"].is_null()) opt.reasoning_effort = o["reasoning_effort"].get<std::string>();
  opt.context = o["context"];
  return opt;
}

class ChatEncodeVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(ChatEncodeVectors, PromptAndIdsMatch) {
  int n = 0;
  for (const auto& c : test_data::ordered_chat_vectors()["encode_cases"]) {
    if (c["group"] != GetParam()) continue;
    ++n;
    SCOPED_TRACE(c["name"].get<std::string>());
    if (c.contains("expected_error")) {
      EXPECT_THROW(encode_chat(c["messages"], options_of(c["options"])), InputError);
      continue;
    }
    const std::string prompt = encode_chat(c["messages"], options_of(c["options"]));
    EXPECT_EQ(prompt, c["expected_prompt"].get<std::string>());
    EXPECT_EQ(test_data::tokenizer().encode(prompt), c["expected_prompt_ids"].get<std::vector<int>>());
  }
  EXPECT_GT(n, 0);
}

INSTANTIATE_TEST_SUITE_P(Groups, ChatEncodeVectors, ::testing::ValuesIn(test_data::distinct(test_data::ordered_chat_vectors()["encode_cases"], "group")),
                         [](const auto& info) { return info.param; });

// Worked examples of the format specification (section 7), beyond the vectors.
std::string encode(const char* messages_json, ThinkingMode mode = ThinkingMode::Chat) {
  ChatOptions opt;
  opt.mode = mode;
  return encode_chat(parse_ordered_json(messages_json, "test"), opt);
}

TEST(ChatFormat, SpecificationExamples) {
  const std::string bos = "<｜begin▁of▁sentence｜>", eos = "<｜end▁of▁sentence｜>";
  EXPECT_EQ(encode(R"([{"role": "user", "content": "q", "task": "query"}])"), bos + "<｜User｜>q<｜query｜>");
  EXPECT_EQ(encode(R"([{"role": "user", "content": "q", "task": "action"}])", ThinkingMode::Thinking),
            bos + "<｜User｜>q<｜Assistant｜><think><｜action｜>");
  EXPECT_EQ(encode(R"([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a", "task": "title"},
                       {"role": "assistant", "content": "T"}])"),
            bos + "<｜User｜>q<｜Assistant｜></think>a" + eos + "<｜title｜>T" + eos);
  EXPECT_EQ(encode(R"([{"role": "system", "content": "S"}, {"role": "latest_reminder", "content": "2026-01-01"},
                       {"role": "user", "content": "Hi"}])"),
            bos + "S<｜latest_reminder｜>2026-01-01<｜User｜>Hi<｜Assistant｜></think>");
  EXPECT_EQ(encode(R"([{"role": "user", "content": "A?"}, {"role": "assistant", "content": "a", "reasoning_content": "r1"},
                       {"role": "user", "content": "B?"}])",
                   ThinkingMode::Thinking),
            bos + "<｜User｜>A?<｜Assistant｜></think>a" + eos + "<｜User｜>B?<｜Assistant｜><think>");
}

TEST(ChatFormat, ToolResultsFollowCallOrderAndArgumentsArePythonJson) {
  const std::string prompt = encode(R"([{"role": "user", "content": "go"},
    {"role": "assistant", "tool_calls": [
      {"id": "a", "type": "function", "function": {"name": "f", "arguments": "{\"n\": 1.50, \"m\": 2.5e3, \"k\": 1E21, \"big\": 123456789012345678901234567890, \"s\": \"x\\\"y\", \"o\": {\"t\": \"a\\nb\"}}"}},
      {"id": "b", "type": "function", "function": {"name": "g", "arguments": "{}"}}]},
    {"role": "tool", "tool_call_id": "b", "content": "B"},
    {"role": "tool", "tool_call_id": "a", "content": [{"type": "text", "text": "A"}, {"type": "image_url"}]}])");
  EXPECT_NE(prompt.find("<｜DSML｜parameter name=\"n\" string=\"false\">1.5</｜DSML｜parameter>\n"
                        "<｜DSML｜parameter name=\"m\" string=\"false\">2500.0</｜DSML｜parameter>\n"
                        "<｜DSML｜parameter name=\"k\" string=\"false\">1e+21</｜DSML｜parameter>\n"
                        "<｜DSML｜parameter name=\"big\" string=\"false\">123456789012345678901234567890</｜DSML｜parameter>\n"
                        "<｜DSML｜parameter name=\"s\" string=\"true\">x\"y</｜DSML｜parameter>\n"
                        "<｜DSML｜parameter name=\"o\" string=\"false\">{\"t\": \"a\\nb\"}</｜DSML｜parameter>"),
            std::string::npos)
      << prompt;
  // No arguments: an empty parameter list, so the invoke body is just "\n\n".
  EXPECT_NE(prompt.find("<｜DSML｜invoke name=\"g\">\n\n</｜DSML｜invoke>"), std::string::npos);
  EXPECT_TRUE(prompt.ends_with("<｜User｜><tool_result>A\n\n[Unsupported image_url]</tool_result>\n\n"
                               "<tool_result>B</tool_result><｜Assistant｜></think>"))
      << prompt;
}

TEST(ChatFormat, BadInputNamesThePath) {
  auto message_of = [](const char* json) {
    try {
      encode(json);
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message_of(R"([{"role": "user", "content": "a"}, {"role": "robot"}])").find("messages[1].role"), std::string::npos);
  EXPECT_NE(message_of(R"([{"role": "user", "content": ["x"]}])").find("messages[0].content"), std::string::npos);
  EXPECT_NE(message_of(R"([{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "5"}}]}])")
                .find("messages[0].tool_calls[0].function.arguments"),
            std::string::npos);
  EXPECT_NE(message_of(R"([{"role": "user", "content": "q", "task": "summarize"}])").find("messages[0].task"),
            std::string::npos);
  EXPECT_NE(message_of(R"({"role": "user"})").find("messages"), std::string::npos);
}

TEST(PyJson, NumbersFollowPythonRepr) {
  const OrderedJson v = parse_ordered_json(
      R"([1.50, 2.5e3, 1E21, 1e-5, 0.0001, 1e16, 1e15, -0, -0.0, 123456789012345678901234567890, 0.1, 100.0, 1e308])",
      "test");
  EXPECT_EQ(py_json_dumps(v),
            "[1.5, 2500.0, 1e+21, 1e-05, 0.0001, 1e+16, 1000000000000000.0, 0, -0.0, "
            "123456789012345678901234567890, 0.1, 100.0, 1e+308]");
  EXPECT_EQ(py_float_repr(1.0 / 0.0), "Infinity");
  // A literal beyond the double range is rejected (Python would print Infinity): it is
  // reported, never silently changed.
  EXPECT_THROW(parse_ordered_json("[1e400]", "test"), InputError);
}

TEST(PyJson, StringsEscapeOnlyWhatPythonEscapes) {
  const OrderedJson v = parse_ordered_json(R"({"k": "a\"b\\c\n\t\u0001\u007f/é\u2028", "z": {}, "a": []})", "test");
  EXPECT_EQ(py_json_dumps(v), "{\"k\": \"a\\\"b\\\\c\\n\\t\\u0001\x7f/é\u2028\", \"z\": {}, \"a\": []}");
}

TEST(PyJson, DuplicateKeyKeepsFirstPlaceLastValue) {
  EXPECT_EQ(py_json_dumps(parse_ordered_json(R"({"a": 1, "b": 2, "a": 3})", "test")), R"({"a": 3, "b": 2})");
}

}  // namespace
}  // namespace flashline

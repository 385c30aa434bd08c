// The V4 prompt encoder against the reference encoder's vectors (prompt strings and ids),
// plus the Python-compatible JSON serialisation it relies on.
#include "serving/chat_format.h"

#include <gtest/gtest.h>

#include "stages/model_config.h"
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

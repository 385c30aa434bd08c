// Completion parsing against the reference parser's vectors, whole and streamed token by
// token, and the guarantee that streamed content never shows markup.
#include "serving/completion_parser.h"

#include <gtest/gtest.h>

#include "serving/stream_detokenizer.h"
#include "base/input_error.h"
#include "tests/serving/test_data.h"

namespace flashline {
namespace {

constexpr std::string_view kMarkup[] = {"｜DSML｜", "<think>", "</think>", "<｜end▁of▁sentence｜>",
                                        "<｜begin▁of▁sentence｜>", "<｜DSML", "</｜DSML"};

ThinkingMode mode_of(const OrderedJson& c) { return parse_thinking_mode(c["thinking_mode"].get<std::string>(), "test"); }

AssistantMessage expected_of(const OrderedJson& c) {
  const auto& e = c["expected_message"];
  AssistantMessage m;
  m.content = e["content"].get<std::string>();
  m.reasoning_content = e["reasoning_content"].get<std::string>();
  for (const auto& t : e["tool_calls"])
    m.tool_calls.push_back({t["function"]["name"].get<std::string>(), t["function"]["arguments"].get<std::string>()});
  return m;
}

// Streams `completion` one token at a time; returns the final message, checking on the way
// that the text emitted so far is always a prefix of the whole parse and free of markup.
AssistantMessage stream_by_tokens(const std::string& completion, ThinkingMode mode, const AssistantMessage& whole) {
  const Tokenizer& tok = test_data::tokenizer();
  StreamDetokenizer detok(tok);
  CompletionStream stream(mode);
  AssistantMessage seen;
  auto take = [&](const CompletionDelta& d) {
    seen.content += d.content;
    seen.reasoning_content += d.reasoning_content;
    seen.tool_calls.insert(seen.tool_calls.end(), d.tool_calls.begin(), d.tool_calls.end());
    for (std::string_view m : kMarkup) {
      EXPECT_EQ(seen.content.find(m), std::string::npos) << "content leaked " << m << ": " << seen.content;
      EXPECT_EQ(seen.reasoning_content.find(m), std::string::npos) << "reasoning leaked " << m;
    }
    EXPECT_TRUE(whole.content.starts_with(seen.content)) << seen.content;
    EXPECT_TRUE(whole.reasoning_content.starts_with(seen.reasoning_content)) << seen.reasoning_content;
    EXPECT_LE(seen.tool_calls.size(), whole.tool_calls.size());
  };
  for (int id : tok.encode(completion)) take(stream.push(detok.push(id)));
  take(stream.push(detok.finish()));
  take(stream.finish());
  EXPECT_EQ(stream.message(), whole);
  return seen;
}

TEST(CompletionParser, Vectors) {
  for (const auto& c : test_data::ordered_chat_vectors()["parse_cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const auto text = c["completion"].get<std::string>();
    if (c.contains("expected_error")) {
      EXPECT_THROW(parse_completion(text, mode_of(c)), InputError);
      continue;
    }
    const AssistantMessage m = parse_completion(text, mode_of(c));
    EXPECT_EQ(m, expected_of(c));
    EXPECT_EQ(m.to_json(), c["expected_message"]);
  }
}

TEST(CompletionStream, TokenByTokenEqualsWholeParse) {
  for (const auto& c : test_data::ordered_chat_vectors()["parse_cases"]) {
    SCOPED_TRACE(c["name"].get<std::string>());
    const auto text = c["completion"].get<std::string>();
    if (c.contains("expected_error")) {
      // A malformed completion fails at the end of the stream too, and leaks nothing before.
      const Tokenizer& tok = test_data::tokenizer();
      StreamDetokenizer detok(tok);
      CompletionStream stream(mode_of(c));
      std::string content;
      for (int id : tok.encode(text)) content += stream.push(detok.push(id)).content;
      for (std::string_view m : kMarkup) EXPECT_EQ(content.find(m), std::string::npos);
      EXPECT_THROW(stream.finish(), InputError);
      continue;
    }
    const AssistantMessage whole = parse_completion(text, mode_of(c));
    EXPECT_EQ(stream_by_tokens(text, mode_of(c), whole), whole);
  }
}

// The assistant turns of the prompt vectors, cut out of the prompts, stream the same way.
TEST(CompletionStream, AssistantTurnsOfPromptVectors) {
  int n = 0;
  for (const auto& c : test_data::ordered_chat_vectors()["encode_cases"]) {
    if (!c.contains("expected_prompt")) continue;
    const auto prompt = c["expected_prompt"].get<std::string>();
    const bool thinking = c["options"]["thinking_mode"] == "thinking";
    // Each "<｜Assistant｜></think>" (chat) turn up to its EOS is a chat-mode completion.
    const std::string open = "<｜Assistant｜></think>", eos = "<｜end▁of▁sentence｜>";
    for (std::size_t p = prompt.find(open); p != std::string::npos; p = prompt.find(open, p + 1)) {
      const std::size_t start = p + open.size(), end = prompt.find(eos, start);
      if (end == std::string::npos) continue;
      const std::string completion = prompt.substr(start, end + eos.size() - start);
      if (completion.find("<｜User｜>") != std::string::npos || completion.find("<｜") == 0) continue;
      SCOPED_TRACE(c["name"].get<std::string>() + ": " + completion);
      AssistantMessage whole;
      try {
        whole = parse_completion(completion, ThinkingMode::Chat);
      } catch (const InputError&) {
        continue;  // e.g. a turn without EOS (wo_eos) is not a complete completion
      }
      ++n;
      EXPECT_EQ(stream_by_tokens(completion, ThinkingMode::Chat, whole), whole);
    }
    (void)thinking;
  }
  EXPECT_GT(n, 5);
}

TEST(CompletionParser, RejectsMarkupInContent) {
  EXPECT_THROW(parse_completion("</think>hi<｜end▁of▁sentence｜>", ThinkingMode::Chat), InputError);
  EXPECT_THROW(parse_completion("a<think>b<｜end▁of▁sentence｜>", ThinkingMode::Chat), InputError);
  EXPECT_THROW(parse_completion("r<｜end▁of▁sentence｜></think>c<｜end▁of▁sentence｜>", ThinkingMode::Thinking),
               InputError);
  EXPECT_THROW(parse_completion("x<｜DSML｜invoke name=\"f\"><｜end▁of▁sentence｜>", ThinkingMode::Chat), InputError);
}

TEST(CompletionParser, DuplicateParameterIsAnError) {
  const std::string text =
      "\n\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n"
      "<｜DSML｜parameter name=\"a\" string=\"true\">1</｜DSML｜parameter>\n"
      "<｜DSML｜parameter name=\"a\" string=\"true\">2</｜DSML｜parameter>\n"
      "</｜DSML｜invoke>\n</｜DSML｜tool_calls><｜end▁of▁sentence｜>";
  EXPECT_THROW(parse_completion(text, ThinkingMode::Chat), InputError);
}

TEST(CompletionStream, ToolCallIsEmittedWhenItsInvokeCloses) {
  CompletionStream s(ThinkingMode::Chat);
  EXPECT_EQ(s.push("Sure.\n").content, "Sure.");
  EXPECT_TRUE(s.push("\n<｜DSML｜tool_calls>\n<｜DSML｜invoke name=\"f\">\n").empty());
  EXPECT_TRUE(s.push("<｜DSML｜parameter name=\"x\" string=\"false\">1</｜DSML｜parameter>\n").empty());
  const CompletionDelta d = s.push("</｜DSML｜invoke>\n");
  ASSERT_EQ(d.tool_calls.size(), 1u);
  EXPECT_EQ(d.tool_calls[0].arguments, "{\"x\": 1}");
  EXPECT_TRUE(s.push("</｜DSML｜tool_calls><｜end▁of▁sentence｜>").empty());
  EXPECT_TRUE(s.finish().empty());
  EXPECT_EQ(s.message().content, "Sure.");
}

}  // namespace
}  // namespace flashline

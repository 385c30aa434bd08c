// Tokenizer against the reference vectors (ids, token strings, decoded text) and the
// invalid-UTF-8 policy.
#include "serving/tokenizer.h"

#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "serving/utf8.h"
#include "base/input_error.h"
#include "tests/serving/test_data.h"

namespace flashline {
namespace {

class TokenizerVectors : public ::testing::TestWithParam<std::string> {};

TEST_P(TokenizerVectors, IdsTokensAndDecodedTextMatch) {
  const Tokenizer& tok = test_data::tokenizer();
  int n = 0;
  for (const auto& c : test_data::tokenizer_vectors()["cases"]) {
    if (c["category"] != GetParam()) continue;
    ++n;
    SCOPED_TRACE(c["id"].get<std::string>());
    const auto text = c["text"].get<std::string>();
    const auto expected = c["ids"].get<std::vector<int>>();
    const std::vector<int> ids = tok.encode(text);
    EXPECT_EQ(ids, expected) << "text: " << text;
    std::vector<std::string> tokens;
    for (int id : expected) tokens.push_back(tok.token_string(id));
    EXPECT_EQ(tokens, c["tokens"].get<std::vector<std::string>>());
    EXPECT_EQ(tok.decode(expected), c["decoded"].get<std::string>());
  }
  EXPECT_GT(n, 0);
}

INSTANTIATE_TEST_SUITE_P(Categories, TokenizerVectors, ::testing::ValuesIn(test_data::distinct(test_data::tokenizer_vectors()["cases"], "category")),
                         [](const auto& info) { return info.param; });

TEST(Tokenizer, RealFileLoads) {
  // Load time is measured by bench/tokenizer_bench (load_s), not asserted here.
  const Tokenizer tok = Tokenizer::from_file(test_data::path("tokenizer/tokenizer.json"));
  EXPECT_EQ(tok.vocab_size(), 129280);
  EXPECT_EQ(tok.token_id("<｜User｜>"), 128803);
  EXPECT_TRUE(tok.is_added(128803));
  EXPECT_FALSE(tok.is_added(16));
}

// Characters assigned after PCRE2's Unicode version (14.0) split as in the reference
// (Unicode 17): a Unicode 15 emoji is a symbol, a Unicode 16 Garay letter a letter, a
// Unicode 17 combining mark a mark. Expected ids from @huggingface/tokenizers 0.2.0.
TEST(Tokenizer, NewerUnicodeCharactersSplitLikeTheReference) {
  const Tokenizer& tok = test_data::tokenizer();
  EXPECT_EQ(tok.encode("so \U0001FAE8\U0001FA77!"), (std::vector<int>{821, 7351, 107, 104, 3574, 105, 118, 3}));
  EXPECT_EQ(tok.encode("x \U000105C0\U000105C1y"), (std::vector<int>{90, 86387, 241, 248, 225, 120577, 248, 226, 91}));
  EXPECT_EQ(tok.encode("a\u1ACFb"), (std::vector<int>{67, 160, 107, 240, 68}));
}

TEST(Tokenizer, NothingIsAdded) {
  const Tokenizer& tok = test_data::tokenizer();
  EXPECT_TRUE(tok.encode("").empty());
  EXPECT_EQ(tok.encode("<｜begin▁of▁sentence｜>"), std::vector<int>{0});
}

TEST(Tokenizer, InvalidUtf8IsReplacedLikeDecode) {
  const Tokenizer& tok = test_data::tokenizer();
  // Lone continuation byte, truncated 3-byte sequence, surrogate, overlong, 0xFF.
  const std::string bad = "a\x80" "b\xE4\xB8" "c\xED\xA0\x80" "d\xC0\xAF" "e\xFF";
  const std::string repaired = utf8::to_valid_lossy(bad);
  EXPECT_EQ(repaired,
            "a\uFFFD" "b\uFFFD" "c\uFFFD\uFFFD\uFFFD" "d\uFFFD\uFFFD" "e\uFFFD");
  EXPECT_EQ(tok.encode(bad), tok.encode(repaired));
  EXPECT_EQ(tok.decode(tok.encode(bad)), repaired);
}

TEST(Tokenizer, DecodeReplacesBrokenBytes) {
  const Tokenizer& tok = test_data::tokenizer();
  // Bytes E4 B8 (the start of "中") as their byte-level symbols "ä" and "¸": one maximal
  // invalid subpart, so one U+FFFD; followed by "a" it stays a single replacement.
  const int e4 = *tok.token_id("ä"), b8 = *tok.token_id("¸"), a = *tok.token_id("a");
  EXPECT_EQ(tok.decode(std::vector<int>{e4, b8}), "\uFFFD");
  EXPECT_EQ(tok.decode(std::vector<int>{e4, b8, a}), "\uFFFDa");
  EXPECT_EQ(tok.decode(std::vector<int>{b8, b8}), "\uFFFD\uFFFD");
}

TEST(Tokenizer, UnknownIdIsAnInputError) {
  const Tokenizer& tok = test_data::tokenizer();
  const std::vector<int> ids{16, 129280};
  EXPECT_THROW(tok.decode(ids), InputError);
  const std::vector<int> negative{-1};
  EXPECT_THROW(tok.decode(negative), InputError);
}

TEST(Tokenizer, BadFileNamesThePath) {
  try {
    Tokenizer::from_json_text(R"({"model": {"type": "BPE", "vocab": [], "merges": []}})", "t.json");
    FAIL();
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("t.json: model.vocab"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Tokenizer::from_json_text("{", "t.json"), InputError);
  EXPECT_THROW(Tokenizer::from_file("does/not/exist.json"), InputError);
}

}  // namespace
}  // namespace flashline

// The streaming detokenizer on fixed cases of a character split across tokens: bytes are held
// back until the character is complete, and an unfinished character becomes U+FFFD.
#include "serving/stream_detokenizer.h"

#include <gtest/gtest.h>

#include "tests/serving/test_data.h"

namespace flashline {
namespace {

// The byte-level BPE alphabet: printable Latin-1 bytes stand for themselves, the other bytes for
// U+0100 + their index among the others (the GPT-2 mapping DeepSeek's tokenizer uses).
std::string byte_token(unsigned char b) {
  auto printable = [](int c) { return (c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF); };
  int cp = b;
  if (!printable(b)) {
    int n = 0;
    for (int c = 0; c < b; ++c) n += !printable(c);
    cp = 0x100 + n;
  }
  std::string s;
  if (cp < 0x80) {
    s += char(cp);
  } else {
    s += char(0xC0 | (cp >> 6));
    s += char(0x80 | (cp & 0x3F));
  }
  return s;
}

int id_of_byte(const Tokenizer& tok, unsigned char b) {
  const auto id = tok.token_id(byte_token(b));
  EXPECT_TRUE(id.has_value()) << "no token for byte " << int(b);
  return id.value_or(0);
}

TEST(StreamDetokenizer, CharacterSplitOverThreeTokensIsHeldBackUntilComplete) {
  const Tokenizer& tok = test_data::tokenizer();
  // "你" is E4 BD A0; "a" follows.
  const int e4 = id_of_byte(tok, 0xE4), bd = id_of_byte(tok, 0xBD), a0 = id_of_byte(tok, 0xA0);
  const int a = id_of_byte(tok, 'a');
  ASSERT_EQ(tok.token_bytes(e4), "\xE4");
  ASSERT_EQ(tok.token_bytes(a0), "\xA0");
  StreamDetokenizer d(tok);
  EXPECT_EQ(d.push(e4), "");
  EXPECT_EQ(d.push(bd), "");
  EXPECT_EQ(d.push(a0), "你");
  EXPECT_EQ(d.push(a), "a");
  EXPECT_EQ(d.finish(), "");
}

TEST(StreamDetokenizer, UnfinishedCharacterAtTheEndBecomesOneReplacement) {
  const Tokenizer& tok = test_data::tokenizer();
  const int e4 = id_of_byte(tok, 0xE4), bd = id_of_byte(tok, 0xBD);
  StreamDetokenizer d(tok);
  EXPECT_EQ(d.push(e4), "");
  EXPECT_EQ(d.push(bd), "");
  EXPECT_EQ(d.finish(), "\xEF\xBF\xBD");
}

TEST(StreamDetokenizer, InterruptedCharacterStreamsLikeTheWholeDecode) {
  const Tokenizer& tok = test_data::tokenizer();
  const std::vector<int> ids = {id_of_byte(tok, 0xE4), id_of_byte(tok, 'a'), id_of_byte(tok, 0xE4),
                                id_of_byte(tok, 0xBD), id_of_byte(tok, 0xA0)};
  StreamDetokenizer d(tok);
  std::string streamed;
  for (int id : ids) streamed += d.push(id);
  streamed += d.finish();
  EXPECT_EQ(streamed, "\xEF\xBF\xBD" "a你");
  EXPECT_EQ(streamed, tok.decode(ids));
}

}  // namespace
}  // namespace flashline

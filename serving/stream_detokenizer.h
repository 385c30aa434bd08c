#pragma once
// Turns generated token ids into text as they arrive. A token can end in the middle of a
// UTF-8 sequence (byte-level BPE splits characters), so bytes are held back until their
// sequence is complete; nothing emitted is ever a broken sequence, and the concatenation
// of every push() and finish() equals Tokenizer::decode of all the ids.
#include <string>

#include "base/input_error.h"
#include "serving/tokenizer.h"

namespace flashline {

class StreamDetokenizer {
 public:
  explicit StreamDetokenizer(const Tokenizer& tokenizer) : tokenizer_(&tokenizer) {}

  // The text this token completes (often empty or several characters). Throws InputError
  // for an id that has no token.
  std::string push(int id);
  // Ends the stream: held-back bytes of an unfinished sequence become one U+FFFD.
  std::string finish();

 private:
  const Tokenizer* tokenizer_;
  std::string pending_;  // bytes of one unfinished sequence (at most 3)
};

}  // namespace flashline

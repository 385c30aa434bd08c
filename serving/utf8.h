#pragma once
// UTF-8 helpers shared by the tokenizer, the streaming detokenizer and the chat format.
//
// Invalid input follows the rule of Rust's String::from_utf8_lossy and Python's
// bytes.decode("utf-8", "replace") (Unicode "substitution of maximal subparts"): every
// maximal prefix of a well-formed sequence that cannot be completed becomes one U+FFFD.
// This is what Hugging Face tokenizers do when they decode bytes to text.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace flashline::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// What is at the start of a byte range.
struct Scan {
  enum Kind { Valid, Invalid, Incomplete } kind;
  // Valid: the sequence length. Invalid: the length of the maximal subpart to replace.
  // Incomplete: the number of bytes present (a prefix of a valid sequence cut by the end).
  std::size_t length;
};

// Classifies the sequence starting at bytes[0]; `bytes` must not be empty.
Scan scan(std::string_view bytes);

// True when `bytes` is well-formed UTF-8 (no surrogates, no overlongs, <= U+10FFFF).
bool is_valid(std::string_view bytes);

// `bytes` with every invalid or truncated sequence replaced by U+FFFD.
std::string to_valid_lossy(std::string_view bytes);

// Appends the UTF-8 encoding of `cp` (which must be a scalar value).
void append(std::string& out, char32_t cp);

// Decodes the valid sequence at `s[i]`, advancing `i`. Only for valid input.
char32_t decode_next(std::string_view s, std::size_t& i);

}  // namespace flashline::utf8

#pragma once
// The Hugging Face byte-level BPE tokenizer of DeepSeek-V4, loaded from tokenizer.json.
//
// encode: added tokens are cut out of the raw text first (longest match, left to right),
// the rest goes through the pre-tokenizer (regex splits) and byte-level BPE. Nothing is
// added around the text (no BOS/EOS): the chat prompt carries its own BOS.
// decode: tokens back to bytes, then UTF-8 with invalid sequences replaced by U+FFFD.
//
// Invalid UTF-8 given to encode is replaced by U+FFFD first (same rule as decode, see
// serving/utf8.h), so encode never fails and decode(encode(b)) == utf8::to_valid_lossy(b).
#include <cstdint>
#include <filesystem>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "base/input_error.h"
#include "serving/added_token_matcher.h"
#include "serving/bpe_model.h"
#include "serving/pre_tokenizer.h"
#include "serving/token_index.h"

namespace flashline {

class Tokenizer {
 public:
  // Throws InputError naming the file and the JSON path of what is wrong.
  static Tokenizer from_file(const std::filesystem::path& file);
  static Tokenizer from_json_text(std::string_view json_text, std::string_view source);
  Tokenizer(Tokenizer&&) = default;
  Tokenizer& operator=(Tokenizer&&) = default;
  Tokenizer(const Tokenizer&) = delete;  // the token index points into strings_

  std::vector<int> encode(std::string_view text) const;

  // Decoded text of `ids`; throws InputError for an id that has no token.
  std::string decode(std::span<const int> ids) const;

  // The bytes one token decodes to (before UTF-8 repair); throws InputError for an unknown id.
  std::string_view token_bytes(int id) const;
  // The token's string in the file (byte-level alphabet for BPE tokens, verbatim for added ones).
  const std::string& token_string(int id) const;
  std::optional<int> token_id(std::string_view token_string) const;
  bool is_added(int id) const;
  // One past the largest id.
  int vocab_size() const { return static_cast<int>(strings_.size()); }

 private:
  Tokenizer();
  // Tokens of recently seen pieces: text repeats words, so most pieces skip BPE.
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  struct PieceCache {
    static constexpr std::size_t kMaxEntries = 1 << 16;
    static constexpr std::size_t kMaxPiece = 64;  // long pieces are rare repeats
    std::uint64_t owner = 0;
    std::unordered_map<std::string, std::pair<std::uint32_t, std::uint32_t>, StringHash, std::equal_to<>> map;
    std::vector<int> ids;
    void add(std::string_view piece, std::span<const int> tokens);
  };
  static PieceCache& piece_cache(std::uint64_t instance);
  bool known(int id) const { return id >= 0 && id < vocab_size() && present_[id]; }
  void encode_segment(std::string_view segment, std::vector<int>& out,
                      PieceCache& cache, std::vector<Piece>& pieces) const;

  std::uint64_t instance_;  // tags this tokenizer's entries in the per-thread piece cache
  PreTokenizer pre_tokenizer_;
  BpeModel bpe_;
  AddedTokenMatcher added_;
  bool ignore_merges_ = false;
  TokenIndex ids_;                   // token string -> id (added tokens win)
  std::vector<std::string> strings_;          // id -> token string
  std::vector<std::string> bytes_;            // id -> decoded bytes
  std::vector<bool> present_;
  std::vector<bool> added_ids_;
};

}  // namespace flashline

#include "serving/tokenizer.h"

#include <fmt/format.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "base/input_error.h"
#include "base/input_file.h"
#include "serving/tokenizer_file.h"
#include "serving/utf8.h"

namespace flashline {

namespace {

// Ids index dense tables; anything larger is a broken file, not a big vocabulary.
constexpr long long kMaxId = 1 << 24;

// GPT-2's byte <-> character table: printable Latin-1 bytes map to themselves, the others
// to U+0100 and up, so every byte is a visible character in the vocabulary strings.
struct ByteLevelAlphabet {
  std::array<char32_t, 256> char_of{};
  std::array<int, 512> byte_of;  // every alphabet character is below U+0200; -1: not one
  ByteLevelAlphabet() {
    byte_of.fill(-1);
    char32_t extra = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
      char_of[b] = printable ? static_cast<char32_t>(b) : extra++;
      byte_of[char_of[b]] = static_cast<unsigned char>(b);
    }
  }
};

const ByteLevelAlphabet& alphabet() {
  static const ByteLevelAlphabet a;
  return a;
}

// Hugging Face's ByteLevel decoder: a token whose characters are all in the alphabet becomes
// those bytes; any other token (e.g. an added token with U+FF5C in it) stays as its UTF-8.
std::string byte_level_decode(std::string_view token) {
  const auto& a = alphabet();
  std::string out;
  out.reserve(token.size());
  if (!utf8::is_valid(token)) return std::string(token);
  for (std::size_t i = 0; i < token.size();) {
    const char32_t c = utf8::decode_next(token, i);
    if (c >= a.byte_of.size() || a.byte_of[c] < 0) return std::string(token);
    out += static_cast<char>(a.byte_of[c]);
  }
  return out;
}

const nlohmann::json& member(const nlohmann::json& obj, const char* key, const std::string& path,
                             std::string_view source) {
  auto it = obj.find(key);
  if (it == obj.end()) throw InputError(fmt::format("{}: {}.{} is missing", source, path, key));
  return *it;
}

}  // namespace

void Tokenizer::PieceCache::add(std::string_view piece, std::span<const int> tokens) {
  if (map.size() >= kMaxEntries) {  // bounded: start over rather than track recency
    map.clear();
    ids.clear();
  }
  map.emplace(std::string(piece), std::pair<std::uint32_t, std::uint32_t>(static_cast<std::uint32_t>(ids.size()),
                                                                         static_cast<std::uint32_t>(tokens.size())));
  ids.insert(ids.end(), tokens.begin(), tokens.end());
}

Tokenizer::PieceCache& Tokenizer::piece_cache(std::uint64_t instance) {
  // One cache per thread keeps encode() const and lock-free. It is tagged with a unique
  // instance number, never an address, so a new tokenizer never sees another one's entries.
  thread_local PieceCache cache;
  if (cache.owner != instance) {
    cache.map.clear();
    cache.ids.clear();
    cache.owner = instance;
  }
  return cache;
}

Tokenizer::Tokenizer() {
  static std::atomic<std::uint64_t> next_instance{1};
  instance_ = next_instance++;
}

Tokenizer Tokenizer::from_file(const std::filesystem::path& file) {
  return from_json_text(read_input_file(file, "tokenizer file"), file.string());
}

Tokenizer Tokenizer::from_json_text(std::string_view json_text, std::string_view source) {
  TokenizerFile file = TokenizerFile::parse(json_text, source);
  const nlohmann::json& root = file.rest;
  Tokenizer t;

  // Only the identity normalizer is supported: DeepSeek's is an empty sequence.
  if (auto it = root.find("normalizer"); it != root.end() && !it->is_null()) {
    const bool empty_sequence = it->value("type", "") == "Sequence" && it->contains("normalizers") &&
                                (*it)["normalizers"].is_array() && (*it)["normalizers"].empty();
    if (!empty_sequence)
      throw InputError(fmt::format("{}: normalizer: only an empty Sequence is supported", source));
  }
  if (auto it = root.find("decoder"); it != root.end() && !it->is_null() && it->value("type", "") != "ByteLevel")
    throw InputError(fmt::format("{}: decoder: only ByteLevel is supported", source));
  t.pre_tokenizer_ = PreTokenizer(root.value("pre_tokenizer", nlohmann::json()), source);

  const auto& model = member(root, "model", "$", source);
  if (!model.is_object()) throw InputError(fmt::format("{}: model: expected an object", source));
  if (model.value("type", "BPE") != "BPE")
    throw InputError(fmt::format("{}: model.type: only BPE is supported", source));
  if (model.contains("byte_fallback") && model["byte_fallback"].is_boolean() && model["byte_fallback"].get<bool>())
    throw InputError(fmt::format("{}: model.byte_fallback: true is not supported", source));
  t.ignore_merges_ = model.contains("ignore_merges") && model["ignore_merges"].is_boolean() &&
                     model["ignore_merges"].get<bool>();
  if (!file.has_vocab) throw InputError(fmt::format("{}: model.vocab: expected an object", source));
  if (!file.has_merges) throw InputError(fmt::format("{}: model.merges: expected an array", source));

  const nlohmann::json* added = nullptr;
  if (auto it = root.find("added_tokens"); it != root.end() && !it->is_null()) {
    if (!it->is_array()) throw InputError(fmt::format("{}: added_tokens: expected an array", source));
    added = &*it;
  }
  // Tables are sized once so that ids_ can key on views of strings_.
  long long max_id = -1;
  for (const auto& [token, id] : file.vocab) max_id = std::max(max_id, id);
  for (std::size_t i = 0; added && i < added->size(); ++i) {
    const auto& a = (*added)[i];
    const std::string path = fmt::format("added_tokens[{}]", i);
    if (!a.is_object()) throw InputError(fmt::format("{}: {}: expected an object", source, path));
    const auto& id = member(a, "id", path, source);
    const auto& content = member(a, "content", path, source);
    if (!id.is_number_integer() || id.get<long long>() < 0 || !content.is_string())
      throw InputError(fmt::format("{}: {}: expected an integer id and a string content", source, path));
    max_id = std::max(max_id, id.get<long long>());
  }
  if (max_id > kMaxId) throw InputError(fmt::format("{}: token id {} is too large", source, max_id));
  t.strings_.resize(max_id + 1);
  t.bytes_.resize(max_id + 1);
  t.present_.resize(max_id + 1);
  t.added_ids_.resize(max_id + 1);

  auto set_token = [&t](int id, std::string s, bool added) {
    t.bytes_[id] = byte_level_decode(s);
    t.strings_[id] = std::move(s);
    t.present_[id] = true;
    t.added_ids_[id] = added;
  };

  t.ids_ = TokenIndex(&t.strings_);
  t.ids_.reserve(file.vocab.size() + (added ? added->size() : 0));
  for (auto& [token, id] : file.vocab) {
    set_token(static_cast<int>(id), std::move(token), false);
    t.ids_.insert(static_cast<int>(id));
  }

  std::vector<int> byte_ids(256);
  for (int b = 0; b < 256; ++b) {
    std::string ch;
    utf8::append(ch, alphabet().char_of[b]);
    const auto id = t.ids_.find(ch);
    if (!id)
      throw InputError(fmt::format("{}: model.vocab: byte-level symbol for byte {} is missing", source, b));
    byte_ids[b] = *id;
  }
  t.bpe_ = BpeModel(std::move(byte_ids));

  t.bpe_.reserve(file.merges.size());
  std::string joined;
  for (std::size_t rank = 0; rank < file.merges.size(); ++rank) {
    const auto& [left, right] = file.merges[rank];
    joined.assign(left).append(right);
    const auto l = t.ids_.find(left), r = t.ids_.find(right), j = t.ids_.find(joined);
    if (!l || !r || !j)
      throw InputError(fmt::format("{}: model.merges[{}]: a token of this merge is not in the vocab", source, rank));
    t.bpe_.add_merge(*l, *r, static_cast<int>(rank), *j);
  }

  for (std::size_t i = 0; added && i < added->size(); ++i) {
    {
      const auto& a = (*added)[i];
      const std::string path = fmt::format("added_tokens[{}]", i);
      const auto& id = a["id"];
      const auto& content = a["content"];
      for (const char* flag : {"lstrip", "rstrip", "single_word"})
        if (a.contains(flag) && a[flag].is_boolean() && a[flag].get<bool>())
          throw InputError(fmt::format("{}: {}.{}: true is not supported", source, path, flag));
      const std::string& s = content.get_ref<const std::string&>();
      t.added_.add(s, id.get<int>());
      set_token(id.get<int>(), s, true);
      t.ids_.insert(id.get<int>());
    }
  }
  return t;
}

std::vector<int> Tokenizer::encode(std::string_view raw) const {
  std::string repaired;
  std::string_view text = raw;
  if (!utf8::is_valid(raw)) {
    repaired = utf8::to_valid_lossy(raw);
    text = repaired;
  }
  std::vector<int> out;
  out.reserve(text.size() / 3 + 8);
  // Pieces repeat a lot in real text; their tokens are computed once per call.
  PieceCache& cache = piece_cache(instance_);
  std::vector<Piece> pieces;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const auto m = added_.next(text, pos);
    if (m.begin > pos) encode_segment(text.substr(pos, m.begin - pos), out, cache, pieces);
    if (m.id < 0) break;
    out.push_back(m.id);
    pos = m.end;
  }
  return out;
}

void Tokenizer::encode_segment(
    std::string_view segment, std::vector<int>& out,
    PieceCache& cache, std::vector<Piece>& pieces) const {
  pre_tokenizer_.split(segment, pieces);
  for (const Piece& p : pieces) {
    const std::string_view piece = segment.substr(p.begin, p.end - p.begin);
    if (piece.empty()) continue;
    if (piece.size() == 1) {  // a single byte is always its byte symbol
      bpe_.encode(piece, out);
      continue;
    }
    const bool cacheable = piece.size() <= PieceCache::kMaxPiece;
    if (auto it = cacheable ? cache.map.find(piece) : cache.map.end(); it != cache.map.end()) {
      out.insert(out.end(), cache.ids.begin() + it->second.first,
                 cache.ids.begin() + it->second.first + it->second.second);
      continue;
    }
    const std::size_t start = out.size();
    bool done = false;
    if (ignore_merges_) {
      std::string chars;
      for (char c : piece) utf8::append(chars, alphabet().char_of[static_cast<unsigned char>(c)]);
      if (const auto id = ids_.find(chars); id && !added_ids_[*id]) {
        out.push_back(*id);
        done = true;
      }
    }
    if (!done) bpe_.encode(piece, out);
    if (cacheable) cache.add(piece, std::span<const int>(out.data() + start, out.size() - start));
  }
}

std::string_view Tokenizer::token_bytes(int id) const {
  if (!known(id)) throw InputError(fmt::format("token id {} is not in the vocabulary", id));
  return bytes_[id];
}

const std::string& Tokenizer::token_string(int id) const {
  if (!known(id)) throw InputError(fmt::format("token id {} is not in the vocabulary", id));
  return strings_[id];
}

std::optional<int> Tokenizer::token_id(std::string_view token) const {
  return ids_.find(token);
}

bool Tokenizer::is_added(int id) const { return known(id) && added_ids_[id]; }

std::string Tokenizer::decode(std::span<const int> ids) const {
  std::string bytes;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (!known(ids[i]))
      throw InputError(fmt::format("ids[{}]: token id {} is not in the vocabulary", i, ids[i]));
    bytes += bytes_[ids[i]];
  }
  return utf8::is_valid(bytes) ? bytes : utf8::to_valid_lossy(bytes);
}

}  // namespace flashline

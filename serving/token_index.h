#pragma once
// Token string -> id over strings owned elsewhere (the tokenizer's id -> string table).
// Open addressing with the hash stored inline: loading probes it ~400k times (every merge
// looks up three strings) and std::unordered_map's node chasing dominated load time.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flashline {

class TokenIndex {
 public:
  // Indexes into `strings`' buffer, which must outlive the index and never reallocate
  // (moving the vector keeps the buffer, so the owner may be moved).
  explicit TokenIndex(const std::vector<std::string>* strings = nullptr)
      : strings_(strings ? strings->data() : nullptr) {}
  void reserve(std::size_t n);
  // Later inserts of the same string win (added tokens override vocab entries).
  void insert(int id);
  std::optional<int> find(std::string_view s) const;

 private:
  static std::uint64_t hash(std::string_view s);
  struct Slot {
    std::uint64_t hash;
    int id;  // -1: empty
  };
  const std::string* strings_;
  std::vector<Slot> slots_;
  std::size_t size_ = 0;
};

}  // namespace flashline

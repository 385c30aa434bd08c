#pragma once
// Byte-level BPE: the 256 byte symbols and the merge table, ranked. Encoding a piece starts
// from one symbol per byte and repeatedly merges the adjacent pair of lowest rank (leftmost
// on ties) until no pair has a merge, exactly as Hugging Face's BPE model does.
#include <cstdint>
#include <string_view>
#include <vector>

namespace flashline {

class BpeModel {
 public:
  struct Merge {
    int rank;
    int id;  // the merged token
  };

  BpeModel() = default;
  // `byte_ids[b]` is the token of the single byte b.
  explicit BpeModel(std::vector<int> byte_ids);
  void reserve(std::size_t merges);
  // Returns false when the pair already has a merge (the first, lowest rank, is kept).
  bool add_merge(int left, int right, int rank, int merged);
  const Merge* find(int left, int right) const;

  // Appends the tokens of `bytes` (one pre-tokenized piece) to `out`.
  void encode(std::string_view bytes, std::vector<int>& out) const;

 private:
  static std::uint64_t key(int left, int right) {
    return (static_cast<std::uint64_t>(static_cast<std::uint32_t>(left)) << 32) |
           static_cast<std::uint32_t>(right);
  }
  void grow();
  void encode_short(std::string_view bytes, std::vector<int>& out) const;
  void encode_long(std::string_view bytes, std::vector<int>& out) const;

  std::vector<int> byte_ids_;
  // Open addressing: the table is probed on every candidate pair of every piece, so it is
  // kept flat (one cache line per probe) instead of a node-based std::unordered_map.
  std::vector<std::uint64_t> keys_;
  std::vector<Merge> values_;
  std::size_t size_ = 0;
  std::size_t mask_ = 0;
};

}  // namespace flashline

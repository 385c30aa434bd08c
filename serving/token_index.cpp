#include "serving/token_index.h"

namespace flashline {

std::uint64_t TokenIndex::hash(std::string_view s) {
  std::uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a, then a final mix for the low bits
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
  h ^= h >> 29;
  h *= 0xbf58476d1ce4e5b9ULL;
  return h ^ (h >> 32);
}

void TokenIndex::reserve(std::size_t n) {
  std::size_t cap = 16;
  while (cap < n * 2) cap *= 2;
  if (cap <= slots_.size()) return;
  std::vector<Slot> old(cap, Slot{0, -1});
  old.swap(slots_);
  size_ = 0;
  for (const Slot& s : old)
    if (s.id >= 0) insert(s.id);
}

void TokenIndex::insert(int id) {
  if ((size_ + 1) * 2 > slots_.size()) reserve(size_ + 1 < 8 ? 16 : (size_ + 1) * 2);
  const std::string_view s = strings_[id];
  const std::uint64_t h = hash(s);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    Slot& slot = slots_[i];
    if (slot.id < 0) {
      slot = {h, id};
      ++size_;
      return;
    }
    if (slot.hash == h && strings_[slot.id] == s) {
      slot.id = id;
      return;
    }
  }
}

std::optional<int> TokenIndex::find(std::string_view s) const {
  if (slots_.empty()) return std::nullopt;
  const std::uint64_t h = hash(s);
  const std::size_t mask = slots_.size() - 1;
  for (std::size_t i = h & mask;; i = (i + 1) & mask) {
    const Slot& slot = slots_[i];
    if (slot.id < 0) return std::nullopt;
    if (slot.hash == h && strings_[slot.id] == s) return slot.id;
  }
}

}  // namespace flashline

#include "serving/bpe_model.h"

#include <algorithm>
#include <limits>
#include <queue>

namespace flashline {

namespace {
constexpr std::uint64_t kEmpty = std::numeric_limits<std::uint64_t>::max();
constexpr int kNoMerge = std::numeric_limits<int>::max();
// Below this many bytes a quadratic scan beats the heap (no allocation, linear memory).
constexpr std::size_t kShortPiece = 128;

std::uint64_t mix(std::uint64_t k) {
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  return k;
}
}  // namespace

BpeModel::BpeModel(std::vector<int> byte_ids) : byte_ids_(std::move(byte_ids)) {
  keys_.assign(16, kEmpty);
  values_.resize(16);
  mask_ = 15;
}

void BpeModel::reserve(std::size_t merges) {
  while (keys_.size() < merges * 2) grow();
}

void BpeModel::grow() {
  std::vector<std::uint64_t> old_keys(keys_.size() * 2, kEmpty);
  std::vector<Merge> old_values(values_.size() * 2);
  old_keys.swap(keys_);
  old_values.swap(values_);
  mask_ = keys_.size() - 1;
  for (std::size_t i = 0; i < old_keys.size(); ++i) {
    if (old_keys[i] == kEmpty) continue;
    std::size_t h = mix(old_keys[i]) & mask_;
    while (keys_[h] != kEmpty) h = (h + 1) & mask_;
    keys_[h] = old_keys[i];
    values_[h] = old_values[i];
  }
}

bool BpeModel::add_merge(int left, int right, int rank, int merged) {
  if ((size_ + 1) * 2 > keys_.size()) grow();
  const std::uint64_t k = key(left, right);
  std::size_t h = mix(k) & mask_;
  while (keys_[h] != kEmpty) {
    if (keys_[h] == k) return false;
    h = (h + 1) & mask_;
  }
  keys_[h] = k;
  values_[h] = {rank, merged};
  ++size_;
  return true;
}

const BpeModel::Merge* BpeModel::find(int left, int right) const {
  const std::uint64_t k = key(left, right);
  std::size_t h = mix(k) & mask_;
  while (keys_[h] != kEmpty) {
    if (keys_[h] == k) return &values_[h];
    h = (h + 1) & mask_;
  }
  return nullptr;
}

void BpeModel::encode(std::string_view bytes, std::vector<int>& out) const {
  if (bytes.empty()) return;
  if (bytes.size() <= kShortPiece)
    encode_short(bytes, out);
  else
    encode_long(bytes, out);
}

void BpeModel::encode_short(std::string_view bytes, std::vector<int>& out) const {
  int sym[kShortPiece];
  int rank[kShortPiece];  // rank[i]: merge rank of (sym[i], sym[i+1])
  int merged[kShortPiece];
  std::size_t n = bytes.size();
  for (std::size_t i = 0; i < n; ++i) sym[i] = byte_ids_[static_cast<unsigned char>(bytes[i])];
  auto score = [&](std::size_t i) {
    const Merge* m = find(sym[i], sym[i + 1]);
    rank[i] = m ? m->rank : kNoMerge;
    merged[i] = m ? m->id : -1;
  };
  for (std::size_t i = 0; i + 1 < n; ++i) score(i);
  while (n > 1) {
    std::size_t best = 0;
    for (std::size_t i = 1; i + 1 < n; ++i)
      if (rank[i] < rank[best]) best = i;
    if (rank[best] == kNoMerge) break;
    sym[best] = merged[best];
    for (std::size_t i = best + 1; i + 1 < n; ++i) {
      sym[i] = sym[i + 1];
      rank[i] = rank[i + 1];
      merged[i] = merged[i + 1];
    }
    --n;
    if (best > 0) score(best - 1);
    if (best + 1 < n) score(best);
  }
  out.insert(out.end(), sym, sym + n);
}

void BpeModel::encode_long(std::string_view bytes, std::vector<int>& out) const {
  // Symbols form a linked list; candidate pairs sit in a min-heap keyed by (rank, position),
  // so equal ranks merge leftmost first. Stale entries are recognised by their token ids.
  const std::size_t n = bytes.size();
  std::vector<int> sym(n), prev(n), next(n);
  for (std::size_t i = 0; i < n; ++i) {
    sym[i] = byte_ids_[static_cast<unsigned char>(bytes[i])];
    prev[i] = static_cast<int>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int>(i + 1) : -1;
  }
  struct Candidate {
    int rank, pos, left, right, merged;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  auto push = [&](int i) {
    if (i < 0 || next[i] < 0) return;
    if (const Merge* m = find(sym[i], sym[next[i]])) heap.push({m->rank, i, sym[i], sym[next[i]], m->id});
  };
  for (std::size_t i = 0; i + 1 < n; ++i) push(static_cast<int>(i));
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    const int r = next[c.pos];
    if (sym[c.pos] != c.left || r < 0 || sym[r] != c.right) continue;  // stale
    sym[c.pos] = c.merged;
    sym[r] = -1;
    next[c.pos] = next[r];
    if (next[r] >= 0) prev[next[r]] = c.pos;
    push(prev[c.pos]);
    push(c.pos);
  }
  for (int i = 0; i >= 0; i = next[i]) out.push_back(sym[i]);
}

}  // namespace flashline

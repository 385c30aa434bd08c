#include "stages/request_state.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

#include <fmt/format.h>

#include "base/input_error.h"
#include "kernels/cpu/threads.h"

namespace flashline {

KvStorage::KvStorage(const ModelConfig& c, std::size_t budget_bytes, std::size_t page_bytes)
    : pool(budget_bytes, page_bytes),
      kv(c.head_dim, c.rope_dim),
      key(c.index_dim > 0 ? c.index_dim : 32),
      compressor(c.head_dim),
      compressor4(2 * c.head_dim),
      index_compressor(2 * std::max(c.index_dim, 1)) {
  for (const KvRecordCodec* codec : {static_cast<const KvRecordCodec*>(&kv), static_cast<const KvRecordCodec*>(&key),
                                     static_cast<const KvRecordCodec*>(&compressor),
                                     static_cast<const KvRecordCodec*>(&compressor4),
                                     static_cast<const KvRecordCodec*>(&index_compressor)})
    if (codec->record_bytes() > page_bytes)
      throw InputError(fmt::format("KV pages of {} bytes are smaller than one {}-byte row of this model's KV state "
                                   "(use pages of at least {} bytes)",
                                   page_bytes, codec->record_bytes(), codec->record_bytes()));
}

const KvRecordCodec& KvStorage::compressor_codec(int cols) const {
  if (cols == compressor.values()) return compressor;
  if (cols == compressor4.values()) return compressor4;
  if (cols == index_compressor.values()) return index_compressor;
  throw std::logic_error("KvStorage: no compressor codec for this row width");
}

KvRows::KvRows(int cols, KvPagePool& pool, const KvRecordCodec& codec)
    : cols_(cols), paged_(true), rows_(pool, codec) {
  if (codec.values() != cols) throw std::logic_error("KvRows: codec width differs from the row width");
}

void KvRows::get(int i, float* row) const {
  if (paged_) return rows_.get(i, row);
  std::copy_n(&plain_[std::size_t(i) * cols_], cols_, row);
}

void KvRows::record(int pos, int row) {
  if (!journal_) return;
  if (pos < 0) throw std::logic_error("KvRows: a journaled write without its token position");
  if (!undo_.empty() && pos < undo_.back().pos)
    throw std::logic_error("KvRows: journaled writes out of position order");
  Undo u{pos, row, {}};
  if (row >= 0) {
    u.old.resize(cols_);
    get(row, u.old.data());
  }
  undo_.push_back(std::move(u));
}

void KvRows::set(int i, const float* row, int pos) {
  record(pos, i);
  if (paged_) return rows_.set(i, row);
  std::copy_n(row, cols_, &plain_[std::size_t(i) * cols_]);
}

void KvRows::append(const float* row, int pos) {
  record(pos, -1);
  if (paged_) return rows_.append(row);
  plain_.insert(plain_.end(), row, row + cols_);
}

void KvRows::open_journal() {
  journal_ = true;
  undo_.clear();
}

void KvRows::rollback(int pos) {
  // Newest first: a row written twice gets back what it held before the first write.
  while (!undo_.empty() && undo_.back().pos >= pos) {
    const Undo& u = undo_.back();
    if (u.row < 0) {
      truncate(size() - 1);
    } else if (paged_) {
      rows_.set(u.row, u.old.data());
    } else {
      std::copy(u.old.begin(), u.old.end(), &plain_[std::size_t(u.row) * cols_]);
    }
    undo_.pop_back();
  }
}

void KvRows::close_journal() {
  journal_ = false;
  undo_.clear();
}

namespace {
// f(i) for i in [0, n), in chunks of 64 over the threads. Decoding rows is the work of reading a
// long context: a decode step's indexer reads every key, a ratio-128 layer every compressed
// entry, for one query.
template <class F>
void for_row_chunks(int n, F&& f) {
  constexpr int kChunk = 64;
  const int chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for num_threads(kernel_threads(chunks)) schedule(static)
  for (int c = 0; c < chunks; ++c)
    for (int i = c * kChunk; i < std::min(n, (c + 1) * kChunk); ++i) f(i);
}
}  // namespace

void KvRows::get_all(float* out) const {
  if (!paged_) return void(std::copy(plain_.begin(), plain_.end(), out));
  for_row_chunks(rows_.size(), [&](int i) { rows_.get(i, out + std::size_t(i) * cols_); });
}

void KvRows::get_rows(const std::vector<int32_t>& ids, float* out) const {
  for_row_chunks(int(ids.size()), [&](int i) { get(ids[i], out + std::size_t(i) * cols_); });
}

void KvRows::fill(int n, float value) {
  if (!paged_) return plain_.resize(plain_.size() + std::size_t(n) * cols_, value);
  if (!rows_.reserve(rows_.size() + n)) throw std::runtime_error("KV pages exhausted");
  const std::vector<float> row(cols_, value);
  for (int i = 0; i < n; ++i) rows_.append(row.data());
}

void KvRows::truncate(int n) {
  if (n < 0 || n > size()) throw std::logic_error("KvRows::truncate: bad row count");
  if (paged_) return rows_.truncate(n);
  plain_.resize(std::size_t(n) * cols_);
}

void CompressorState::reset(int r, int c, KvStorage* storage) {
  rows = r;
  cols = c;
  if (storage) {
    kv = KvRows(c, storage->pool, storage->compressor_codec(c));
    score = KvRows(c, storage->pool, storage->compressor_codec(c));
  } else {
    kv = KvRows(c);
    score = KvRows(c);
  }
  kv.fill(r, 0.0f);
  score.fill(r, -std::numeric_limits<float>::infinity());
}

RequestState RequestState::fresh(const ModelConfig& c, int begin, int end, KvStorage* storage) {
  RequestState s;
  s.layer_begin = begin;
  auto rows = [&](int cols, const KvRecordCodec* codec) {
    return storage ? KvRows(cols, storage->pool, *codec) : KvRows(cols);
  };
  for (int id = begin; id < end; ++id) {
    LayerState l;
    l.window = rows(c.head_dim, storage ? &storage->kv : nullptr);
    l.window.fill(c.window, 0.0f);
    l.compressed = rows(c.head_dim, storage ? &storage->kv : nullptr);
    const int ratio = c.ratio(id);
    if (ratio > 0) {
      const int coff = ratio == 4 ? 2 : 1;
      l.compressor.reset(coff * ratio, coff * c.head_dim, storage);
    }
    if (ratio == 4) {
      l.index_keys = rows(c.index_dim, storage ? &storage->key : nullptr);
      l.index_compressor.reset(2 * 4, 2 * c.index_dim, storage);
    }
    s.layers.push_back(std::move(l));
  }
  return s;
}

int RequestState::pages() const {
  int n = 0;
  for (const auto& l : layers)
    n += l.window.pages() + l.compressed.pages() + l.compressor.kv.pages() + l.compressor.score.pages() +
         l.index_keys.pages() + l.index_compressor.kv.pages() + l.index_compressor.score.pages();
  return n;
}

void RequestState::open_journal() {
  for (auto& l : layers) l.for_each_rows([](KvRows& r) { r.open_journal(); });
}

void RequestState::rollback(int pos) {
  for (auto& l : layers) l.for_each_rows([pos](KvRows& r) { r.rollback(pos); });
}

void RequestState::close_journal() {
  for (auto& l : layers) l.for_each_rows([](KvRows& r) { r.close_journal(); });
}

int kv_pages_for(const ModelConfig& c, int begin, int end, int tokens, std::size_t page_bytes) {
  const std::size_t kv = Fp8KvRowCodec(c.head_dim, c.rope_dim).record_bytes();
  const std::size_t key = c.index_dim > 0 ? Fp4KeyRowCodec(c.index_dim).record_bytes() : 0;
  auto pages = [&](int n, std::size_t bytes) { return PagedRows::pages_for(n, bytes, page_bytes); };
  int n = 0;
  for (int id = begin; id < end; ++id) {
    n += pages(c.window, kv);
    const int ratio = c.ratio(id);
    if (ratio == 0) continue;
    const int coff = ratio == 4 ? 2 : 1;
    n += 2 * pages(coff * ratio, 4 * std::size_t(coff) * c.head_dim) + pages(tokens / ratio, kv);
    if (ratio == 4) n += 2 * pages(8, 4 * 2 * std::size_t(c.index_dim)) + pages(tokens / 4, key);
  }
  return n;
}

}  // namespace flashline

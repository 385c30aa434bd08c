#include "stages/request_state.h"

#include <algorithm>
#include <limits>
#include <stdexcept>

namespace flashline {

void KvRows::get(int i, float* row) const { std::copy_n(&data_[std::size_t(i) * cols_], cols_, row); }

void KvRows::set(int i, const float* row) { std::copy_n(row, cols_, &data_[std::size_t(i) * cols_]); }

void KvRows::append(const float* row) { data_.insert(data_.end(), row, row + cols_); }

void KvRows::get_all(float* out) const { std::copy(data_.begin(), data_.end(), out); }

void KvRows::resize(int n, float fill) { data_.resize(std::size_t(n) * cols_, fill); }

void KvRows::truncate(int n) {
  if (n < 0 || n > size()) throw std::logic_error("KvRows::truncate: bad row count");
  data_.resize(std::size_t(n) * cols_);
}

void CompressorState::reset(int r, int c) {
  rows = r;
  cols = c;
  kv = KvRows(c);
  kv.resize(r, 0.0f);
  score = KvRows(c);
  score.resize(r, -std::numeric_limits<float>::infinity());
}

RequestState RequestState::fresh(const ModelConfig& c, int begin, int end) {
  RequestState s;
  s.layer_begin = begin;
  for (int id = begin; id < end; ++id) {
    LayerState l;
    l.window = KvRows(c.head_dim);
    l.window.resize(c.window, 0.0f);
    l.compressed = KvRows(c.head_dim);
    const int ratio = c.ratio(id);
    if (ratio > 0) {
      const int coff = ratio == 4 ? 2 : 1;
      l.compressor.reset(coff * ratio, coff * c.head_dim);
    }
    if (ratio == 4) {
      l.index_keys = KvRows(c.index_dim);
      l.index_compressor.reset(2 * 4, 2 * c.index_dim);
    }
    s.layers.push_back(std::move(l));
  }
  return s;
}

}  // namespace flashline

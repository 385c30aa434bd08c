#pragma once
// Per-request decode state of the layers one process runs: the sliding-window ring, the
// compressed KV entries, the indexer's compressed keys, and the compressors' partial-block
// state (including the ratio-4 overlap half). Every part is a table of fixed-width rows
// (KvRows), so where the rows live (plain memory or pages of the rank's KV pool) is the table's
// business, never the layers'.
#include <vector>

#include "model/model_config.h"

namespace flashline {

// A growable table of rows of `cols` floats.
class KvRows {
 public:
  KvRows() = default;
  explicit KvRows(int cols) : cols_(cols) {}
  int cols() const { return cols_; }
  int size() const { return cols_ ? int(data_.size() / cols_) : 0; }
  void get(int i, float* row) const;
  const float* row(int i) const { return &data_[std::size_t(i) * cols_]; }
  void set(int i, const float* row);
  void append(const float* row);
  // Rows [0, n) into out ([n, cols]).
  void get_all(float* out) const;
  void resize(int n, float fill);
  void truncate(int n);

 private:
  int cols_ = 0;
  std::vector<float> data_;
};

// Rows of a compressor that has not completed its block yet. A fresh state is kv = 0,
// score = -inf. Ratio 4 keeps 2*ratio rows of 2*head_dim channels: the previous block (overlap
// half) then the current one.
struct CompressorState {
  int rows = 0, cols = 0;
  KvRows kv, score;
  void reset(int rows, int cols);
};

struct LayerState {
  KvRows window;      // [window, head_dim] ring, slot = position % window
  KvRows compressed;  // [n, head_dim] compressed KV entries
  CompressorState compressor;
  KvRows index_keys;  // [n, index_dim] indexer compressed keys (ratio-4 layers)
  CompressorState index_compressor;
};

struct RequestState {
  int layer_begin = 0;
  std::vector<LayerState> layers;  // layers[i] is layer id layer_begin + i
  int next_pos = 0;                // position of the next token to feed

  // Fresh state for layer ids [begin, end) of `c` (MTP blocks have ids n_layers..).
  static RequestState fresh(const ModelConfig& c, int begin, int end);
  LayerState& layer(int id) { return layers.at(id - layer_begin); }
};

}  // namespace flashline

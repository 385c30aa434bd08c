#pragma once
// Per-request decode state of the layers one process runs: the sliding-window ring, the
// compressed KV entries, the indexer's compressed keys, and the compressors' partial-block
// state (including the ratio-4 overlap half).
#include <vector>

#include "model/model_config.h"

namespace flashline {

// Rows of a compressor that has not completed its block yet. A fresh state is kv = 0,
// score = -inf. Ratio 4 keeps 2*ratio rows of 2*head_dim channels: the previous block (overlap
// half) then the current one.
struct CompressorState {
  int rows = 0, cols = 0;
  std::vector<float> kv, score;
  void reset(int rows, int cols);
};

struct LayerState {
  std::vector<float> window;      // [window, head_dim] ring, slot = position % window
  std::vector<float> compressed;  // [n, head_dim] compressed KV entries
  CompressorState compressor;
  std::vector<float> index_keys;  // [n, index_dim] indexer compressed keys (ratio-4 layers)
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

#pragma once
// Per-request decode state of the layers one process runs: the sliding-window ring, the
// compressed KV entries, the indexer's compressed keys, and the compressors' partial-block
// state (including the ratio-4 overlap half). Every part is a table of fixed-width rows
// (KvRows) held either in plain memory or in pages of the rank's KV pool (KvStorage), in the
// bytes the numerics allow; the layers see rows of floats either way, bit for bit the same.
#include <cstdint>
#include <memory>
#include <vector>

#include "model/model_config.h"
#include "stages/kv_page_pool.h"
#include "stages/kv_record_codec.h"
#include "stages/paged_rows.h"

namespace flashline {

// The rank's KV pool and the record formats of its rows (docs/kv-cache.md).
struct KvStorage {
  KvStorage(const ModelConfig& c, std::size_t budget_bytes, std::size_t page_bytes);
  KvPagePool pool;
  Fp8KvRowCodec kv;            // window ring slots and compressed entries
  Fp4KeyRowCodec key;          // indexer keys
  Fp32RowCodec compressor;     // attention compressor rows (coff * head_dim)
  Fp32RowCodec compressor4;    // ratio-4 attention compressor rows (2 * head_dim)
  Fp32RowCodec index_compressor;  // indexer compressor rows (2 * index_dim)
  const KvRecordCodec& compressor_codec(int cols) const;
};

// A growable table of rows of `cols` floats, in plain memory or in pages.
class KvRows {
 public:
  KvRows() = default;
  explicit KvRows(int cols) : cols_(cols) {}
  KvRows(int cols, KvPagePool& pool, const KvRecordCodec& codec);
  int cols() const { return cols_; }
  int size() const { return paged_ ? rows_.size() : (cols_ ? int(plain_.size() / cols_) : 0); }
  void get(int i, float* row) const;
  // Writes name `pos`, the position of the token whose feeding makes them: the undo journal
  // records it (a journaled write without a position is a logic error).
  void set(int i, const float* row, int pos = -1);
  void append(const float* row, int pos = -1);
  void get_all(float* out) const;  // rows [0, size()) into out ([size(), cols])
  void get_rows(const std::vector<int32_t>& ids, float* out) const;  // rows ids[i] into out ([ids.size(), cols])
  void fill(int n, float value);   // appends n rows of `value`
  void truncate(int n);
  int pages() const { return paged_ ? rows_.pages() : 0; }

  // Undo journal of a speculative step (docs/speculative.md): while open, every write keeps
  // what it replaced, so rollback(pos) can return the rows to what they held before the
  // tokens at positions >= pos were fed: overwritten rows get their old bytes back, appended
  // rows go (with their pages). close_journal() keeps every write.
  void open_journal();
  void rollback(int pos);
  void close_journal();

 private:
  struct Undo {
    int pos = 0;
    int row = -1;            // overwritten row; -1: an append
    std::vector<float> old;  // its previous values
  };
  void record(int pos, int row);

  int cols_ = 0;
  bool paged_ = false;
  std::vector<float> plain_;
  PagedRows rows_;
  bool journal_ = false;
  std::vector<Undo> undo_;  // in write order
};

// Rows of a compressor that has not completed its block yet. A fresh state is kv = 0,
// score = -inf. Ratio 4 keeps 2*ratio rows of 2*head_dim channels: the previous block (overlap
// half) then the current one.
struct CompressorState {
  int rows = 0, cols = 0;
  KvRows kv, score;
  void reset(int rows, int cols, KvStorage* storage = nullptr);
  template <class F>
  void for_each_rows(F f) { f(kv), f(score); }
};

struct LayerState {
  KvRows window;      // [window, head_dim] ring, slot = position % window
  KvRows compressed;  // [n, head_dim] compressed KV entries
  CompressorState compressor;
  KvRows index_keys;  // [n, index_dim] indexer compressed keys (ratio-4 layers)
  CompressorState index_compressor;
  template <class F>
  void for_each_rows(F f) {
    f(window), f(compressed), f(index_keys);
    compressor.for_each_rows(f), index_compressor.for_each_rows(f);
  }
};

struct RequestState {
  int layer_begin = 0;
  std::vector<LayerState> layers;  // layers[i] is layer id layer_begin + i

  // Fresh state for layer ids [begin, end) of `c` (MTP blocks have ids n_layers..), in pages
  // of `storage` when given (std::runtime_error "KV pages exhausted" if they run out).
  static RequestState fresh(const ModelConfig& c, int begin, int end, KvStorage* storage = nullptr);
  LayerState& layer(int id) { return layers.at(id - layer_begin); }
  int pages() const;

  // The undo journal of every row table (KvRows) of every layer: a speculative step opens it,
  // the next step rolls back to its first position, or closes it when every token was kept.
  void open_journal();
  void rollback(int pos);
  void close_journal();
};

// Pages of `page_bytes` a request of `tokens` tokens holds for layer ids [begin, end): what
// RequestState::fresh takes plus the compressed entries and keys of `tokens` tokens. The
// scheduler at stage 0 uses it to account every stage's pool of its lane.
int kv_pages_for(const ModelConfig& c, int begin, int end, int tokens, std::size_t page_bytes);

}  // namespace flashline

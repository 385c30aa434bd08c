#include "stages/request_state.h"

#include <limits>

namespace flashline {

void CompressorState::reset(int r, int c) {
  rows = r;
  cols = c;
  kv.assign(std::size_t(r) * c, 0.0f);
  score.assign(std::size_t(r) * c, -std::numeric_limits<float>::infinity());
}

RequestState RequestState::fresh(const ModelConfig& c, int begin, int end) {
  RequestState s;
  s.layer_begin = begin;
  for (int id = begin; id < end; ++id) {
    LayerState l;
    l.window.assign(std::size_t(c.window) * c.head_dim, 0.0f);
    const int ratio = c.ratio(id);
    if (ratio > 0) {
      const int coff = ratio == 4 ? 2 : 1;
      l.compressor.reset(coff * ratio, coff * c.head_dim);
    }
    if (ratio == 4) l.index_compressor.reset(2 * 4, 2 * c.index_dim);
    s.layers.push_back(std::move(l));
  }
  return s;
}

}  // namespace flashline

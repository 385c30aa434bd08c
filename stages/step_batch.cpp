#include "stages/step_batch.h"

#include <stdexcept>

namespace flashline {

void StepBatch::add(const std::vector<int32_t>& tokens, int start_pos, RequestState* state) {
  if (tokens.empty()) throw std::invalid_argument("StepBatch::add: no tokens");
  seqs.push_back({rows(), int(tokens.size()), start_pos, state});
  ids.insert(ids.end(), tokens.begin(), tokens.end());
}

}  // namespace flashline

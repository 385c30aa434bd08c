#include "runtime/generation_request.h"

#include <algorithm>

#include "base/byte_codec.h"

namespace flashline {

int32_t argmax_id(const float* row, int n) { return int32_t(std::max_element(row, row + n) - row); }

void GenerationResult::accept(const GenerationRequest& req, const float* row, int vocab) {
  if (req.keep_decode_logits) decode_logits.insert(decode_logits.end(), row, row + vocab);
  const std::size_t k = ids.size();
  ids.push_back(k < req.teacher.size() ? req.teacher[k] : argmax_id(row, vocab));
}

bool GenerationResult::finished(const GenerationRequest& req, int eos_id) const {
  if (int(ids.size()) >= req.max_new_tokens) return true;
  return req.stop_at_eos && !ids.empty() && ids.back() == eos_id;
}

void GenerationResult::serialize(ByteBuffer& out) const {
  put_vector(out, ids);
  put_vector(out, prefill_logits);
  put_vector(out, decode_logits);
  put_vector(out, mtp_logits);
  put(out, prefill_done_s);
  put(out, finished_s);
}

GenerationResult GenerationResult::deserialize(const std::byte*& p, const std::byte* end) {
  GenerationResult r;
  r.ids = take_vector<int32_t>(p, end);
  r.prefill_logits = take_vector<float>(p, end);
  r.decode_logits = take_vector<float>(p, end);
  r.mtp_logits = take_vector<float>(p, end);
  r.prefill_done_s = take<double>(p, end);
  r.finished_s = take<double>(p, end);
  return r;
}

}  // namespace flashline

#pragma once
// The messages of the pipeline (format and byte layout: docs/pipeline.md).
//  Forward  stage s -> s+1 of one lane: a micro-batch's step metadata, token ids and hc stream.
//  Sampled  last stage -> stage 0 of the lane: per request the chosen id and whether it is done.
//  Results  last stage -> rank 0 at the end: every finished request of the lane.
#include <cstdint>
#include <utility>
#include <vector>

#include "comms/expert_exchange.h"
#include "runtime/generation_request.h"

namespace flashline {

struct ForwardSeq {
  int32_t request = 0;    // index into the run's request list
  int32_t start_pos = 0;  // 0: prefill of `rows` tokens; > 0: one decode token at this position
  int32_t rows = 0;
};

struct ForwardMessage {
  bool end = false;           // no more micro-batches: forward it and stop
  int32_t slot = 0, round = 0;  // which micro-batch (slot) and how many times it went round
  int32_t stage_rows = 0;     // rows of this micro-batch summed over the stage's lanes
  int32_t stage_mtp_rows = 0; // rows needing the MTP block, summed over the lanes
  std::vector<ForwardSeq> seqs;
  std::vector<int32_t> ids;   // one per row
  std::vector<float> X;       // hc stream [rows, hc, dim]; empty on stage 0 before embedding

  int rows() const { return int(ids.size()); }
  ByteBuffer encode() const;
  static ForwardMessage decode(const ByteBuffer& b);
};

struct SampledEntry {
  int32_t request = 0;
  int32_t id = -1;        // -1: no id (a prefill-only request)
  int32_t finished = 0;
};
ByteBuffer encode_sampled(const std::vector<SampledEntry>& entries);
std::vector<SampledEntry> decode_sampled(const ByteBuffer& b);

ByteBuffer encode_results(const std::vector<std::pair<int32_t, const GenerationResult*>>& results);
std::vector<std::pair<int32_t, GenerationResult>> decode_results(const ByteBuffer& b);

}  // namespace flashline

#pragma once
// The expert exchange: an all-to-all-v among the ranks (lanes) of one pipeline stage. The MoE
// layer uses it twice per layer: dispatch (token rows to the ranks owning their experts) and
// combine (expert outputs back to the token's rank). Stages see only this interface.
#include <cstddef>
#include <vector>

#include "base/byte_codec.h"

namespace flashline {

class ExpertExchange {
 public:
  virtual ~ExpertExchange() = default;
  virtual int rank() const = 0;  // this rank's index among the stage's lanes
  virtual int size() const = 0;  // number of lanes in the stage
  // Collective: send[r] goes to lane r; returns recv where recv[r] came from lane r. Every lane
  // of the stage calls it the same number of times, with or without tokens.
  virtual std::vector<ByteBuffer> all_to_all(std::vector<ByteBuffer> send) = 0;
};

// One process holds every expert: the exchange hands the data back to itself.
class LoopbackExpertExchange final : public ExpertExchange {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::vector<ByteBuffer> all_to_all(std::vector<ByteBuffer> send) override;
};

}  // namespace flashline

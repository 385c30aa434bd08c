#include <stdexcept>

#include "comms/expert_exchange.h"

namespace flashline {

std::vector<ByteBuffer> LoopbackExpertExchange::all_to_all(std::vector<ByteBuffer> send) {
  if (send.size() != 1) throw std::logic_error("loopback exchange: expected one destination");
  return send;
}

}  // namespace flashline

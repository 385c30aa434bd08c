#pragma once
// Counter-based random numbers for sampling: a draw is a pure function of (seed, position, draw
// index), so a seeded request produces the same tokens whatever its batch, lane, prefill
// chunking, thread count or placement, and any rank can reproduce any draw without carrying
// generator state between steps or over the wire.
//
// The generator is Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3",
// SC'11), the one Random123, cuRAND and JAX use, so a GPU sampler can produce the same bits.
// It is written out here (a few lines) because no Debian package ships it as a plain C++
// header: Random123 is not packaged, and cuRAND exists only where CUDA does.
#include <array>
#include <cstdint>

namespace flashline {

using PhiloxCounter = std::array<uint32_t, 4>;
using PhiloxKey = std::array<uint32_t, 2>;

// One Philox4x32-10 block: 10 rounds of the bijection on `counter` keyed by `key`.
constexpr PhiloxCounter philox4x32_10(PhiloxCounter c, PhiloxKey k) {
  constexpr uint32_t kMul0 = 0xD2511F53u, kMul1 = 0xCD9E8D57u;    // round multipliers
  constexpr uint32_t kWeyl0 = 0x9E3779B9u, kWeyl1 = 0xBB67AE85u;  // key schedule increments
  for (int round = 0; round < 10; ++round) {
    if (round > 0) {
      k[0] += kWeyl0;
      k[1] += kWeyl1;
    }
    const uint64_t p0 = uint64_t(kMul0) * c[0];
    const uint64_t p1 = uint64_t(kMul1) * c[2];
    c = {uint32_t(p1 >> 32) ^ c[1] ^ k[0], uint32_t(p1), uint32_t(p0 >> 32) ^ c[3] ^ k[1],
         uint32_t(p0)};
  }
  return c;
}

// The sampler's streams. Key = the request's 64-bit seed; counter = (position low, position
// high, draw index, 0): the draw for the token at sequence position p uses counter
// (p, draw), so tokens of one request never share a block and the last word stays free for
// other uses of the same seed (e.g. speculative acceptance) without overlapping these.
class CounterRng {
 public:
  static constexpr PhiloxCounter block(uint64_t seed, uint64_t position, uint32_t draw) {
    return philox4x32_10({uint32_t(position), uint32_t(position >> 32), draw, 0u},
                         {uint32_t(seed), uint32_t(seed >> 32)});
  }

  // Uniform in [0, 1) with 53 random bits (words 0 and 1 of the block): every value is a
  // multiple of 2^-53, so 1.0 is never returned.
  static constexpr double uniform(uint64_t seed, uint64_t position, uint32_t draw) {
    const PhiloxCounter b = block(seed, position, draw);
    const uint64_t bits = ((uint64_t(b[0]) << 32) | b[1]) >> 11;
    return double(bits) * 0x1.0p-53;
  }

  // Uniform in [0, 1) with 24 random bits (word 0 of the block).
  static constexpr float uniform_float(uint64_t seed, uint64_t position, uint32_t draw) {
    const PhiloxCounter b = block(seed, position, draw);
    return float(b[0] >> 8) * 0x1.0p-24f;
  }
};

}  // namespace flashline

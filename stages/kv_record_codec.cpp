#include "stages/kv_record_codec.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/cpu/numerics.h"

namespace flashline {
namespace {

// A grid of quantised values with a power-of-two scale per block, as the simulations define
// it: s = pow2_ceil(max(amax, amax_floor) * inv_max), value = q * s, |q| <= max_q.
struct ScaledGrid {
  const float* table;  // code -> value; codes [0, n_mag) are the magnitudes, ascending
  int n_mag;
  uint8_t sign_bit;  // code | sign_bit is the negative (0 | sign_bit is -0)
  float max_q, amax_floor, inv_max;
};

const ScaledGrid& e4m3_grid() {
  // 0x7F is NaN, so the magnitudes are codes 0..0x7E.
  static const ScaledGrid g{e4m3_table(), 0x7F, 0x80, 448.0f, 1e-4f, float(1.0 / 448.0)};
  return g;
}
const ScaledGrid& e2m1_grid() {
  static const ScaledGrid g{kE2M1Table,      8, 0x8, 6.0f, float(6.0 * std::ldexp(1.0, -126)),
                            float(1.0 / 6.0)};
  return g;
}

// The code whose value is exactly q, or -1.
int grid_code(const ScaledGrid& g, float q) {
  const float a = std::fabs(q);
  const float* end = g.table + g.n_mag;
  const float* it = std::lower_bound(g.table, end, a);
  if (it == end || *it != a) return -1;
  return int(it - g.table) | (std::signbit(q) ? g.sign_bit : 0);
}

// UE8M0 byte of a power of two, or -1. Byte 0 is 2^-127 (a subnormal float).
int e8m0_encode(float s) {
  const uint32_t bits = float_to_bits(s);
  if (bits == 0x00400000u) return 0;
  const uint32_t exp = bits >> 23;  // s > 0, so no sign bit
  if ((bits & 0x7FFFFFu) != 0 || exp == 0 || exp >= 0xFF) return -1;
  return int(exp);
}

bool try_scale(const ScaledGrid& g, const float* v, int n, float s, uint8_t* codes) {
  for (int i = 0; i < n; ++i) {
    const int c = grid_code(g, v[i] / s);
    // The decode product is what must match, bit for bit (sign of zero included).
    if (c < 0 || float_to_bits(g.table[c] * s) != float_to_bits(v[i])) return false;
    codes[i] = uint8_t(c);
  }
  return true;
}

// Codes and scale byte of one block of values produced as bf16(q * s). The scale act_quant
// derives from the block's own values always reproduces a simulated block (docs/kv-cache.md has
// the argument); finer scales are tried after it so that a block quantised below act_quant's
// scale (under its amax floor, say) is stored too. Returns false if no scale fits.
bool encode_block(const ScaledGrid& g, const float* v, int n, uint8_t* codes, uint8_t* scale) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(v[i]));
  if (!std::isfinite(amax)) return false;
  // Once the block maximum no longer fits the grid, no finer scale can.
  for (float s = pow2_ceil(std::max(amax, g.amax_floor) * g.inv_max); amax <= g.max_q * s;
       s *= 0.5f) {
    const int e = e8m0_encode(s);
    if (e < 0) return false;
    if (try_scale(g, v, n, s, codes)) {
      *scale = uint8_t(e);
      return true;
    }
  }
  return false;
}

[[noreturn]] void not_simulated(const char* format, int block) {
  throw std::logic_error(std::string("KV record: block ") + std::to_string(block) + " is not " +
                         format + "-simulated; it cannot be stored exactly");
}

void encode_bf16(const float* in, int n, std::byte* out) {
  for (int i = 0; i < n; ++i) {
    const uint32_t bits = float_to_bits(in[i]);
    if (bits & 0xFFFFu)
      throw std::logic_error("KV record: value " + std::to_string(i) + " is not a bf16 value");
    const uint16_t h = uint16_t(bits >> 16);
    std::memcpy(out + 2 * i, &h, 2);
  }
}

void decode_bf16(const std::byte* in, int n, float* out) {
  for (int i = 0; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, in + 2 * i, 2);
    out[i] = bf16_to_float(h);
  }
}

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument(what);
}

}  // namespace

Fp8KvRowCodec::Fp8KvRowCodec(int head_dim, int rope_dim)
    : head_dim_(head_dim), nope_(head_dim - rope_dim) {
  require(head_dim > 0 && rope_dim >= 0 && nope_ >= 0 && nope_ % kBlock == 0,
          "Fp8KvRowCodec: head_dim - rope_dim must be a non-negative multiple of 64 and head_dim "
          "positive (head_dim " +
              std::to_string(head_dim) + ", rope_dim " + std::to_string(rope_dim) + ")");
}

std::size_t Fp8KvRowCodec::record_bytes() const {
  return std::size_t(nope_) + nope_ / kBlock + 2 * std::size_t(head_dim_ - nope_);
}

void Fp8KvRowCodec::encode(const float* in, std::byte* out) const {
  auto* codes = reinterpret_cast<uint8_t*>(out);
  uint8_t* scales = codes + nope_;
  for (int b = 0; b < nope_ / kBlock; ++b)
    if (!encode_block(e4m3_grid(), in + b * kBlock, kBlock, codes + b * kBlock, scales + b))
      not_simulated("FP8", b);
  encode_bf16(in + nope_, head_dim_ - nope_, out + nope_ + nope_ / kBlock);
}

void Fp8KvRowCodec::decode(const std::byte* in, float* out) const {
  const auto* codes = reinterpret_cast<const uint8_t*>(in);
  const uint8_t* scales = codes + nope_;
  const float* table = e4m3_table();
  for (int b = 0; b < nope_ / kBlock; ++b) {
    const float s = e8m0_decode(scales[b]);
    for (int i = b * kBlock; i < (b + 1) * kBlock; ++i) out[i] = table[codes[i]] * s;
  }
  decode_bf16(in + nope_ + nope_ / kBlock, head_dim_ - nope_, out + nope_);
}

Fp4KeyRowCodec::Fp4KeyRowCodec(int index_dim) : dim_(index_dim) {
  require(index_dim > 0 && index_dim % kBlock == 0,
          "Fp4KeyRowCodec: index_dim must be a positive multiple of 32 (got " +
              std::to_string(index_dim) + ")");
}

std::size_t Fp4KeyRowCodec::record_bytes() const { return std::size_t(dim_) / 2 + dim_ / kBlock; }

void Fp4KeyRowCodec::encode(const float* in, std::byte* out) const {
  auto* packed = reinterpret_cast<uint8_t*>(out);
  uint8_t* scales = packed + dim_ / 2;
  uint8_t codes[kBlock];
  for (int b = 0; b < dim_ / kBlock; ++b) {
    if (!encode_block(e2m1_grid(), in + b * kBlock, kBlock, codes, scales + b))
      not_simulated("FP4", b);
    for (int i = 0; i < kBlock; i += 2)
      packed[(b * kBlock + i) / 2] = uint8_t(codes[i] | (codes[i + 1] << 4));
  }
}

void Fp4KeyRowCodec::decode(const std::byte* in, float* out) const {
  const auto* packed = reinterpret_cast<const uint8_t*>(in);
  const uint8_t* scales = packed + dim_ / 2;
  for (int b = 0; b < dim_ / kBlock; ++b) {
    const float s = e8m0_decode(scales[b]);
    for (int i = b * kBlock; i < (b + 1) * kBlock; i += 2) {
      out[i] = kE2M1Table[packed[i / 2] & 0xF] * s;
      out[i + 1] = kE2M1Table[packed[i / 2] >> 4] * s;
    }
  }
}

Fp32RowCodec::Fp32RowCodec(int n) : n_(n) {
  require(n > 0, "Fp32RowCodec: row length must be positive (got " + std::to_string(n) + ")");
}
void Fp32RowCodec::encode(const float* in, std::byte* out) const {
  std::memcpy(out, in, record_bytes());
}
void Fp32RowCodec::decode(const std::byte* in, float* out) const {
  std::memcpy(out, in, record_bytes());
}

Bf16RowCodec::Bf16RowCodec(int n) : n_(n) {
  require(n > 0, "Bf16RowCodec: row length must be positive (got " + std::to_string(n) + ")");
}
void Bf16RowCodec::encode(const float* in, std::byte* out) const { encode_bf16(in, n_, out); }
void Bf16RowCodec::decode(const std::byte* in, float* out) const { decode_bf16(in, n_, out); }

}  // namespace flashline

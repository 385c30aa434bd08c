#pragma once
// Fixed-size byte encodings of one row (record) of per-request KV state, in the bytes the
// numerics allow: a row that the model produces as FP8- or FP4-simulated bf16 values is stored
// as its grid codes plus one UE8M0 scale byte per block, and decodes to the same floats bit for
// bit. Encoding re-derives each block's scale from the values (see docs/kv-cache.md for why
// that always succeeds on simulated rows) and throws std::logic_error for a row that is not in
// the format, rather than storing something that would read back different.
// Byte order of multi-byte fields is the host's: pages never leave the rank.
#include <cstddef>

namespace flashline {

class KvRecordCodec {
 public:
  virtual ~KvRecordCodec() = default;
  virtual int values() const = 0;  // floats per record
  virtual std::size_t record_bytes() const = 0;
  // Writes record_bytes() bytes. On a throw, `out` may be partly written.
  virtual void encode(const float* in, std::byte* out) const = 0;
  virtual void decode(const std::byte* in, float* out) const = 0;
};

// Attention KV row (window ring, compressed entries): head_dim values, the first
// head_dim - rope_dim FP8-simulated per block of 64 (bf16(q * s), q on the e4m3fn grid, s a
// power of two), the last rope_dim plain bf16. Layout: e4m3 codes [nope] | UE8M0 scales
// [nope / 64] | bf16 [rope]. head_dim 512, rope 64: 448 + 7 + 128 = 583 bytes.
class Fp8KvRowCodec final : public KvRecordCodec {
 public:
  static constexpr int kBlock = 64;
  Fp8KvRowCodec(int head_dim, int rope_dim);
  int values() const override { return head_dim_; }
  std::size_t record_bytes() const override;
  void encode(const float* in, std::byte* out) const override;
  void decode(const std::byte* in, float* out) const override;

 private:
  int head_dim_, nope_;
};

// Indexer key row: index_dim values FP4-simulated per block of 32 (bf16(q * s), q on the e2m1
// grid). Layout: e2m1 codes two per byte, low nibble = even element [index_dim / 2] | UE8M0
// scales [index_dim / 32]. index_dim 128: 64 + 4 = 68 bytes.
class Fp4KeyRowCodec final : public KvRecordCodec {
 public:
  static constexpr int kBlock = 32;
  explicit Fp4KeyRowCodec(int index_dim);
  int values() const override { return dim_; }
  std::size_t record_bytes() const override;
  void encode(const float* in, std::byte* out) const override;
  void decode(const std::byte* in, float* out) const override;

 private:
  int dim_;
};

// fp32 values as they are (compressor partial-block kv and score rows; -inf included).
class Fp32RowCodec final : public KvRecordCodec {
 public:
  explicit Fp32RowCodec(int n);
  int values() const override { return n_; }
  std::size_t record_bytes() const override { return 4 * std::size_t(n_); }
  void encode(const float* in, std::byte* out) const override;
  void decode(const std::byte* in, float* out) const override;

 private:
  int n_;
};

// Values that are already bf16 (low 16 bits zero), stored as their high 16 bits.
class Bf16RowCodec final : public KvRecordCodec {
 public:
  explicit Bf16RowCodec(int n);
  int values() const override { return n_; }
  std::size_t record_bytes() const override { return 2 * std::size_t(n_); }
  void encode(const float* in, std::byte* out) const override;
  void decode(const std::byte* in, float* out) const override;

 private:
  int n_;
};

}  // namespace flashline

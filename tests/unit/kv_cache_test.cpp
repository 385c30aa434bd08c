// Paged KV storage: the record codecs read back bit for bit every row the FP8/FP4 simulations
// produce, the page pool hands out and takes back pages deterministically, and PagedRows keeps
// records across page boundaries and returns its pages.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <span>
#include <type_traits>
#include <vector>

#include "kernels/cpu/numerics.h"
#include "stages/kv_page_pool.h"
#include "stages/kv_record_codec.h"
#include "stages/paged_rows.h"

namespace flashline {
namespace {

// Compares bit patterns, so -0 vs +0 and NaN payloads count.
void expect_same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i)
    ASSERT_EQ(float_to_bits(a[i]), float_to_bits(b[i]))
        << "element " << i << ": " << a[i] << " vs " << b[i];
}

// The scale act_quant derives from a block's values: for a simulated block the encoder stores
// exactly this one (docs/kv-cache.md), never a fallback.
float rederived_scale(const float* v, int n, float floor, float inv_max) {
  float amax = 0.0f;
  for (int i = 0; i < n; ++i) amax = std::max(amax, std::fabs(v[i]));
  return pow2_ceil(std::max(amax, floor) * inv_max);
}

std::vector<float> round_trip(const KvRecordCodec& codec, const std::vector<float>& row) {
  std::vector<std::byte> rec(codec.record_bytes());
  codec.encode(row.data(), rec.data());
  std::vector<float> out(row.size());
  codec.decode(rec.data(), out.data());
  return out;
}

// Random blocks spanning many magnitudes, with zeros, negative zeros, outliers and values
// already on a scaled grid (so block maxima land exactly on the largest code).
std::vector<float> random_row(std::mt19937& rng, int n, int block, const float* grid, int grid_n) {
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::uniform_int_distribution<int> exp(-40, 20), kind(0, 5), pick(0, grid_n - 1);
  std::vector<float> row(n);
  for (int b = 0; b < n / block; ++b) {
    const int k = kind(rng);
    const float scale = std::ldexp(1.0f, exp(rng));
    for (int i = b * block; i < (b + 1) * block; ++i) {
      switch (k) {
        case 0:
          row[i] = 0.0f;
          break;
        case 1:
          row[i] = (i % 3 == 0) ? -0.0f : normal(rng) * scale;
          break;
        case 2:
          row[i] = grid[pick(rng)] * scale;
          break;
        case 3:
          row[i] = normal(rng) * 1e-4f;
          break;  // around the act_quant amax floor
        default:
          row[i] = normal(rng) * scale;
      }
    }
    if (k == 4) row[b * block] *= 1000.0f;  // one outlier: most of the block rounds to tiny codes
  }
  bf16_round_inplace(row);
  return row;
}

std::vector<float> fp8_kv_row(std::mt19937& rng, int head_dim, int rope_dim) {
  static const std::vector<float> e4m3_mags(e4m3_table(), e4m3_table() + 0x7F);
  std::vector<float> row = random_row(rng, head_dim, 64, e4m3_mags.data(), 0x7F);
  fp8_simulate(std::span<float>(row.data(), head_dim - rope_dim), 64);
  return row;
}

TEST(KvRecordCodec, RecordBytesOfTheReleaseConfig) {
  EXPECT_EQ(Fp8KvRowCodec(512, 64).record_bytes(), 583u);  // 448 codes + 7 scales + 64 bf16
  EXPECT_EQ(Fp4KeyRowCodec(128).record_bytes(), 68u);      // 64 packed bytes + 4 scales
  EXPECT_EQ(Fp32RowCodec(1024).record_bytes(), 4096u);
  EXPECT_EQ(Bf16RowCodec(64).record_bytes(), 128u);
  EXPECT_THROW(Fp8KvRowCodec(512, 60), std::invalid_argument);  // nope 452 is not blocks of 64
  EXPECT_THROW(Fp4KeyRowCodec(48), std::invalid_argument);
}

TEST(KvRecordCodec, Fp8RowsReadBackBitExact) {
  std::mt19937 rng(1234);
  for (auto [hd, rd] : {std::pair{512, 64}, std::pair{128, 64}, std::pair{192, 0}}) {
    Fp8KvRowCodec codec(hd, rd);
    for (int r = 0; r < 3000; ++r) {
      const std::vector<float> row = fp8_kv_row(rng, hd, rd);
      expect_same_bits(round_trip(codec, row), row);
      std::vector<std::byte> rec(codec.record_bytes());
      codec.encode(row.data(), rec.data());
      for (int b = 0; b < (hd - rd) / 64; ++b)
        ASSERT_EQ(e8m0_decode(uint8_t(rec[hd - rd + b])),
                  rederived_scale(row.data() + 64 * b, 64, 1e-4f, float(1.0 / 448.0)));
    }
  }
}

TEST(KvRecordCodec, Fp8EdgeRows) {
  Fp8KvRowCodec codec(128, 64);
  std::vector<float> row(128, 0.0f);
  expect_same_bits(round_trip(codec, row), row);  // all zeros: the amax floor sets the scale
  for (int i = 0; i < 128; i += 2) row[i] = -0.0f;
  expect_same_bits(round_trip(codec, row), row);
  // Largest codes at several scales, and the smallest subnormal code next to them.
  for (int e : {-22, -10, 0, 7, 30}) {
    const float s = std::ldexp(1.0f, e);
    for (int i = 0; i < 64; ++i) row[i] = (i % 2 ? -448.0f : 448.0f) * s;
    row[5] = std::ldexp(1.0f, -9) * s;
    expect_same_bits(round_trip(codec, row), row);
  }
  // Tiny blocks: amax below and just above the 1e-4 floor, through the simulation.
  for (float amax : {1e-9f, 5e-5f, 9.9e-5f, 1e-4f, 1.04e-4f, 2e-4f}) {
    for (int i = 0; i < 64; ++i)
      row[i] = bf16_round(amax * float(i + 1) / 64.0f * (i % 2 ? 1.0f : -1.0f));
    fp8_simulate(std::span<float>(row.data(), 64), 64);
    expect_same_bits(round_trip(codec, row), row);
  }
}

// fp8_simulate never scales below 2^-22 (the 1e-4 amax floor); a block quantised at a finer
// scale has values off the grid of the re-derived scale, and the encoder halves the scale until
// they fit.
TEST(KvRecordCodec, Fp8FallsBackToFinerScales) {
  ASSERT_EQ(pow2_ceil(1e-4f * float(1.0 / 448.0)), std::ldexp(1.0f, -22))
      << "precondition: floor scale";
  std::vector<float> row(128, 0.0f);
  row[0] = std::ldexp(1.0f, -9 - 30);       // smallest code at scale 2^-30
  row[1] = -std::ldexp(3.0f, -30);          // code -3 at scale 2^-30
  row[64 + 2] = std::ldexp(1.0f, -9 - 23);  // rope part: plain bf16, no scale involved

  Fp8KvRowCodec codec(128, 64);
  std::vector<std::byte> rec(codec.record_bytes());
  codec.encode(row.data(), rec.data());
  EXPECT_EQ(e8m0_decode(uint8_t(rec[64])),
            std::ldexp(1.0f, -30));  // block 0's scale byte follows the 64 codes
  std::vector<float> out(128);
  codec.decode(rec.data(), out.data());
  expect_same_bits(out, row);
}

TEST(KvRecordCodec, Fp8RejectsRowsThatWereNotSimulated) {
  Fp8KvRowCodec codec(128, 64);
  std::vector<std::byte> rec(codec.record_bytes());
  std::vector<float> row(128, 0.0f);
  row[0] = 448.0f;
  row[1] = 1.0625f;  // needs 4 mantissa bits at scale 1; scale 1/2 cannot hold 448
  EXPECT_THROW(codec.encode(row.data(), rec.data()), std::logic_error);
  row[1] = 1.0f;
  EXPECT_NO_THROW(codec.encode(row.data(), rec.data()));
  row[100] = 1.0f + std::ldexp(1.0f, -20);  // rope part: not a bf16 value
  EXPECT_THROW(codec.encode(row.data(), rec.data()), std::logic_error);
  row[100] = 1.0f;
  row[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_THROW(codec.encode(row.data(), rec.data()), std::logic_error);
  row[3] = std::numeric_limits<float>::infinity();
  EXPECT_THROW(codec.encode(row.data(), rec.data()), std::logic_error);
}

TEST(KvRecordCodec, Fp4RowsReadBackBitExact) {
  std::mt19937 rng(99);
  for (int dim : {128, 64, 32}) {
    Fp4KeyRowCodec codec(dim);
    for (int r = 0; r < 3000; ++r) {
      std::vector<float> row = random_row(rng, dim, 32, kE2M1Table, 8);
      fp4_simulate(row, 32);
      expect_same_bits(round_trip(codec, row), row);
      std::vector<std::byte> rec(codec.record_bytes());
      codec.encode(row.data(), rec.data());
      for (int b = 0; b < dim / 32; ++b)
        ASSERT_EQ(
            e8m0_decode(uint8_t(rec[dim / 2 + b])),
            rederived_scale(row.data() + 32 * b, 32, std::ldexp(6.0f, -126), float(1.0 / 6.0)));
    }
  }
}

TEST(KvRecordCodec, Fp4EdgeRows) {
  Fp4KeyRowCodec codec(64);
  std::vector<float> row(64, 0.0f);
  expect_same_bits(round_trip(codec, row), row);
  for (int i = 0; i < 64; i += 3) row[i] = -0.0f;
  expect_same_bits(round_trip(codec, row), row);
  // Near the amax floor 6 * 2^-126 the scale is 2^-126 and half codes are subnormal floats.
  for (float amax :
       {1e-40f, std::ldexp(6.0f, -126), std::ldexp(1.0f, -120), 1.0f, 6.0f, 7.0f, 1e30f}) {
    for (int i = 0; i < 64; ++i)
      row[i] = bf16_round(amax * float(i % 32 + 1) / 32.0f * (i % 2 ? 1.0f : -1.0f));
    fp4_simulate(row, 32);
    expect_same_bits(round_trip(codec, row), row);
  }
}

TEST(KvRecordCodec, Fp4PacksTheEvenElementInTheLowNibble) {
  Fp4KeyRowCodec codec(32);
  std::vector<float> row(32, 0.0f);
  row[0] = 0.5f;   // code 1
  row[1] = -6.0f;  // code 15
  row[31] = 6.0f;  // block maximum 6: scale 1
  std::vector<std::byte> rec(codec.record_bytes());
  codec.encode(row.data(), rec.data());
  EXPECT_EQ(uint8_t(rec[0]), 0xF1);
  EXPECT_EQ(uint8_t(rec[15]), 0x70);
  EXPECT_EQ(e8m0_decode(uint8_t(rec[16])), 1.0f);
}

TEST(KvRecordCodec, Fp4RejectsRowsThatWereNotSimulated) {
  Fp4KeyRowCodec codec(32);
  std::vector<std::byte> rec(codec.record_bytes());
  std::vector<float> row(32, 0.0f);
  row[0] = 6.0f;
  row[1] = 2.5f;  // between grid points 2 and 3 at scale 1; scale 1/2 cannot hold 6
  EXPECT_THROW(codec.encode(row.data(), rec.data()), std::logic_error);
  row[1] = 1.25f;
  EXPECT_THROW(codec.encode(row.data(), rec.data()), std::logic_error);
  row[1] = 1.5f;
  EXPECT_NO_THROW(codec.encode(row.data(), rec.data()));
}

TEST(KvRecordCodec, Fp32AndBf16RowsAreVerbatim) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> row = {-inf,   inf,      -0.0f,    0.0f,
                            1e-42f, 3.14159f, -2.5e30f, bits_to_float(0x7FC01234u)};
  expect_same_bits(round_trip(Fp32RowCodec(8), row), row);
  bf16_round_inplace(std::span<float>(row.data(), 7));
  row[7] = bits_to_float(0x7FC10000u);
  expect_same_bits(round_trip(Bf16RowCodec(8), row), row);
  row[5] = 3.14159f;
  std::vector<std::byte> rec(16);
  EXPECT_THROW(Bf16RowCodec(8).encode(row.data(), rec.data()), std::logic_error);
}

TEST(KvPagePool, AllocatesLowestFreeIdFirst) {
  KvPagePool pool(10 * 100 + 50, 100);
  EXPECT_EQ(pool.total(), 10);
  EXPECT_EQ(pool.page_bytes(), 100u);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(pool.alloc(), i);
  EXPECT_EQ(pool.alloc(), -1);
  EXPECT_EQ(pool.used(), 10);
  EXPECT_EQ(pool.page(4) - pool.page(3), 100);
  pool.free(7);
  pool.free(3);
  EXPECT_EQ(pool.used(), 8);
  EXPECT_EQ(pool.alloc(), 3);
  EXPECT_EQ(pool.alloc(), 7);
  EXPECT_EQ(pool.alloc(), -1);
}

TEST(KvPagePool, RejectsBadIdsAndBudgets) {
  KvPagePool pool(300, 100);
  const int32_t a = pool.alloc();
  pool.free(a);
  EXPECT_THROW(pool.free(a), std::logic_error);  // double free
  EXPECT_THROW(pool.free(-1), std::logic_error);
  EXPECT_THROW(pool.free(3), std::logic_error);
  EXPECT_THROW(pool.page(a), std::logic_error);  // not allocated
  EXPECT_EQ(pool.used(), 0);
  EXPECT_THROW(KvPagePool(99, 100), std::invalid_argument);
  EXPECT_THROW(KvPagePool(1000, 0), std::invalid_argument);
}

std::vector<float> numbered_row(int n, int i) {
  std::vector<float> r(n);
  for (int k = 0; k < n; ++k) r[k] = float(i * 1000 + k);
  return r;
}

std::vector<float> read(const PagedRows& rows, int i) {
  std::vector<float> r(rows.codec()->values());
  rows.get(i, r.data());
  return r;
}

TEST(PagedRows, PagesFor) {
  EXPECT_EQ(PagedRows::pages_for(0, 240, 1000), 0);
  EXPECT_EQ(PagedRows::pages_for(4, 240, 1000), 1);
  EXPECT_EQ(PagedRows::pages_for(5, 240, 1000), 2);
  EXPECT_EQ(PagedRows::pages_for(128, 583, 4096), 19);  // a release window ring, 7 rows a page
  EXPECT_THROW(PagedRows::pages_for(1, 2000, 1000), std::invalid_argument);
}

TEST(PagedRows, AppendGetSetAcrossPages) {
  KvPagePool pool(8 * 1000, 1000);
  Fp32RowCodec codec(60);  // 240 bytes: 4 records a page, 40 bytes left over
  PagedRows rows(pool, codec);
  EXPECT_EQ(rows.records_per_page(), 4);
  for (int i = 0; i < 10; ++i) rows.append(numbered_row(60, i).data());
  EXPECT_EQ(rows.size(), 10);
  EXPECT_EQ(rows.pages(), 3);
  EXPECT_EQ(pool.used(), 3);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(read(rows, i), numbered_row(60, i));
  rows.set(3, numbered_row(60, 33).data());  // last record of page 0
  rows.set(4, numbered_row(60, 44).data());  // first record of page 1
  EXPECT_EQ(read(rows, 2), numbered_row(60, 2));
  EXPECT_EQ(read(rows, 3), numbered_row(60, 33));
  EXPECT_EQ(read(rows, 4), numbered_row(60, 44));
  EXPECT_EQ(read(rows, 5), numbered_row(60, 5));
  std::vector<float> r(60);
  EXPECT_THROW(rows.get(10, r.data()), std::out_of_range);
  EXPECT_THROW(rows.set(-1, r.data()), std::out_of_range);
}

TEST(PagedRows, Fp8WindowRingInPages) {
  std::mt19937 rng(7);
  KvPagePool pool(64 * 4096, 4096);
  Fp8KvRowCodec codec(512, 64);
  PagedRows ring(pool, codec);
  ASSERT_TRUE(ring.reserve(128));
  EXPECT_EQ(ring.pages(), 19);
  std::vector<std::vector<float>> rows;
  for (int i = 0; i < 128; ++i) {
    rows.push_back(fp8_kv_row(rng, 512, 64));
    ring.append(rows.back().data());
  }
  EXPECT_EQ(ring.pages(), 19);             // appends used the reservation
  for (int pos = 128; pos < 300; ++pos) {  // wrap around: slot = position % window
    rows[pos % 128] = fp8_kv_row(rng, 512, 64);
    ring.set(pos % 128, rows[pos % 128].data());
  }
  for (int i = 0; i < 128; ++i) expect_same_bits(read(ring, i), rows[i]);
}

TEST(PagedRows, ReserveIsAllOrNothing) {
  KvPagePool pool(5 * 1000, 1000);
  Fp32RowCodec codec(60);
  PagedRows a(pool, codec), b(pool, codec);
  ASSERT_TRUE(a.reserve(12));
  EXPECT_EQ(a.pages(), 3);
  EXPECT_EQ(a.size(), 0);
  EXPECT_FALSE(b.reserve(12));  // needs 3, 2 free
  EXPECT_EQ(b.pages(), 0);
  EXPECT_EQ(pool.used(), 3);
  EXPECT_TRUE(b.reserve(8));
  EXPECT_TRUE(b.reserve(5));  // already has room
  EXPECT_EQ(pool.used(), 5);
}

TEST(PagedRows, AppendThrowsWhenThePoolIsExhausted) {
  KvPagePool pool(2 * 1000, 1000);
  Fp32RowCodec codec(60);
  PagedRows rows(pool, codec);
  for (int i = 0; i < 8; ++i) rows.append(numbered_row(60, i).data());
  try {
    rows.append(numbered_row(60, 8).data());
    FAIL() << "append succeeded without a free page";
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "KV pages exhausted");
  }
  EXPECT_EQ(rows.size(), 8);
  EXPECT_EQ(read(rows, 7), numbered_row(60, 7));
}

TEST(PagedRows, TruncateReturnsPagesAndReleaseReturnsAll) {
  KvPagePool pool(8 * 1000, 1000);
  Fp32RowCodec codec(60);
  PagedRows rows(pool, codec);
  for (int i = 0; i < 10; ++i) rows.append(numbered_row(60, i).data());
  ASSERT_TRUE(rows.reserve(16));
  EXPECT_EQ(pool.used(), 4);
  rows.truncate(5);  // keeps pages 0 and 1, drops the partly used page 2 and the reserved page 3
  EXPECT_EQ(rows.size(), 5);
  EXPECT_EQ(rows.pages(), 2);
  EXPECT_EQ(pool.used(), 2);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(read(rows, i), numbered_row(60, i));
  EXPECT_THROW(rows.truncate(6), std::out_of_range);
  for (int i = 5; i < 9; ++i)
    rows.append(numbered_row(60, 50 + i).data());  // regrow after rollback
  EXPECT_EQ(read(rows, 8), numbered_row(60, 58));
  EXPECT_EQ(rows.pages(), 3);
  rows.truncate(0);
  EXPECT_EQ(rows.pages(), 0);
  EXPECT_EQ(pool.used(), 0);
  rows.append(numbered_row(60, 1).data());
  rows.release();
  EXPECT_EQ(rows.size(), 0);
  EXPECT_EQ(pool.used(), 0);
}

TEST(PagedRows, MoveOnlyAndTheDestructorReturnsPages) {
  static_assert(!std::is_copy_constructible_v<PagedRows>);
  static_assert(!std::is_copy_assignable_v<PagedRows>);
  static_assert(std::is_nothrow_move_constructible_v<PagedRows>);
  KvPagePool pool(8 * 1000, 1000);
  Fp32RowCodec codec(60);
  {
    PagedRows a(pool, codec);
    for (int i = 0; i < 6; ++i) a.append(numbered_row(60, i).data());
    PagedRows b = std::move(a);
    EXPECT_EQ(a.size(), 0);
    EXPECT_EQ(a.pages(), 0);
    EXPECT_EQ(b.size(), 6);
    EXPECT_EQ(read(b, 5), numbered_row(60, 5));
    EXPECT_EQ(pool.used(), 2);

    PagedRows c(pool, codec);
    for (int i = 0; i < 9; ++i) c.append(numbered_row(60, 100 + i).data());
    EXPECT_EQ(pool.used(), 5);
    c = std::move(b);  // c's own three pages go back
    EXPECT_EQ(pool.used(), 2);
    EXPECT_EQ(read(c, 0), numbered_row(60, 0));

    std::vector<PagedRows> many;  // lives in containers
    many.emplace_back(pool, codec);
    many.back().append(numbered_row(60, 7).data());
    many.emplace_back();
    EXPECT_EQ(pool.used(), 3);
  }
  EXPECT_EQ(pool.used(), 0);
}

}  // namespace
}  // namespace flashline

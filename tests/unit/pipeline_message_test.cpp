// The pipeline message codecs: every message round-trips, and a truncated, corrupted or
// wrong-kind message is rejected with an error instead of being read past its end.
#include "runtime/pipeline_message.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace flashline {
namespace {

ForwardMessage sample_forward() {
  ForwardMessage m;
  m.slot = 2, m.round = 7, m.stage_rows = 5, m.stage_mtp_rows = 3;
  m.seqs = {{0, 0, 3}, {4, 19, 1}};
  m.ids = {11, 12, 13, 14};
  m.X = {1.5f, -2.25f, 0.0f, 3e-8f, -0.0f, 1e30f};
  return m;
}

void expect_same(const ForwardMessage& a, const ForwardMessage& b) {
  EXPECT_EQ(a.end, b.end);
  EXPECT_EQ(a.slot, b.slot);
  EXPECT_EQ(a.round, b.round);
  EXPECT_EQ(a.stage_rows, b.stage_rows);
  EXPECT_EQ(a.stage_mtp_rows, b.stage_mtp_rows);
  ASSERT_EQ(a.seqs.size(), b.seqs.size());
  for (std::size_t i = 0; i < a.seqs.size(); ++i) {
    EXPECT_EQ(a.seqs[i].request, b.seqs[i].request);
    EXPECT_EQ(a.seqs[i].start_pos, b.seqs[i].start_pos);
    EXPECT_EQ(a.seqs[i].rows, b.seqs[i].rows);
  }
  EXPECT_EQ(a.ids, b.ids);
  ASSERT_EQ(a.X.size(), b.X.size());
  for (std::size_t i = 0; i < a.X.size(); ++i) EXPECT_EQ(std::bit_cast<uint32_t>(a.X[i]), std::bit_cast<uint32_t>(b.X[i]));
}

TEST(PipelineMessage, ForwardRoundTrips) {
  const ForwardMessage m = sample_forward();
  expect_same(ForwardMessage::decode(m.encode()), m);
  ForwardMessage end;
  end.end = true;
  expect_same(ForwardMessage::decode(end.encode()), end);
}

TEST(PipelineMessage, SampledRoundTrips) {
  const std::vector<SampledEntry> v = {{0, 17, 0}, {3, -1, 1}, {9, 2047, 1}};
  const auto got = decode_sampled(encode_sampled(v));
  ASSERT_EQ(got.size(), v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(got[i].request, v[i].request);
    EXPECT_EQ(got[i].id, v[i].id);
    EXPECT_EQ(got[i].finished, v[i].finished);
  }
  EXPECT_TRUE(decode_sampled(encode_sampled({})).empty());
}

TEST(PipelineMessage, ResultsRoundTrip) {
  GenerationResult a, b;
  a.ids = {5, 6, 7};
  a.prefill_logits = {0.5f, -1.0f};
  a.decode_logits = {2.0f};
  a.mtp_logits = {3.0f, 4.0f, 5.0f};
  b.ids = {1};
  const auto got = decode_results(encode_results({{4, &a}, {0, &b}}));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].first, 4);
  EXPECT_EQ(got[0].second.ids, a.ids);
  EXPECT_EQ(got[0].second.prefill_logits, a.prefill_logits);
  EXPECT_EQ(got[0].second.decode_logits, a.decode_logits);
  EXPECT_EQ(got[0].second.mtp_logits, a.mtp_logits);
  EXPECT_EQ(got[1].first, 0);
  EXPECT_EQ(got[1].second.ids, b.ids);
}

// Every proper prefix of a message is rejected: nothing is read past the end.
TEST(PipelineMessage, TruncatedMessagesAreRejected) {
  const ByteBuffer forward = sample_forward().encode();
  for (std::size_t n = 0; n < forward.size(); ++n)
    EXPECT_THROW(ForwardMessage::decode(ByteBuffer(forward.begin(), forward.begin() + n)), std::runtime_error)
        << n << " of " << forward.size() << " bytes";
  const ByteBuffer sampled = encode_sampled({{0, 1, 0}, {1, 2, 1}});
  for (std::size_t n = 0; n < sampled.size(); ++n)
    EXPECT_THROW(decode_sampled(ByteBuffer(sampled.begin(), sampled.begin() + n)), std::runtime_error) << n;
  GenerationResult r;
  r.ids = {1, 2};
  r.decode_logits = {1.0f};
  const ByteBuffer results = encode_results({{0, &r}});
  for (std::size_t n = 0; n < results.size(); ++n)
    EXPECT_THROW(decode_results(ByteBuffer(results.begin(), results.begin() + n)), std::runtime_error) << n;
}

TEST(PipelineMessage, TrailingBytesAreRejected) {
  ByteBuffer b = sample_forward().encode();
  b.push_back(std::byte{0});
  EXPECT_THROW(ForwardMessage::decode(b), std::runtime_error);
  ByteBuffer s = encode_sampled({{0, 1, 0}});
  s.push_back(std::byte{0});
  EXPECT_THROW(decode_sampled(s), std::runtime_error);
}

TEST(PipelineMessage, WrongKindIsRejected) {
  const ByteBuffer forward = sample_forward().encode();
  EXPECT_THROW(decode_sampled(forward), std::runtime_error);
  EXPECT_THROW(decode_results(forward), std::runtime_error);
  EXPECT_THROW(ForwardMessage::decode(encode_sampled({{0, 1, 0}})), std::runtime_error);
}

TEST(PipelineMessage, CorruptedMagicIsRejected) {
  ByteBuffer b = sample_forward().encode();
  b[0] ^= std::byte{0x5a};
  EXPECT_THROW(ForwardMessage::decode(b), std::runtime_error);
}

// An array length far beyond the message (a corrupted count) is an error, not an allocation of
// petabytes or a read past the end.
TEST(PipelineMessage, CorruptedArrayLengthIsRejected) {
  ByteBuffer b;
  put(b, uint64_t(1) << 60);
  put(b, int32_t(1));
  const std::byte* p = b.data();
  EXPECT_THROW(take_vector<int32_t>(p, b.data() + b.size()), std::runtime_error);
}

// The rows of the sequences must add up to the ids carried.
TEST(PipelineMessage, RowsDisagreeingWithSequencesAreRejected) {
  ForwardMessage m = sample_forward();
  m.ids.push_back(15);
  EXPECT_THROW(ForwardMessage::decode(m.encode()), std::runtime_error);
}

}  // namespace
}  // namespace flashline

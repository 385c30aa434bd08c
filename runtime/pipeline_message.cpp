#include "runtime/pipeline_message.h"

#include <fmt/format.h>

#include "base/byte_codec.h"

namespace flashline {
namespace {

// Message magics: a message of the wrong kind or from a mismatched build fails loudly.
constexpr uint32_t kForwardMagic = 0x464c4657;  // "FLFW"
constexpr uint32_t kSampledMagic = 0x464c5341;  // "FLSA"
constexpr uint32_t kResultsMagic = 0x464c5245;  // "FLRE"

void expect_magic(const std::byte*& p, const std::byte* end, uint32_t magic, const char* what) {
  const auto m = take<uint32_t>(p, end);
  if (m != magic) throw std::runtime_error(fmt::format("pipeline: expected a {} message, found magic {:#x}", what, m));
}

void expect_end(const std::byte* p, const std::byte* end, const char* what) {
  if (p != end) throw std::runtime_error(fmt::format("pipeline: {} bytes left over in a {} message", end - p, what));
}

}  // namespace

ByteBuffer ForwardMessage::encode() const {
  ByteBuffer b;
  b.reserve(64 + seqs.size() * sizeof(ForwardSeq) + ids.size() * 4 + X.size() * 4);
  put(b, kForwardMagic);
  put(b, int32_t(end));
  put(b, slot);
  put(b, round);
  put(b, stage_rows);
  put(b, stage_mtp_rows);
  put_vector(b, seqs);
  put_vector(b, ids);
  put_vector(b, X);
  return b;
}

ForwardMessage ForwardMessage::decode(const ByteBuffer& b) {
  const std::byte *p = b.data(), *e = b.data() + b.size();
  expect_magic(p, e, kForwardMagic, "forward");
  ForwardMessage m;
  m.end = take<int32_t>(p, e) != 0;
  m.slot = take<int32_t>(p, e);
  m.round = take<int32_t>(p, e);
  m.stage_rows = take<int32_t>(p, e);
  m.stage_mtp_rows = take<int32_t>(p, e);
  m.seqs = take_vector<ForwardSeq>(p, e);
  m.ids = take_vector<int32_t>(p, e);
  m.X = take_vector<float>(p, e);
  expect_end(p, e, "forward");
  int rows = 0;
  for (const auto& s : m.seqs) rows += s.rows;
  if (rows != m.rows()) throw std::runtime_error("pipeline: forward message rows disagree with its sequences");
  return m;
}

ByteBuffer encode_sampled(const std::vector<SampledEntry>& entries) {
  ByteBuffer b;
  put(b, kSampledMagic);
  put_vector(b, entries);
  return b;
}

std::vector<SampledEntry> decode_sampled(const ByteBuffer& b) {
  const std::byte *p = b.data(), *e = b.data() + b.size();
  expect_magic(p, e, kSampledMagic, "sampled");
  auto v = take_vector<SampledEntry>(p, e);
  expect_end(p, e, "sampled");
  return v;
}

ByteBuffer encode_results(const std::vector<std::pair<int32_t, const GenerationResult*>>& results) {
  ByteBuffer b;
  put(b, kResultsMagic);
  put(b, uint64_t(results.size()));
  for (const auto& [index, r] : results) {
    put(b, index);
    r->serialize(b);
  }
  return b;
}

std::vector<std::pair<int32_t, GenerationResult>> decode_results(const ByteBuffer& b) {
  const std::byte *p = b.data(), *e = b.data() + b.size();
  expect_magic(p, e, kResultsMagic, "results");
  const auto n = take<uint64_t>(p, e);
  std::vector<std::pair<int32_t, GenerationResult>> out;
  for (uint64_t i = 0; i < n; ++i) {
    const auto index = take<int32_t>(p, e);
    out.emplace_back(index, GenerationResult::deserialize(p, e));
  }
  expect_end(p, e, "results");
  return out;
}

}  // namespace flashline

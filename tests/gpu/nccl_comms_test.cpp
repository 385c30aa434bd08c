// The NCCL transports against the MPI ones, under mpirun with one CUDA device per rank:
// - expert exchange: random byte payloads of a different size per (round, sender, receiver),
//   empty ones included, growing and shrinking so the reused device buffers are exercised; the
//   NCCL result must equal the MPI exchange's and what the sender generated;
// - pipeline link: every rank sends interleaved tags to every rank (itself included) before
//   receiving any, then receives them tag by tag in another order; each (from, tag) must come
//   in the order sent, byte for byte.
// Exit 77 (ctest: skipped) when the ranks do not each have a CUDA device.
#include <fmt/format.h>

#include <cstdint>
#include <random>

#include "comms/mpi/mpi_expert_exchange.h"
#include "comms/mpi/mpi_world.h"
#include "comms/nccl/nccl_expert_exchange.h"
#include "comms/nccl/nccl_pipeline_link.h"

namespace {

using flashline::ByteBuffer;
using flashline::LinkTag;

constexpr int kSkip = 77;

// Deterministic payloads: the receiver regenerates what the sender sent.
std::size_t payload_size(int round, int from, int to) {
  std::mt19937_64 g(uint64_t(round) * 1000003 + uint64_t(from) * 1009 + uint64_t(to));
  switch (g() % 5) {
    case 0: return 0;
    case 1: return 1 + g() % 16;
    case 2: return 1 + g() % 4096;
    case 3: return 65536 + g() % 65536;
    default: return (1 << 20) + g() % 4099;
  }
}

ByteBuffer payload(int round, int from, int to) {
  ByteBuffer b(payload_size(round, from, to));
  std::mt19937 g(uint32_t(round * 7919 + from * 131 + to + 1));
  for (auto& x : b) x = std::byte(g() & 0xff);
  return b;
}

int failures = 0;
void expect(bool ok, const std::string& what) {
  if (!ok && failures++ < 10) fmt::print(stderr, "FAIL: {}\n", what);
}

void test_exchange(flashline::ExpertExchange& nccl, flashline::ExpertExchange& mpi, int me, int n) {
  for (int round = 0; round < 24; ++round) {
    std::vector<ByteBuffer> send(n);
    for (int r = 0; r < n; ++r) send[r] = payload(round, me, r);
    const auto got = nccl.all_to_all(send);
    const auto want = mpi.all_to_all(send);
    expect(int(got.size()) == n, fmt::format("round {}: {} buffers for {} ranks", round, got.size(), n));
    for (int r = 0; r < n && r < int(got.size()); ++r) {
      expect(got[r] == want[r], fmt::format("rank {} round {}: from rank {}: nccl {} bytes, mpi {} bytes, contents {}",
                                            me, round, r, got[r].size(), want[r].size(),
                                            got[r] == want[r] ? "equal" : "differ"));
      expect(got[r] == payload(round, r, me), fmt::format("rank {} round {}: from rank {}: not what was sent", me, round, r));
    }
  }
}

void test_link(flashline::PipelineLink& link, int me, int n) {
  constexpr int kMessages = 12;
  const LinkTag tags[] = {LinkTag::Forward, LinkTag::Sampled, LinkTag::Stream};
  for (int k = 0; k < kMessages; ++k)
    for (int to = 0; to < n; ++to) link.send(to, tags[k % 3], payload(100 + k, me, to));
  for (LinkTag tag : {LinkTag::Stream, LinkTag::Forward, LinkTag::Sampled})
    for (int from = n - 1; from >= 0; --from)
      for (int k = 0; k < kMessages; ++k)
        if (tags[k % 3] == tag)
          expect(link.recv(from, tag) == payload(100 + k, from, me),
                 fmt::format("rank {}: message {} (tag {}) from rank {} differs", me, k, int(tag), from));
  link.flush();
}

}  // namespace

int main(int argc, char** argv) {
  flashline::MpiWorld world(&argc, &argv);
  const int me = world.rank(), n = world.size();
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, me, MPI_INFO_NULL, &node);
  int local = 0, local_n = 1;
  MPI_Comm_rank(node, &local);
  MPI_Comm_size(node, &local_n);
  const int devices = flashline::cuda_device_count();
  // NCCL refuses two ranks of one communicator on the same device.
  if (!world.all_ok(devices >= local_n)) {
    if (me == 0)
      fmt::print("SKIP: {}\n", devices == 0 ? std::string("no CUDA device")
                                            : fmt::format("{} ranks on a node need {} CUDA devices, found {}",
                                                          local_n, local_n, devices));
    world.finalize_and_exit(kSkip);
  }
  try {
    flashline::NcclExpertExchange nccl(MPI_COMM_WORLD, local);
    flashline::MpiExpertExchange mpi(MPI_COMM_WORLD);
    test_exchange(nccl, mpi, me, n);
    std::vector<std::pair<int, int>> routes;
    for (int a = 0; a < n; ++a)
      for (int b = 0; b < n; ++b) routes.emplace_back(a, b);
    flashline::NcclPipelineLink link(MPI_COMM_WORLD, local, routes);
    test_link(link, me, n);
  } catch (const std::exception& e) {
    world.abort(e.what(), 1);
  }
  const bool ok = world.all_ok(failures == 0);
  if (me == 0) fmt::print("{}: NCCL exchange and link on {} ranks\n", ok ? "PASS" : "FAIL", n);
  world.finalize_and_exit(ok ? 0 : 1);
}

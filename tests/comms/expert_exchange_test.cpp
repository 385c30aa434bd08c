// The packed expert exchange over MPI (and the loopback one), under mpirun with any number of
// ranks: every round each rank sends every rank (itself included) a payload of its own size
// (empty, small, eager-sized, large), packed in one buffer whose parts are not in lane order and
// have gaps between them; both forms are used (sizes unknown to the receiver, and sizes passed
// as expected). Checks: every byte arrives from the right lane, this lane's own part is a view of
// the send buffer (not copied), the receive buffer is reused (grown, never shrunk), and rounds
// stay apart when one lane is late. (Messages are matched per source, so a lane that runs ahead
// cannot have its next round's message taken for this one: MPI keeps one source's messages in
// order. Timing alone rarely provokes that race, so this test does not prove it.) Exit status 0
// on success.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdint>
#include <random>

#include "comms/expert_exchange.h"
#include "comms/mpi/mpi_expert_exchange.h"
#include "comms/mpi/mpi_world.h"

namespace {

using flashline::ByteBuffer;
using flashline::PackedLayout;

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

std::byte payload_byte(int round, int from, int to, std::size_t i) {
  return std::byte((uint32_t(round) * 2654435761u + uint32_t(from) * 40503u + uint32_t(to) * 977u + uint32_t(i) * 31u) >> 7);
}

int failures = 0;
void expect(bool ok, const std::string& what) {
  if (!ok && failures++ < 10) fmt::print(stderr, "FAIL: {}\n", what);
}

void check_round(flashline::ExpertExchange& ex, int round, bool known) {
  const int n = ex.size(), me = ex.rank();
  // Parts in reverse lane order with a 3-byte gap before each.
  std::vector<std::size_t> counts(n), offsets(n);
  std::size_t at = 0;
  for (int r = n - 1; r >= 0; --r) {
    at += 3;
    offsets[r] = at;
    counts[r] = payload_size(round, me, r);
    at += counts[r];
  }
  ByteBuffer send(at, std::byte{0xEE});
  for (int r = 0; r < n; ++r)
    for (std::size_t i = 0; i < counts[r]; ++i) send[offsets[r] + i] = payload_byte(round, me, r, i);
  const PackedLayout layout{counts, offsets};
  std::vector<std::size_t> expected(n);
  for (int r = 0; r < n; ++r) expected[r] = payload_size(round, r, me);
  thread_local ByteBuffer recv;
  const std::size_t before = recv.size();
  const auto got = ex.exchange(send.data(), layout, recv, known ? &expected : nullptr);
  expect(recv.size() >= before, fmt::format("round {}: receive buffer shrank", round));
  expect(int(got.parts.size()) == n, fmt::format("round {}: {} parts for {} lanes", round, got.parts.size(), n));
  expect(got.data(me) == send.data() + offsets[me] && got.size(me) == counts[me],
         fmt::format("round {}: own part is not a view of the send buffer", round));
  for (int r = 0; r < n; ++r) {
    expect(got.size(r) == expected[r],
           fmt::format("lane {} round {} ({}): {} bytes from lane {}, expected {}", me, round,
                       known ? "known sizes" : "unknown sizes", got.size(r), r, expected[r]));
    if (got.size(r) != expected[r]) continue;
    std::size_t bad = 0;
    for (std::size_t i = 0; i < expected[r]; ++i) bad += got.data(r)[i] != payload_byte(round, r, me, i);
    expect(bad == 0, fmt::format("lane {} round {}: {} wrong bytes from lane {}", me, round, bad, r));
  }
}

}  // namespace

int main(int argc, char** argv) {
  flashline::MpiWorld world(&argc, &argv);
  {
    flashline::MpiExpertExchange ex(MPI_COMM_WORLD);
    for (int round = 0; round < 40; ++round) {
      // Every 5th round one lane is late, so the others run ahead into the next round.
      if (round % 5 == 4 && world.rank() == round % world.size()) usleep(20000);
      check_round(ex, round, round % 2 == 1);
    }
    // The convenience form agrees with the packed one.
    std::vector<ByteBuffer> send(ex.size());
    for (int r = 0; r < ex.size(); ++r) send[r] = ByteBuffer(std::size_t(r + 1) * 5, std::byte(world.rank()));
    const auto got = ex.all_to_all(send);
    for (int r = 0; r < ex.size(); ++r)
      expect(got[r] == ByteBuffer(std::size_t(world.rank() + 1) * 5, std::byte(r)), fmt::format("all_to_all from lane {}", r));
  }
  if (world.rank() == 0) {
    flashline::LoopbackExpertExchange loop;
    for (int round = 0; round < 4; ++round) check_round(loop, round, round % 2 == 1);
  }
  const bool ok = world.all_ok(failures == 0);
  if (world.rank() == 0) fmt::print("expert exchange on {} ranks: {}\n", world.size(), ok ? "ok" : "FAILED");
  world.finalize_and_exit(ok ? 0 : 1);
}

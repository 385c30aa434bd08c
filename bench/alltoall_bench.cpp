// All-to-all microbenchmark of the expert exchange: latency and bandwidth against message size,
// per backend, next to a plain memcpy of the same bytes (the floor any transport is judged by).
// Run under mpirun (-np = lanes of one stage); the transport is what Open MPI picks or what
// --mca selects (vader shared memory, TCP, UCX). Where the NCCL backend is built and every rank
// of a node has its own CUDA device, the NCCL exchange (host rows staged through device buffers)
// is timed too.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstring>
#include <memory>

#include "comms/expert_exchange.h"
#include "comms/mpi/mpi_expert_exchange.h"
#include "comms/mpi/mpi_world.h"
#ifdef FLASHLINE_HAVE_NCCL
#include "comms/nccl/nccl_expert_exchange.h"
#endif

namespace {

using flashline::ByteBuffer;
using clock_type = std::chrono::steady_clock;

// Seconds per all_to_all with `bytes` to every peer (including itself), slowest rank.
double time_exchange(flashline::ExpertExchange& ex, std::size_t bytes, int iters) {
  std::vector<ByteBuffer> send(ex.size(), ByteBuffer(bytes, std::byte{1}));
  ex.all_to_all(send);  // warm-up: buffers, connections
  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = clock_type::now();
  for (int i = 0; i < iters; ++i) ex.all_to_all(send);
  double s = std::chrono::duration<double>(clock_type::now() - t0).count() / iters, worst = 0;
  MPI_Allreduce(&s, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}

// The raw collective on preallocated buffers: what the exchange adds on top of MPI.
double time_raw(int ranks, std::size_t bytes, int iters) {
  std::vector<char> a(bytes * ranks, 1), b(bytes * ranks);
  std::vector<int> counts(ranks, int(bytes)), displs(ranks);
  for (int r = 0; r < ranks; ++r) displs[r] = int(bytes) * r;
  auto once = [&] {
    MPI_Alltoallv(a.data(), counts.data(), displs.data(), MPI_BYTE, b.data(), counts.data(), displs.data(), MPI_BYTE,
                  MPI_COMM_WORLD);
  };
  once();
  MPI_Barrier(MPI_COMM_WORLD);
  const auto t0 = clock_type::now();
  for (int i = 0; i < iters; ++i) once();
  double s = std::chrono::duration<double>(clock_type::now() - t0).count() / iters, worst = 0;
  MPI_Allreduce(&s, &worst, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return worst;
}

double time_memcpy(std::size_t bytes, int peers, int iters) {
  std::vector<char> a(bytes * peers, 1), b(bytes * peers);
  const auto t0 = clock_type::now();
  for (int i = 0; i < iters; ++i) {
    std::memcpy(b.data(), a.data(), a.size());
    a[i % a.size()] = b[(i * 7) % b.size()];  // keeps the copy from being optimised away
  }
  return std::chrono::duration<double>(clock_type::now() - t0).count() / iters;
}

// The NCCL exchange on this rank's device (its index among the node's ranks), or null with the
// reason on rank 0's output: no NCCL backend in this build, or fewer devices than ranks on a node
// (NCCL refuses two ranks of one communicator on one device).
std::unique_ptr<flashline::ExpertExchange> make_nccl(const flashline::MpiWorld& world) {
#ifdef FLASHLINE_HAVE_NCCL
  MPI_Comm node;
  MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, world.rank(), MPI_INFO_NULL, &node);
  int local = 0, local_n = 1;
  MPI_Comm_rank(node, &local);
  MPI_Comm_size(node, &local_n);
  MPI_Comm_free(&node);
  const int devices = flashline::cuda_device_count();
  if (world.all_ok(devices >= local_n)) return std::make_unique<flashline::NcclExpertExchange>(MPI_COMM_WORLD, local);
  if (world.rank() == 0)
    fmt::print("nccl: not timed: {} ranks per node need as many CUDA devices, found {}\n", local_n, devices);
#else
  if (world.rank() == 0) fmt::print("nccl: not timed: built without the NCCL backend\n");
#endif
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"All-to-all latency and bandwidth of the expert exchange vs memcpy (run under mpirun)"};
  std::size_t max_bytes = 4 << 20;
  double seconds = 0.2;
  app.add_option("--max-bytes", max_bytes, "Largest message per peer")->capture_default_str();
  app.add_option("--seconds", seconds, "Measuring time per size, about")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  flashline::MpiWorld world(&argc, &argv);
  flashline::MpiExpertExchange mpi(MPI_COMM_WORLD);
  flashline::LoopbackExpertExchange loopback;
  std::unique_ptr<flashline::ExpertExchange> nccl = make_nccl(world);
  if (world.rank() == 0)
    fmt::print("{} ranks; per-rank bandwidth = bytes sent to other ranks / time\n{:>10} {:>10} {:>10} {:>10} {:>10} {:>12} {:>12} {:>12} {:>10} {:>10}\n",
               world.size(), "bytes/peer", "mpi us", "mpi GB/s", "raw us", "raw GB/s", "loopback us", "memcpy us", "memcpy GB/s",
               "nccl us", "nccl GB/s");
  for (std::size_t bytes = 64; bytes <= max_bytes; bytes *= 4) {
    const double once = time_exchange(mpi, bytes, 3);
    int iters = std::max(3, int(seconds / std::max(once, 1e-6)));
    MPI_Bcast(&iters, 1, MPI_INT, 0, MPI_COMM_WORLD);
    const double t_mpi = time_exchange(mpi, bytes, iters);
    double t_loop = 0;
    if (world.size() == 1) t_loop = time_exchange(loopback, bytes, iters);
    const double t_raw = time_raw(world.size(), bytes, iters);
    const double t_copy = time_memcpy(bytes, world.size(), iters);
    const double t_nccl = nccl ? time_exchange(*nccl, bytes, iters) : 0;
    const double moved = double(bytes) * std::max(1, world.size() - 1);
    if (world.rank() == 0)
      fmt::print("{:>10} {:>10.2f} {:>10.3f} {:>10.2f} {:>10.3f} {:>12} {:>12.2f} {:>12.3f} {:>10} {:>10}\n", bytes,
                 t_mpi * 1e6, moved / t_mpi / 1e9, t_raw * 1e6, moved / t_raw / 1e9,
                 world.size() == 1 ? fmt::format("{:.2f}", t_loop * 1e6) : "-", t_copy * 1e6,
                 double(bytes) * world.size() / t_copy / 1e9, nccl ? fmt::format("{:.2f}", t_nccl * 1e6) : "-",
                 nccl ? fmt::format("{:.3f}", moved / t_nccl / 1e9) : "-");
  }
  return 0;
}

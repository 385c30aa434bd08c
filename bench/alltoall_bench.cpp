// All-to-all microbenchmark of the expert exchange: latency and bandwidth against message size,
// per backend, next to the raw MPI_Alltoallv of the same bytes (printed as a ratio per size) and
// a plain memcpy (the floor any transport is judged by).
// Run under mpirun (-np = lanes of one stage); the transport is what Open MPI picks or what
// --mca selects (vader shared memory, TCP, UCX). Where the NCCL backend is built and every rank
// of a node has its own CUDA device, the NCCL exchange (host rows staged through device buffers)
// is timed too.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <cstring>
#include <memory>
#include <nlohmann/json.hpp>

#include "bench/serve_result.h"
#include "comms/expert_exchange.h"
#include "comms/mpi/mpi_expert_exchange.h"
#include "comms/mpi/mpi_world.h"
#ifdef FLASHLINE_HAVE_NCCL
#include "comms/nccl/nccl_expert_exchange.h"
#endif

namespace {

using flashline::ByteBuffer;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) { return std::chrono::duration<double>(clock_type::now() - t0).count(); }

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0.0 : v[v.size() / 2];
}

// The slowest rank's value.
double worst(double s) {
  double w = 0;
  MPI_Allreduce(&s, &w, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
  return w;
}

// One size: the exchange in its two forms next to the raw collective, with `bytes` to every peer
// (itself included). Calls alternate between the three, in a rotating order, and each is timed
// on its own, so a busy machine slows them alike; the figures are medians per rank, then the
// slowest rank.
// - dispatch: receivers do not know the sizes (the MoE dispatch);
// - combine: receivers pass the sizes they expect (the MoE combine);
// - raw: MPI_Alltoallv on preallocated buffers, counts known everywhere.
struct Timing {
  double dispatch = 0, combine = 0, raw = 0;
};
Timing time_forms(flashline::ExpertExchange& ex, std::size_t bytes, int iters) {
  const int n = ex.size();
  ByteBuffer send(bytes * n, std::byte{1}), recv, back;
  const auto layout = flashline::PackedLayout::consecutive(std::vector<std::size_t>(n, bytes));
  const std::vector<std::size_t> expected(n, bytes);
  std::vector<char> a(bytes * n, 1), b(bytes * n);
  std::vector<int> counts(n, int(bytes)), displs(n);
  for (int r = 0; r < n; ++r) displs[r] = int(bytes) * r;
  auto raw = [&] {
    MPI_Alltoallv(a.data(), counts.data(), displs.data(), MPI_BYTE, b.data(), counts.data(), displs.data(), MPI_BYTE,
                  MPI_COMM_WORLD);
  };
  auto dispatch = [&] { ex.exchange(send.data(), layout, recv); };
  auto combine = [&] { ex.exchange(send.data(), layout, back, &expected); };
  raw(), dispatch(), combine();  // warm-up: buffers, connections
  std::vector<double> t[3];
  const std::function<void()> forms[3] = {dispatch, combine, raw};
  MPI_Barrier(MPI_COMM_WORLD);
  for (int i = 0; i < iters; ++i)
    for (int k = 0; k < 3; ++k) {
      const int f = (i + k) % 3;
      const auto t0 = clock_type::now();
      forms[f]();
      t[f].push_back(seconds_since(t0));
    }
  return {worst(median(t[0])), worst(median(t[1])), worst(median(t[2]))};
}

// Seconds per exchange with `bytes` to every peer, sizes unknown to receivers (median, slowest rank).
double time_exchange(flashline::ExpertExchange& ex, std::size_t bytes, int iters) {
  const int n = ex.size();
  ByteBuffer send(bytes * n, std::byte{1}), recv;
  const auto layout = flashline::PackedLayout::consecutive(std::vector<std::size_t>(n, bytes));
  ex.exchange(send.data(), layout, recv);
  MPI_Barrier(MPI_COMM_WORLD);
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = clock_type::now();
    ex.exchange(send.data(), layout, recv);
    t.push_back(seconds_since(t0));
  }
  return worst(median(t));
}

double time_memcpy(std::size_t bytes, int peers, int iters) {
  std::vector<char> a(bytes * peers, 1), b(bytes * peers);
  std::vector<double> t;
  for (int i = 0; i < iters; ++i) {
    const auto t0 = clock_type::now();
    std::memcpy(b.data(), a.data(), a.size());
    a[i % a.size()] = b[(i * 7) % b.size()];  // keeps the copy from being optimised away
    t.push_back(seconds_since(t0));
  }
  return median(t);
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
  std::string save_result;
  app.add_option("--max-bytes", max_bytes, "Largest message per peer")->capture_default_str();
  app.add_option("--save-result", save_result,
                 "Write the table as JSON here (date, backend and one entry per size, as the other benchmarks' results)");
  app.add_option("--seconds", seconds, "Measuring time per size, about")->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  flashline::MpiWorld world(&argc, &argv);
  flashline::MpiExpertExchange mpi(MPI_COMM_WORLD);
  flashline::LoopbackExpertExchange loopback;
  std::unique_ptr<flashline::ExpertExchange> nccl = make_nccl(world);
  if (world.rank() == 0)
    fmt::print("{} ranks; median us per call (slowest rank); GB/s = bytes sent to other ranks per rank / time;\n"
               "ratio = raw MPI_Alltoallv time / exchange time (1.0 = as fast as the raw collective)\n"
               "{:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8} {:>8} {:>11} {:>10} {:>10} {:>10}\n",
               world.size(), "bytes/peer", "raw us", "raw GB/s", "disp us", "disp GB/s", "comb us", "disp/raw",
               "comb/raw", "loopback us", "memcpy us", "nccl us", "nccl GB/s");
  nlohmann::json sizes = nlohmann::json::array();
  for (std::size_t bytes = 64; bytes <= max_bytes; bytes *= 4) {
    const double once = time_exchange(mpi, bytes, 3);
    int iters = std::max(5, int(seconds / 3 / std::max(once, 1e-6)));
    MPI_Bcast(&iters, 1, MPI_INT, 0, MPI_COMM_WORLD);
    const Timing t = time_forms(mpi, bytes, iters);
    double t_loop = 0;
    if (world.size() == 1) t_loop = time_exchange(loopback, bytes, iters);
    const double t_copy = time_memcpy(bytes, world.size(), iters);
    const double t_nccl = nccl ? time_exchange(*nccl, bytes, iters) : 0;
    const double moved = double(bytes) * std::max(1, world.size() - 1);
    if (world.rank() == 0)
      fmt::print("{:>10} {:>10.2f} {:>10.3f} {:>10.2f} {:>10.3f} {:>10.2f} {:>8.3f} {:>8.3f} {:>11} {:>10.2f} {:>10} {:>10}\n",
                 bytes, t.raw * 1e6, moved / t.raw / 1e9, t.dispatch * 1e6, moved / t.dispatch / 1e9, t.combine * 1e6,
                 t.raw / t.dispatch, t.raw / t.combine, world.size() == 1 ? fmt::format("{:.2f}", t_loop * 1e6) : "-",
                 t_copy * 1e6, nccl ? fmt::format("{:.2f}", t_nccl * 1e6) : "-",
                 nccl ? fmt::format("{:.3f}", moved / t_nccl / 1e9) : "-");
    nlohmann::json row = {{"bytes_per_peer", bytes},        {"raw_us", t.raw * 1e6},
                          {"dispatch_us", t.dispatch * 1e6}, {"combine_us", t.combine * 1e6},
                          {"raw_gb_per_s", moved / t.raw / 1e9}, {"dispatch_gb_per_s", moved / t.dispatch / 1e9},
                          {"memcpy_us", t_copy * 1e6}};
    if (nccl) row["nccl_us"] = t_nccl * 1e6;
    sizes.push_back(row);
  }
  if (world.rank() == 0 && !save_result.empty()) {
    const nlohmann::json result = {{"date", flashline::now_stamp()}, {"backend", "mpi-expert-exchange"},
                                   {"num_ranks", world.size()}, {"sizes", sizes}};
    std::ofstream out(save_result, std::ios::trunc);
    if (!(out << result.dump(2) << "\n")) {
      fmt::print(stderr, "flashline: error: --save-result {}: cannot write the file\n", save_result);
      return 2;
    }
  }
  return 0;
}

#include "comms/mpi/mpi_world.h"

#include <fmt/format.h>
#include <malloc.h>
#include <sched.h>

#include <chrono>
#include <cstdio>
#include <stdexcept>
#include <thread>

namespace flashline {

MpiWorld::MpiWorld(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    // One thread at a time calls MPI (on rank 0 the engine thread, elsewhere the main thread);
    // compute threads (OpenMP) and the HTTP threads never do.
    MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided);
    finalize_ = true;
  }
  // Messages and exchange buffers are allocated per step; keeping freed memory in the heap
  // (instead of returning every multi-megabyte block to the OS) avoids refaulting it each step.
  mallopt(M_MMAP_THRESHOLD, 256 << 20);
  mallopt(M_TRIM_THRESHOLD, 512 << 20);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  char name[MPI_MAX_PROCESSOR_NAME];
  int len = 0;
  MPI_Get_processor_name(name, &len);
  host_.assign(name, std::size_t(len));
  // Errors inside MPI calls come back as codes and become exceptions that name the call.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

MpiWorld::~MpiWorld() {
  if (finalize_) MPI_Finalize();
}

MPI_Comm MpiWorld::split(int color, int key) {
  MPI_Comm c = MPI_COMM_NULL;
  if (MPI_Comm_split(MPI_COMM_WORLD, color, key, &c) != MPI_SUCCESS)
    throw std::runtime_error(fmt::format("MPI_Comm_split failed on rank {}", rank_));
  MPI_Comm_set_errhandler(c, MPI_ERRORS_RETURN);
  return c;
}

void MpiWorld::abort(const std::string& cause, int code) const {
  fmt::print(stderr, "flashline: error: rank {} (host {}) {}\n", rank_, host_, cause);
  std::fflush(stderr);
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);
}

void MpiWorld::finalize_and_exit(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  if (finalize_) MPI_Finalize();
  finalize_ = false;
  std::exit(code);
}

bool MpiWorld::all_ok(bool ok) const {
  int mine = ok ? 1 : 0, all = 0;
  MPI_Allreduce(&mine, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
  return all == 1;
}

void mpi_wait(MPI_Request& req, MPI_Status* status) {
  int done = 0;
  for (int spin = 0; !done; ++spin) {
    if (MPI_Test(&req, &done, status) != MPI_SUCCESS) throw std::runtime_error("MPI_Test failed");
    if (!done) mpi_idle(spin);
  }
}

void mpi_idle(int spin) {
  if (spin < 2000) return;
  if (spin < 4000)
    sched_yield();
  else
    std::this_thread::sleep_for(std::chrono::microseconds(50));
}

}  // namespace flashline

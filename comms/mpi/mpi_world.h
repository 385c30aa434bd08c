#pragma once
// MPI for one `flashline` process: initialisation, this rank's identity, the per-stage
// communicators, and the fatal-error path (print who failed and why, then abort the job so no
// other rank waits for a dead peer).
#include <mpi.h>

#include <string>

namespace flashline {

class MpiWorld {
 public:
  MpiWorld(int* argc, char*** argv);
  ~MpiWorld();
  MpiWorld(const MpiWorld&) = delete;
  MpiWorld& operator=(const MpiWorld&) = delete;

  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& host() const { return host_; }
  // Collective over the world: ranks with the same `color` form one communicator, ordered by key.
  MPI_Comm split(int color, int key);
  // Prints "flashline: error: rank R (host H) cause" and aborts every rank of the job with
  // `code`; causes start with "stage S lane L: ".
  [[noreturn]] void abort(const std::string& cause, int code) const;
  // Finalizes MPI and exits the process with `code` (every rank calls it: a clean, agreed stop).
  [[noreturn]] void finalize_and_exit(int code);
  // Every rank succeeded (true) or some rank failed (false); collective.
  bool all_ok(bool ok) const;

 private:
  int rank_ = 0, size_ = 1;
  std::string host_;
  bool finalize_ = false;
};

// Waits for `req` without pinning a core: oversubscribed ranks (tests, one-machine demos) share
// cores with the rank they wait for, so after a short spin the wait yields and then sleeps.
void mpi_wait(MPI_Request& req, MPI_Status* status = MPI_STATUS_IGNORE);
// The back-off of such a wait after `spin` unsuccessful polls.
void mpi_idle(int spin);

}  // namespace flashline

#pragma once
// From a plan to an mpirun command line: hostfile (slots per host), rankfile (rank -> host and
// cores, where the cluster file gives each node's CPU count), process count, mapping, binding
// and the environment that selects the transports.
#include <string>
#include <utility>
#include <vector>

#include "base/input_error.h"
#include "partition/plan.h"

namespace flashline {

struct LaunchOptions {
  std::string plan_path;     // as given; passed on to every rank
  std::string model_dir;
  std::string subcommand = "generate";  // what every rank runs ("bench offline": words split at spaces)
  std::vector<std::string> extra_args;
  std::string executable = "flashline";
  std::string mpirun = "mpirun";
  std::string hostfile_path;  // where the hostfile goes (the plan's name + ".hostfile")
  std::string rankfile_path;
  bool as_root = false;       // mpirun refuses root without --allow-run-as-root
  int local_cores = 0;        // CPUs of the launching machine (for plan ranks on it); 0: unknown
  // Open MPI parameters from the user (`launch --mca btl=tcp,self`), passed as --mca NAME VALUE.
  // Naming pml or btl replaces the launcher's own transport choice.
  std::vector<std::pair<std::string, std::string>> mca;
};

struct MpirunCommand {
  std::vector<std::string> argv;
  std::string hostfile;  // contents
  std::string rankfile;  // contents; empty when ranks are placed by the hostfile's slot order
  std::string shell_line() const;  // argv quoted for a POSIX shell
};

// Throws InputError when the plan cannot be mapped (ranks out of node order without CPU counts).
MpirunCommand build_mpirun_command(const Plan& plan, const LaunchOptions& o);

}  // namespace flashline

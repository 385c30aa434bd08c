// `flashline launch`: plan file -> hostfile, rankfile and the mpirun command that starts every rank.
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "launch/commands.h"
#include "launch/mpirun_command.h"
#include "launch/thread_count.h"
#include "model/model_config.h"

namespace flashline {
namespace {

struct LaunchArgs {
  std::string plan;
  std::string model;
  std::string run = "generate";
  std::string mpirun = "mpirun";
  bool dry_run = false;
  std::vector<std::string> extra;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  if (!(f << text)) throw InputError(fmt::format("{}: cannot write", path));
}

void run_launch(const LaunchArgs& a) {
  Plan plan = Plan::load(a.plan);
  namespace fs = std::filesystem;
  LaunchOptions o;
  o.plan_path = fs::absolute(a.plan).string();
  // Absolute, so every rank finds the model whatever directory mpirun starts it in.
  o.model_dir = fs::absolute(a.model).lexically_normal().string();
  o.subcommand = a.run;
  o.extra_args = a.extra;
  o.mpirun = a.mpirun;
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  o.executable = ec ? "flashline" : self.string();
  fs::path base = fs::absolute(a.plan);
  o.hostfile_path = fs::path(base).replace_extension(".hostfile").string();
  o.rankfile_path = fs::path(base).replace_extension(".rankfile").string();
  o.as_root = geteuid() == 0;
  o.local_cores = this_host_cpus().cores;
  MpirunCommand m = build_mpirun_command(plan, o);
  if (a.dry_run) {
    fmt::print("# {} (not written: dry run)\n{}", o.hostfile_path, m.hostfile);
    if (!m.rankfile.empty()) fmt::print("# {} (not written: dry run)\n{}", o.rankfile_path, m.rankfile);
    fmt::print("{}\n", m.shell_line());
    return;
  }
  write_file(o.hostfile_path, m.hostfile);
  if (!m.rankfile.empty()) write_file(o.rankfile_path, m.rankfile);
  fmt::print(stderr, "launching {} ranks: {}\n", plan.world_size(), m.shell_line());
  std::fflush(stdout);
  std::vector<char*> argv;
  for (auto& s : m.argv) argv.push_back(s.data());
  argv.push_back(nullptr);
  execvp(argv[0], argv.data());  // mpirun's exit status becomes ours
  throw InputError(fmt::format("cannot run {}: {}", a.mpirun, std::strerror(errno)));
}

}  // namespace

void add_launch_command(CLI::App& app) {
  auto a = std::make_shared<LaunchArgs>();
  auto* cmd = app.add_subcommand("launch", "Start every rank of a plan with mpirun (hostfile, rankfile, transports)");
  cmd->add_option("--plan", a->plan, "Plan file from `flashline plan`")->required();
  cmd->add_option("--model", a->model, "Model directory every rank loads")->required();
  cmd->add_option("--run", a->run, "Subcommand every rank runs (generate, logits or serve; it gets --plan and --model)")
      ->capture_default_str();
  cmd->add_option("--mpirun", a->mpirun, "mpirun executable")->capture_default_str();
  cmd->add_flag("--dry-run", a->dry_run, "Print the hostfile, rankfile and mpirun command instead of running them");
  cmd->add_option("extra", a->extra,
                  "Arguments after -- are passed to every rank, e.g. -- --prompt-ids 1,2,3 --max-new-tokens 8");
  cmd->callback([a] { run_launch(*a); });
}

}  // namespace flashline

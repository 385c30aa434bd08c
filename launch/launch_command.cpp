// `flashline launch`: plan file -> hostfile, rankfile and the mpirun command that starts every rank.
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "launch/commands.h"
#include "launch/mpirun_command.h"
#include "launch/output_set.h"
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
  std::vector<std::string> mca;  // NAME=VALUE
  std::vector<std::string> extra;
};

// What mpirun would start on every rank, checked here: a mistake found inside the ranks costs a
// whole job start on every host and reports from many processes at once.
void check_before_start(const LaunchArgs& a, const Plan& plan) {
  if (a.run != "generate" && a.run != "logits" && a.run != "serve" && a.run != "bench offline")
    throw InputError(fmt::format(
        "--run {}: expected generate, logits, serve or \"bench offline\" (the subcommands that run as a plan's ranks)",
        a.run));
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(a.model, ec))
    throw InputError(fmt::format("--model {}: {}", a.model,
                                 fs::exists(a.model, ec) ? "is a file, expected a model directory"
                                                         : "no such directory (expected a model directory)"));
  const ModelConfig c = ModelConfig::load(fs::path(a.model) / "config.json");
  check_plan_matches_model(plan, c, a.plan);
  for (const auto& arg : a.extra)
    if (arg == "--plan" || arg == "--model" || arg.starts_with("--plan=") || arg.starts_with("--model="))
      throw InputError(fmt::format("launch: {} after --: launch passes --plan and --model to every rank itself", arg));
}

void run_launch(const LaunchArgs& a) {
  Plan plan = Plan::load(a.plan);
  check_before_start(a, plan);
  namespace fs = std::filesystem;
  LaunchOptions o;
  o.plan_path = fs::absolute(a.plan).string();
  // Absolute, so every rank finds the model whatever directory mpirun starts it in.
  o.model_dir = fs::absolute(a.model).lexically_normal().string();
  o.subcommand = a.run;
  o.extra_args = a.extra;
  o.mpirun = a.mpirun;
  for (const auto& kv : a.mca) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      throw InputError(fmt::format("--mca {}: expected NAME=VALUE, e.g. --mca btl_tcp_if_include=eth0", kv));
    o.mca.emplace_back(kv.substr(0, eq), kv.substr(eq + 1));
  }
  std::error_code ec;
  auto self = fs::read_symlink("/proc/self/exe", ec);
  o.executable = ec ? "flashline" : self.string();
  fs::path base = fs::absolute(a.plan);
  o.hostfile_path = fs::path(base).replace_extension(".hostfile").string();
  o.rankfile_path = fs::path(base).replace_extension(".rankfile").string();
  o.as_root = geteuid() == 0;
  o.local_cores = this_host_cpus().cores;
  MpirunCommand m = build_mpirun_command(plan, o);
  // Written in a dry run too: the printed command names them and must run as printed.
  std::vector<std::pair<fs::path, std::string>> files{{o.hostfile_path, m.hostfile}};
  if (!m.rankfile.empty()) files.emplace_back(o.rankfile_path, m.rankfile);
  write_files_atomically(files);
  if (a.dry_run) {
    fmt::print("# {} (written)\n{}", o.hostfile_path, m.hostfile);
    if (!m.rankfile.empty()) fmt::print("# {} (written)\n{}", o.rankfile_path, m.rankfile);
    fmt::print("{}\n", m.shell_line());
    return;
  }
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
  cmd->add_option("--run", a->run, "Subcommand every rank runs (generate, logits, serve or \"bench offline\"; it gets --plan and --model)")
      ->capture_default_str();
  cmd->add_option("--mpirun", a->mpirun, "mpirun executable")->capture_default_str();
  cmd->add_option("--mca", a->mca,
                  "Open MPI parameter NAME=VALUE for mpirun (repeatable), e.g. btl_tcp_if_include=eth0; naming pml "
                  "or btl replaces the launcher's transport choice (docs/multi-host.md)")
      ->allow_extra_args(false);  // one value per --mca, so `--mca x=1 -- args` keeps args for the ranks
  cmd->add_flag("--dry-run", a->dry_run,
                "Write the hostfile and rankfile and print them with the mpirun command instead of running it");
  cmd->add_option("extra", a->extra,
                  "Arguments after -- are passed to every rank, e.g. -- --prompt-ids 1,2,3 --max-new-tokens 8");
  cmd->callback([a] { run_launch(*a); });
}

}  // namespace flashline

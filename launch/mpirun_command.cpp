#include "launch/mpirun_command.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "base/input_error.h"
#include "launch/thread_count.h"

namespace flashline {
namespace {

std::string quote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=/.,:@%") ==
                        std::string::npos)
    return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

std::string MpirunCommand::shell_line() const {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + quote(a);
  return s;
}

MpirunCommand build_mpirun_command(const Plan& plan, const LaunchOptions& o) {
  MpirunCommand m;
  std::map<std::string, const PlanNode*> nodes;
  for (const auto& n : plan.nodes) nodes[n.name] = &n;
  std::map<std::string, int> ranks_on;  // node -> ranks the plan puts there
  for (const auto& r : plan.ranks) ranks_on[r.node]++;
  for (const auto& n : plan.nodes)
    if (ranks_on[n.name] > 0) m.hostfile += fmt::format("{} slots={}\n", n.host, std::max(n.slots, ranks_on[n.name]));

  // The hostfile's slot order reproduces the plan when its ranks fill node after node in the
  // order of cluster.nodes; otherwise only a rankfile can, and that needs CPU numbers.
  bool node_order = true;
  std::size_t node_index = 0;
  for (const auto& r : plan.ranks) {
    while (node_index < plan.nodes.size() && plan.nodes[node_index].name != r.node) ++node_index;
    node_order &= node_index < plan.nodes.size();
  }
  bool cpus_known = std::all_of(plan.nodes.begin(), plan.nodes.end(), [](const PlanNode& n) { return n.cpus > 0; });
  if (cpus_known && !plan.localhost) {
    std::map<std::string, int> next;
    for (const auto& r : plan.ranks) {
      const auto* n = nodes.at(r.node);
      int per = std::max(1, n->cpus / ranks_on[r.node]);
      int first = next[r.node]++ * per;
      m.rankfile += fmt::format("rank {}={} slot={}-{}\n", r.rank, n->host, first, first + per - 1);
    }
  } else if (!node_order) {
    throw InputError(fmt::format("{}: ranks are not in node order and cluster.nodes gives no cpus: add `cpus:` to "
                                 "every node of the cluster file so a rankfile can place each rank",
                                 o.plan_path));
  }
  // Every rank sizes its own compute pool from the plan (launch/thread_count.h). The smallest
  // per-rank count known here also goes into OMP_NUM_THREADS, for ranks that run a command
  // which does not size its pool itself; ranks on other hosts whose CPU count the plan lacks
  // are left to their own count.
  int threads = 0;
  for (const auto& r : plan.ranks)
    if (const int t = plan_threads_of_rank(plan, r.rank, o.local_cores); t > 0) threads = threads ? std::min(threads, t) : t;

  auto& a = m.argv;
  a = {o.mpirun, "-np", std::to_string(plan.world_size())};
  if (o.as_root) a.push_back("--allow-run-as-root");
  a.insert(a.end(), {"--hostfile", o.hostfile_path});
  if (!m.rankfile.empty()) {
    a.insert(a.end(), {"--rankfile", o.rankfile_path, "--bind-to", "core"});
  } else {
    a.insert(a.end(), {"--map-by", "slot", "--bind-to", "none"});
  }
  const bool user_transport = std::any_of(o.mca.begin(), o.mca.end(), [](const auto& kv) {
    return kv.first == "pml" || kv.first == "btl";
  });
  if (plan.localhost) {
    // More ranks than cores share them; shared memory between processes of one machine.
    a.push_back("--oversubscribe");
    if (!user_transport) a.insert(a.end(), {"--mca", "btl", "self,vader"});
  } else if (plan.nodes.size() > 1 && !user_transport) {
    a.insert(a.end(), {"--mca", "pml", "ucx"});
  }
  for (const auto& [k, v] : o.mca) a.insert(a.end(), {"--mca", k, v});
  for (const auto& [k, v] : std::vector<std::pair<std::string, std::string>>{
           {"FLASHLINE_PIPELINE_TRANSPORT", plan.pipeline_transport},
           {"FLASHLINE_EXPERT_TRANSPORT", plan.expert_transport}})
    a.insert(a.end(), {"-x", k + "=" + v});
  if (threads > 0) a.insert(a.end(), {"-x", fmt::format("OMP_NUM_THREADS={}", threads)});
  // A nested subcommand ("bench offline") is one word per argument.
  a.push_back(o.executable);
  for (std::size_t from = 0; from < o.subcommand.size();) {
    const std::size_t space = std::min(o.subcommand.find(' ', from), o.subcommand.size());
    if (space > from) a.push_back(o.subcommand.substr(from, space - from));
    from = space + 1;
  }
  a.insert(a.end(), {"--plan", o.plan_path, "--model", o.model_dir});
  a.insert(a.end(), o.extra_args.begin(), o.extra_args.end());
  return m;
}

}  // namespace flashline

#include "cluster/cluster_spec.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <fstream>
#include <map>
#include <thread>

#include "base/input_error.h"
#include "base/yaml_reader.h"

namespace flashline {
namespace {

// Outside these ranges a figure is a typo (a missing unit, GB for TB), not hardware.
constexpr double kMaxMemory = 100e12;
constexpr double kMaxMemoryBandwidth = 100e12;
constexpr double kMaxFlops = 1e18;
constexpr double kMaxLinkBandwidth = 10e12;
constexpr double kMaxLatency = 1.0;

double checked(const YamlReader& r, std::string_view key, double v, double max, QuantityKind kind) {
  if (!(v > 0) || v > max) {
    auto at = r.has(key) ? r.get(key) : r.node();
    r.fail(at, key,
           fmt::format("impossible value {} (expected more than 0 and at most {})",
                       kind == QuantityKind::Bytes       ? format_bytes(v)
                       : kind == QuantityKind::Bandwidth ? format_bandwidth(v)
                                                         : format_flops(v),
                       kind == QuantityKind::Bytes       ? format_bytes(max)
                       : kind == QuantityKind::Bandwidth ? format_bandwidth(max)
                                                         : format_flops(max)));
  }
  return v;
}

DeviceSpec parse_device(const YamlReader& r) {
  static constexpr std::array<std::string_view, 9> keys{"kind",      "count",     "memory",         "memory_bandwidth",
                                                        "flops_bf16", "flops_fp8", "flops_fp4",      "cores",
                                                        "flops_per_core"};
  r.allow_only(keys);
  std::string kind = r.string("kind");
  auto builtin = builtin_device(kind);
  DeviceSpec d;
  if (builtin) {
    d = *builtin;
  } else {
    if (!r.has("memory") || !r.has("memory_bandwidth") || (!r.has("flops_bf16") && !r.has("cores"))) {
      auto kinds = builtin_device_kinds();
      std::vector<std::string_view> views(kinds.begin(), kinds.end());
      std::string near = nearest_key(kind, views);
      r.fail(r.get("kind"), "kind",
             fmt::format("unknown device kind \"{}\"{}; built-in kinds are {}; another kind needs memory, "
                         "memory_bandwidth and flops_bf16 (or cores for a CPU)",
                         kind, near.empty() ? "" : fmt::format(" (did you mean \"{}\"?)", near),
                         fmt::join(kinds, ", ")));
    }
    d.kind = kind;
    d.gpu = !r.has("cores");
  }
  d.count = int(r.integer("count", 1, 0, 4096));
  if (d.count == 0) r.fail(r.get("count"), "count", "zero devices: a device entry needs count >= 1");
  d.memory = checked(r, "memory", r.bytes("memory", d.memory), kMaxMemory, QuantityKind::Bytes);
  d.memory_bandwidth = checked(r, "memory_bandwidth", r.bandwidth("memory_bandwidth", d.memory_bandwidth),
                               kMaxMemoryBandwidth, QuantityKind::Bandwidth);
  if (!d.gpu) {
    d.cores = int(r.integer("cores", d.cores, 1, 65536));
    d.flops_per_core = r.flops("flops_per_core", d.flops_per_core > 0 ? d.flops_per_core : 40e9);
    double all = d.cores * d.flops_per_core;
    d.flops_bf16 = d.flops_fp8 = d.flops_fp4 = all;
  }
  d.flops_bf16 = checked(r, "flops_bf16", r.flops("flops_bf16", d.flops_bf16), kMaxFlops, QuantityKind::Flops);
  d.flops_fp8 = checked(r, "flops_fp8", r.flops("flops_fp8", d.flops_fp8 > 0 ? d.flops_fp8 : d.flops_bf16),
                        kMaxFlops, QuantityKind::Flops);
  d.flops_fp4 = checked(r, "flops_fp4", r.flops("flops_fp4", d.flops_fp4 > 0 ? d.flops_fp4 : d.flops_fp8),
                        kMaxFlops, QuantityKind::Flops);
  return d;
}

LinkSpec parse_link(const YamlReader& parent, std::string_view key, LinkSpec def) {
  if (!parent.has(key)) return def;
  auto r = parent.map(key);
  r.allow_only({"bandwidth", "latency"});
  LinkSpec l;
  l.bandwidth = checked(r, "bandwidth", r.bandwidth("bandwidth", def.bandwidth), kMaxLinkBandwidth,
                        QuantityKind::Bandwidth);
  l.latency = r.seconds("latency", def.latency);
  if (l.latency < 0 || l.latency > kMaxLatency)
    r.fail(r.get("latency"), "latency", fmt::format("impossible latency {} s (expected 0 to 1 s)", l.latency));
  return l;
}

// Defaults when a file has no `links`: NVLink-class inside GPU nodes, 400 Gb/s NICs between
// them; shared memory and 100 GbE for CPU-only clusters.
void default_links(ClusterSpec& c) {
  bool any_gpu = false, b200 = false;
  for (const auto& n : c.nodes)
    for (const auto& d : n.devices) any_gpu |= d.gpu, b200 |= d.kind == "B200";
  if (any_gpu) {
    c.intra_node = {b200 ? 900e9 : 450e9, 2e-6};
    c.inter_node = {50e9, 5e-6};
  } else {
    c.intra_node = {20e9, 1e-6};
    c.inter_node = {12.5e9, 20e-6};
  }
}

}  // namespace

int NodeSpec::device_count() const {
  int n = 0;
  for (const auto& d : devices) n += d.count;
  return n;
}

ClusterSpec ClusterSpec::parse(const std::string& text, const std::string& source) {
  auto root = parse_yaml_text(text, source);
  if (!root.IsDefined() || root.IsNull()) throw InputError(fmt::format("{}: empty cluster file", source));
  YamlReader r(root, source);
  r.allow_only({"name", "nodes", "links"});
  ClusterSpec c;
  c.source = source;
  c.name = r.string("name", std::filesystem::path(source).stem().string());
  auto nodes = r.sequence("nodes");
  if (nodes.size() == 0) r.fail(nodes, "nodes", "no nodes: a cluster needs at least one node");
  std::map<std::string, std::string> seen;  // name -> where first defined
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    auto nr = r.element(nodes[i], "nodes", i);
    nr.allow_only({"name", "host", "slots", "cpus", "devices"});
    NodeSpec n;
    n.name = nr.string("name");
    if (auto it = seen.find(n.name); it != seen.end())
      nr.fail(nr.get("name"), "name", fmt::format("duplicate node name \"{}\" (first defined at {})", n.name, it->second));
    seen[n.name] = nr.where(nr.get("name"));
    n.host = nr.string("host", n.name);
    auto devices = nr.sequence("devices");
    for (std::size_t k = 0; k < devices.size(); ++k) n.devices.push_back(parse_device(nr.element(devices[k], "devices", k)));
    if (n.device_count() == 0)
      nr.fail(nr.get("devices"), "devices", fmt::format("zero devices: node \"{}\" lists no device", n.name));
    n.slots = int(nr.integer("slots", n.device_count(), 1, 1 << 20));
    if (n.slots < n.device_count())
      nr.fail(nr.get("slots"), "slots",
              fmt::format("{} slots cannot hold the {} ranks of node \"{}\" (one rank per device)", n.slots,
                          n.device_count(), n.name));
    n.cpus = int(nr.integer("cpus", 0, 0, 1 << 20));
    c.nodes.push_back(std::move(n));
  }
  // One node reached as localhost is this machine: ranks may oversubscribe its cores.
  c.localhost = c.nodes.size() == 1 && (c.nodes[0].host == "localhost" || c.nodes[0].host == "127.0.0.1");
  default_links(c);
  if (r.has("links")) {
    auto lr = r.map("links");
    lr.allow_only({"intra_node", "inter_node"});
    c.intra_node = parse_link(lr, "intra_node", c.intra_node);
    c.inter_node = parse_link(lr, "inter_node", c.inter_node);
  }
  return c;
}

ClusterSpec ClusterSpec::load(const std::filesystem::path& path) {
  return parse(read_text_file(path, "cluster file"), path.string());
}

ClusterSpec ClusterSpec::local_cpu(int ranks) {
  if (ranks < 1 || ranks > 1024)
    throw InputError(fmt::format("--cluster localhost:{}: expected 1 to 1024 ranks", ranks));
  // Ranks share this machine: each gets an equal part of its memory, cores and bandwidth.
  double mem = 16e9;
  std::ifstream meminfo("/proc/meminfo");
  std::string key;
  double kb = 0;
  while (meminfo >> key >> kb) {
    if (key == "MemTotal:") {
      mem = kb * 1024.0;
      break;
    }
    meminfo.ignore(256, '\n');
  }
  int cores = int(std::max(1u, std::thread::hardware_concurrency()));
  DeviceSpec d = *builtin_device("cpu");
  d.count = ranks;
  d.memory = mem / ranks;
  d.cores = std::max(1, cores / ranks);
  d.flops_bf16 = d.flops_fp8 = d.flops_fp4 = cores * d.flops_per_core / ranks;  // oversubscribed ranks time-share
  d.memory_bandwidth = 10e9 * std::min(cores, 20) / double(ranks);
  NodeSpec n{"localhost", "localhost", ranks, cores, {d}};
  ClusterSpec c;
  c.name = fmt::format("localhost:{}", ranks);
  c.source = c.name;
  c.nodes.push_back(n);
  c.intra_node = {7.9e9 / std::max(1, ranks / 2), 1e-6};  // measured MPI_Alltoallv over shared memory
  c.inter_node = c.intra_node;
  c.localhost = true;
  return c;
}

ClusterSpec ClusterSpec::from_argument(const std::string& arg) {
  if (arg.starts_with("localhost:")) {
    int n = 0;
    try {
      std::size_t used = 0;
      n = std::stoi(arg.substr(10), &used);
      if (used != arg.size() - 10) n = 0;
    } catch (const std::exception&) {
      n = 0;
    }
    if (n < 1) throw InputError(fmt::format("--cluster {}: expected localhost:N with N >= 1 ranks", arg));
    return local_cpu(n);
  }
  return load(arg);
}

std::vector<RankSlot> ClusterSpec::ranks() const {
  std::vector<RankSlot> r;
  for (int ni = 0; ni < int(nodes.size()); ++ni) {
    int local = 0, gpu_index = 0, cpu_index = 0;
    for (const auto& d : nodes[ni].devices)
      for (int k = 0; k < d.count; ++k) {
        int& index = d.gpu ? gpu_index : cpu_index;
        r.push_back({ni, local++, &d, d.device_name(index++)});
      }
  }
  return r;
}

int ClusterSpec::rank_count() const {
  int n = 0;
  for (const auto& node : nodes) n += node.device_count();
  return n;
}

}  // namespace flashline

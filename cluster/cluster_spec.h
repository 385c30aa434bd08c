#pragma once
// A cluster described once by its user: nodes, their devices and the links between them.
// One rank runs per device; ranks are numbered node by node in file order, which keeps the
// ranks of one stage on one node where they fit (its all-to-all then stays on NVLink).
#include <filesystem>
#include <string>
#include <vector>

#include "cluster/device_catalog.h"

namespace flashline {

struct NodeSpec {
  std::string name;
  std::string host;  // what mpirun reaches the node by; defaults to the name
  int slots = 0;     // MPI process slots; defaults to the number of devices
  int cpus = 0;      // logical CPUs for rank binding; 0 = unknown (no binding)
  std::vector<DeviceSpec> devices;
  int device_count() const;
};

struct LinkSpec {
  double bandwidth = 0;  // bytes/s per rank and direction
  double latency = 0;    // seconds per message
};

// One rank of the cluster: where it runs.
struct RankSlot {
  int node = 0;           // index into ClusterSpec::nodes
  int local = 0;          // rank index within the node
  const DeviceSpec* device = nullptr;
  std::string device_name;  // "cuda:2", "cpu:0"
};

struct ClusterSpec {
  std::string name;
  std::string source;  // file it came from, or "localhost:N"
  std::vector<NodeSpec> nodes;
  LinkSpec intra_node;
  LinkSpec inter_node;
  bool localhost = false;  // the built-in single-machine cluster: ranks oversubscribe CPU cores

  static ClusterSpec load(const std::filesystem::path& path);
  static ClusterSpec parse(const std::string& yaml_text, const std::string& source);
  // N CPU ranks on this machine, sharing its memory and cores.
  static ClusterSpec local_cpu(int ranks);
  // "localhost:N" or a path to a cluster YAML.
  static ClusterSpec from_argument(const std::string& arg);

  std::vector<RankSlot> ranks() const;
  int rank_count() const;
  // Link between two ranks (same node or not).
  const LinkSpec& link(const RankSlot& a, const RankSlot& b) const {
    return a.node == b.node ? intra_node : inter_node;
  }
};

}  // namespace flashline

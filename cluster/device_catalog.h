#pragma once
// Built-in device figures, so a cluster file can say `kind: H100, count: 8` and nothing more.
// Figures are vendor datasheet values (dense, no sparsity) for the SXM parts; a cluster file
// overrides any of them per node.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace flashline {

struct DeviceSpec {
  std::string kind;              // catalog name: H100, H200, B200, cpu, or a user name
  int count = 1;                 // devices of this kind in the node; one rank each
  bool gpu = true;
  double memory = 0;             // bytes per device
  double memory_bandwidth = 0;   // bytes/s per device
  double flops_bf16 = 0;         // dense FLOP/s (bf16/fp32 GEMMs, attention)
  double flops_fp8 = 0;          // dense FLOP/s for FP8 weights
  double flops_fp4 = 0;          // dense FLOP/s for FP4 experts (equal to fp8 where not native)
  int cores = 0;                 // CPU ranks: cores per rank
  double flops_per_core = 0;     // CPU ranks: FLOP/s per core (all formats)

  // "cuda:3" or "cpu:1": the device a rank uses, `index` counting devices of its kind on the node.
  std::string device_name(int index) const;
};

// The catalog entry for `kind` (case-insensitive), or nullopt.
std::optional<DeviceSpec> builtin_device(std::string_view kind);
std::vector<std::string> builtin_device_kinds();

}  // namespace flashline

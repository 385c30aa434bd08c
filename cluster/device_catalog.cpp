#include "cluster/device_catalog.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

namespace flashline {
namespace {

DeviceSpec gpu(const char* kind, double mem, double bw, double bf16, double fp8, double fp4) {
  DeviceSpec d;
  d.kind = kind;
  d.gpu = true;
  d.memory = mem;
  d.memory_bandwidth = bw;
  d.flops_bf16 = bf16;
  d.flops_fp8 = fp8;
  d.flops_fp4 = fp4;
  return d;
}

// One CPU rank: a socket-sized share of a server. AVX-512 FMA at ~2.5 GHz gives ~40 GFLOP/s
// per core in fp32 after the FP8/FP4 decode the CPU kernels do.
DeviceSpec cpu() {
  DeviceSpec d;
  d.kind = "cpu";
  d.gpu = false;
  d.cores = 32;
  d.flops_per_core = 40e9;
  d.memory = 256e9;
  d.memory_bandwidth = 200e9;
  d.flops_bf16 = d.flops_fp8 = d.flops_fp4 = d.cores * d.flops_per_core;
  return d;
}

const std::vector<DeviceSpec>& catalog() {
  static const std::vector<DeviceSpec> c{
      gpu("H100", 80e9, 3.35e12, 989e12, 1979e12, 1979e12),   // no native FP4: experts run at FP8 rate
      gpu("H200", 141e9, 4.8e12, 989e12, 1979e12, 1979e12),
      gpu("B200", 180e9, 8.0e12, 2250e12, 4500e12, 9000e12),
      cpu(),
  };
  return c;
}

std::string lower(std::string_view s) {
  std::string r(s);
  for (char& ch : r) ch = char(std::tolower(static_cast<unsigned char>(ch)));
  return r;
}

}  // namespace

std::string DeviceSpec::device_name(int index) const { return fmt::format("{}:{}", gpu ? "cuda" : "cpu", index); }

std::optional<DeviceSpec> builtin_device(std::string_view kind) {
  for (const auto& d : catalog())
    if (lower(d.kind) == lower(kind)) return d;
  return std::nullopt;
}

std::vector<std::string> builtin_device_kinds() {
  std::vector<std::string> r;
  for (const auto& d : catalog()) r.push_back(d.kind);
  return r;
}

}  // namespace flashline

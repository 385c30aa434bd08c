#include "kernels/cpu/isa.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>

namespace flashline {
namespace {

Isa probe() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  const bool avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
                      __builtin_cpu_supports("avx512bf16") && __builtin_cpu_supports("avx512vbmi") &&
                      __builtin_cpu_supports("gfni");
  if (avx512) return Isa::Avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
#endif
  return Isa::Portable;
}

std::atomic<int>& active() {
  static std::atomic<int> level = [] {
    Isa want = detected_isa();
    if (const char* env = std::getenv("FLASHLINE_ISA"))
      if (auto forced = parse_isa(env)) want = std::min(*forced, detected_isa());
    return int(want);
  }();
  return level;
}

}  // namespace

Isa detected_isa() {
  static const Isa isa = probe();
  return isa;
}

Isa active_isa() { return Isa(active().load(std::memory_order_relaxed)); }

Isa set_isa(Isa isa) {
  const Isa level = std::min(isa, detected_isa());
  active().store(int(level), std::memory_order_relaxed);
  return level;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx512: return "avx512";
    case Isa::Avx2: return "avx2";
    case Isa::Portable: return "portable";
  }
  return "?";
}

std::optional<Isa> parse_isa(std::string_view name) {
  if (name == "avx512") return Isa::Avx512;
  if (name == "avx2") return Isa::Avx2;
  if (name == "portable") return Isa::Portable;
  return std::nullopt;
}

}  // namespace flashline

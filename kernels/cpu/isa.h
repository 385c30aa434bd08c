#pragma once
// Instruction-set level of the vectorised CPU kernels, chosen at run time from the CPU's features.
// The best level the CPU supports is used unless a lower one is forced, by the environment
// variable FLASHLINE_ISA=avx512|avx2|portable (read once, at first use) or by set_isa(), for
// tests and benchmarks. A level above what the CPU supports is never used.
#include <optional>
#include <string_view>

namespace flashline {

enum class Isa { Portable = 0, Avx2 = 1, Avx512 = 2 };

// Best level this CPU runs: Avx512 needs AVX-512 F/BW/DQ/VL with BF16 and VBMI, and GFNI; Avx2
// needs AVX2 and FMA.
Isa detected_isa();
// Level the kernels use now: the forced level clamped to detected_isa().
Isa active_isa();
// Forces a level (clamped to detected_isa()); returns the level now active.
Isa set_isa(Isa isa);
const char* isa_name(Isa isa);
std::optional<Isa> parse_isa(std::string_view name);

}  // namespace flashline

#include "model/dtype.h"

#include <array>
#include <utility>

namespace flashline {
namespace {
constexpr std::array<std::pair<DType, std::string_view>, 10> kNames{{
    {DType::BF16, "BF16"},
    {DType::F16, "F16"},
    {DType::F32, "F32"},
    {DType::F64, "F64"},
    {DType::F8_E4M3, "F8_E4M3"},
    {DType::F8_E8M0, "F8_E8M0"},
    {DType::I8, "I8"},
    {DType::U8, "U8"},
    {DType::I32, "I32"},
    {DType::I64, "I64"},
}};
}  // namespace

std::size_t dtype_size(DType t) {
  switch (t) {
    case DType::F8_E4M3:
    case DType::F8_E8M0:
    case DType::I8:
    case DType::U8:
      return 1;
    case DType::BF16:
    case DType::F16:
      return 2;
    case DType::F32:
    case DType::I32:
      return 4;
    case DType::F64:
    case DType::I64:
      return 8;
  }
  return 0;
}

std::string_view dtype_name(DType t) {
  for (const auto& [d, n] : kNames)
    if (d == t) return n;
  return "?";
}

std::optional<DType> parse_dtype(std::string_view name) {
  for (const auto& [d, n] : kNames)
    if (n == name) return d;
  return std::nullopt;
}

}  // namespace flashline

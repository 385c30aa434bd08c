#pragma once
// Element types of the release checkpoint, named as safetensors names them.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace flashline {

enum class DType { BF16, F16, F32, F64, F8_E4M3, F8_E8M0, I8, U8, I32, I64 };

// Bytes per stored element (an I8 element of an FP4 expert holds two e2m1 codes).
std::size_t dtype_size(DType t);
std::string_view dtype_name(DType t);
std::optional<DType> parse_dtype(std::string_view name);

}  // namespace flashline

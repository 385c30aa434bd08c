#pragma once
// Physical quantities written with units in cluster files and printed in reports.
#include <optional>
#include <string>
#include <string_view>

namespace flashline {

enum class QuantityKind { Bytes, Bandwidth, Flops, Seconds };

// "80GB" (decimal), "80GiB" (binary), "3.35TB/s", "989TFLOPS", "5us"; a bare number is taken
// in base units (bytes, bytes/s, FLOP/s, seconds). nullopt when the text is not such a quantity.
std::optional<double> parse_quantity(std::string_view text, QuantityKind kind);
const char* quantity_units_hint(QuantityKind kind);

// Decimal units, three significant figures: "171 GB", "3.35 TB/s", "1.2 ms".
std::string format_bytes(double bytes);
std::string format_bandwidth(double bytes_per_second);
std::string format_flops(double flops_per_second);
std::string format_seconds(double seconds);

}  // namespace flashline

#include "base/quantity.h"

#include <fmt/format.h>

#include <array>
#include <cctype>
#include <charconv>
#include <cmath>
#include <utility>

namespace flashline {
namespace {

std::string lower(std::string_view s) {
  std::string r;
  for (char c : s)
    if (!std::isspace(static_cast<unsigned char>(c))) r += char(std::tolower(static_cast<unsigned char>(c)));
  return r;
}

// Multiplier of a prefix ("", k, m, g, t, p, ki, mi, gi, ti, pi) or nullopt.
std::optional<double> prefix_scale(std::string_view p) {
  static const std::array<std::pair<std::string_view, double>, 11> table{{{"", 1.0},
                                                                          {"k", 1e3},
                                                                          {"m", 1e6},
                                                                          {"g", 1e9},
                                                                          {"t", 1e12},
                                                                          {"p", 1e15},
                                                                          {"ki", 1024.0},
                                                                          {"mi", 1024.0 * 1024},
                                                                          {"gi", 1024.0 * 1024 * 1024},
                                                                          {"ti", 1024.0 * 1024 * 1024 * 1024},
                                                                          {"pi", 1024.0 * 1024 * 1024 * 1024 * 1024}}};
  for (const auto& [name, scale] : table)
    if (p == name) return scale;
  return std::nullopt;
}

std::string format_si(double v, const char* unit) {
  static const std::array<std::pair<double, const char*>, 6> steps{
      {{1e15, "P"}, {1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}, {1.0, ""}}};
  for (const auto& [scale, prefix] : steps)
    if (std::fabs(v) >= scale) return fmt::format("{:.3g} {}{}", v / scale, prefix, unit);
  return fmt::format("{:.3g} {}", v, unit);
}

}  // namespace

std::optional<double> parse_quantity(std::string_view text, QuantityKind kind) {
  std::string s = lower(text);
  double value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || !std::isfinite(value)) return std::nullopt;
  std::string unit(end, static_cast<const char*>(s.data() + s.size()));
  if (unit.empty()) return value;
  if (kind == QuantityKind::Seconds) {
    static const std::array<std::pair<std::string_view, double>, 4> t{
        {{"s", 1.0}, {"ms", 1e-3}, {"us", 1e-6}, {"ns", 1e-9}}};
    for (const auto& [name, scale] : t)
      if (unit == name) return value * scale;
    return std::nullopt;
  }
  // Bandwidth in bits ("400Gb/s", "400Gbps": a lowercase b) is converted to bytes.
  double bits = 1.0;
  if (kind == QuantityKind::Bandwidth) {
    std::string_view raw(text);
    while (!raw.empty() && std::isspace(static_cast<unsigned char>(raw.back()))) raw.remove_suffix(1);
    if (raw.ends_with("bps") || raw.ends_with("b/s")) bits = 1.0 / 8;
  }
  std::string_view suffix = kind == QuantityKind::Bytes       ? "b"
                            : kind == QuantityKind::Bandwidth ? "b/s"
                                                              : "flops";
  if (kind == QuantityKind::Bandwidth && unit.ends_with("bps")) unit = unit.substr(0, unit.size() - 3) + "b/s";
  if (!unit.ends_with(suffix)) return std::nullopt;
  auto scale = prefix_scale(std::string_view(unit).substr(0, unit.size() - suffix.size()));
  if (!scale) return std::nullopt;
  return value * *scale * bits;
}

const char* quantity_units_hint(QuantityKind kind) {
  switch (kind) {
    case QuantityKind::Bytes: return "a size such as 80GB, 96GiB or a number of bytes";
    case QuantityKind::Bandwidth: return "a bandwidth such as 450GB/s or a number of bytes per second";
    case QuantityKind::Flops: return "a rate such as 989TFLOPS or a number of FLOP/s";
    case QuantityKind::Seconds: return "a time such as 5us, 2ms or a number of seconds";
  }
  return "";
}

std::string format_bytes(double bytes) { return format_si(bytes, "B"); }
std::string format_bandwidth(double bps) { return format_si(bps, "B/s"); }
std::string format_flops(double f) { return format_si(f, "FLOP/s"); }
std::string format_seconds(double s) {
  if (s >= 1.0) return fmt::format("{:.3g} s", s);
  if (s >= 1e-3) return fmt::format("{:.3g} ms", s * 1e3);
  return fmt::format("{:.3g} us", s * 1e6);
}

}  // namespace flashline

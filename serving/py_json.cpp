#include "serving/py_json.h"

#include "base/input_error.h"

#include <fmt/format.h>

#include <charconv>
#include <cmath>
#include <vector>


namespace flashline {

namespace {

// Builds an ordered_json DOM, keeping integer literals beyond 64 bits as their digits.
class PreservingHandler : public nlohmann::json_sax<OrderedJson> {
 public:
  explicit PreservingHandler(OrderedJson& root) : root_(root) {}

  bool null() override { return value(nullptr); }
  bool boolean(bool v) override { return value(v); }
  bool number_integer(number_integer_t v) override { return value(v); }
  bool number_unsigned(number_unsigned_t v) override { return value(v); }
  bool number_float(number_float_t v, const string_t& text) override {
    if (text.find_first_of(".eE") == std::string::npos) {
      // An integer literal that overflowed 64 bits: Python keeps it exact.
      std::string digits = text;
      if (digits.size() > 1 && digits[0] == '-' && digits.find_first_not_of("0", 1) == std::string::npos)
        digits = "0";
      return value(OrderedJson::binary(std::vector<std::uint8_t>(digits.begin(), digits.end()), kBigIntegerSubtype));
    }
    return value(v);
  }
  bool string(string_t& v) override { return value(std::move(v)); }
  bool binary(binary_t&) override { return false; }
  bool start_object(std::size_t) override { return open(OrderedJson::object()); }
  bool key(string_t& k) override {
    key_ = std::move(k);
    return true;
  }
  bool end_object() override {
    stack_.pop_back();
    return true;
  }
  bool start_array(std::size_t) override { return open(OrderedJson::array()); }
  bool end_array() override {
    stack_.pop_back();
    return true;
  }
  bool parse_error(std::size_t position, const std::string&, const nlohmann::detail::exception& e) override {
    error = fmt::format("not valid JSON near byte {}: {}", position, e.what());
    return false;
  }
  std::string error;

 private:
  OrderedJson* place(OrderedJson v) {
    if (stack_.empty()) {
      root_ = std::move(v);
      return &root_;
    }
    OrderedJson& top = *stack_.back();
    if (top.is_array()) {
      top.push_back(std::move(v));
      return &top.back();
    }
    OrderedJson& slot = top[key_];  // an existing key keeps its place, the value is replaced
    slot = std::move(v);
    return &slot;
  }
  // Copying, comparing and dumping a value recurse once per level of nesting: unbounded, a
  // request body of a few hundred kilobytes of '[' overflows the stack and takes the gateway down.
  bool open(OrderedJson v) {
    if (stack_.size() >= kMaxJsonDepth) {
      error = fmt::format("nested deeper than {} levels", kMaxJsonDepth);
      return false;
    }
    stack_.push_back(place(std::move(v)));
    return true;
  }
  bool value(OrderedJson v) {
    place(std::move(v));
    return true;
  }
  OrderedJson& root_;
  std::vector<OrderedJson*> stack_;
  std::string key_;
};

void dump(std::string& out, const OrderedJson& v) {
  switch (v.type()) {
    case OrderedJson::value_t::null:
      out += "null";
      break;
    case OrderedJson::value_t::boolean:
      out += v.get<bool>() ? "true" : "false";
      break;
    case OrderedJson::value_t::number_integer:
      out += std::to_string(v.get<std::int64_t>());
      break;
    case OrderedJson::value_t::number_unsigned:
      out += std::to_string(v.get<std::uint64_t>());
      break;
    case OrderedJson::value_t::number_float:
      out += py_float_repr(v.get<double>());
      break;
    case OrderedJson::value_t::binary: {
      const auto& b = v.get_binary();
      out.append(b.begin(), b.end());
      break;
    }
    case OrderedJson::value_t::string:
      append_py_json_string(out, v.get_ref<const std::string&>());
      break;
    case OrderedJson::value_t::array: {
      out += '[';
      bool first = true;
      for (const auto& e : v) {
        if (!first) out += ", ";
        first = false;
        dump(out, e);
      }
      out += ']';
      break;
    }
    case OrderedJson::value_t::object: {
      out += '{';
      bool first = true;
      for (const auto& [k, e] : v.items()) {
        if (!first) out += ", ";
        first = false;
        append_py_json_string(out, k);
        out += ": ";
        dump(out, e);
      }
      out += '}';
      break;
    }
    case OrderedJson::value_t::discarded:
      break;
  }
}

}  // namespace

bool try_parse_ordered_json(std::string_view text, OrderedJson& out) {
  PreservingHandler handler(out);
  return OrderedJson::sax_parse(text.begin(), text.end(), &handler, OrderedJson::input_format_t::json, true);
}

OrderedJson parse_ordered_json(std::string_view text, std::string_view source) {
  OrderedJson out;
  PreservingHandler handler(out);
  if (!OrderedJson::sax_parse(text.begin(), text.end(), &handler, OrderedJson::input_format_t::json, true))
    throw InputError(fmt::format("{}: {}", source, handler.error.empty() ? "not valid JSON" : handler.error));
  return out;
}

void append_py_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20)
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        else
          out += c;  // everything else, non-ASCII included, is copied as UTF-8
    }
  }
  out += '"';
}

std::string py_json_string(std::string_view s) {
  std::string out;
  append_py_json_string(out, s);
  return out;
}

std::string py_float_repr(double v) {
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  if (std::isnan(v)) return "NaN";
  // Shortest round-trip digits, as d.ddde±x.
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string_view sci(buf, r.ptr - buf);
  std::string out;
  if (sci[0] == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  const auto e = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e))
    if (c != '.') digits += c;
  const int exp10 = std::stoi(std::string(sci.substr(e + 1)));  // value = d.ddd x 10^exp10
  if (exp10 >= -4 && exp10 < 16) {
    if (exp10 < 0) {
      out += "0.";
      out.append(static_cast<std::size_t>(-exp10 - 1), '0');
      out += digits;
    } else if (static_cast<std::size_t>(exp10 + 1) >= digits.size()) {
      out += digits;
      out.append(exp10 + 1 - digits.size(), '0');
      out += ".0";
    } else {
      out += digits.substr(0, exp10 + 1);
      out += '.';
      out += digits.substr(exp10 + 1);
    }
  } else {
    out += digits[0];
    if (digits.size() > 1) {
      out += '.';
      out += digits.substr(1);
    }
    out += fmt::format("e{}{:02d}", exp10 < 0 ? '-' : '+', std::abs(exp10));
  }
  return out;
}

std::string py_json_dumps(const OrderedJson& value) {
  std::string out;
  dump(out, value);
  return out;
}

}  // namespace flashline

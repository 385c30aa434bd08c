#pragma once
// Little helpers to write and read the plain-old-data records of pipeline messages. Readers
// check every length, so a truncated or corrupt message is an error, not a crash.
#include <cstddef>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace flashline {

// The bytes of one message between ranks.
using ByteBuffer = std::vector<std::byte>;

template <typename T>
void put(ByteBuffer& b, const T* p, std::size_t n) {
  static_assert(std::is_trivially_copyable_v<T>);
  const auto* bytes = reinterpret_cast<const std::byte*>(p);
  b.insert(b.end(), bytes, bytes + n * sizeof(T));
}
template <typename T>
void put(ByteBuffer& b, const T& v) {
  put(b, &v, 1);
}
template <typename T>
void put_vector(ByteBuffer& b, const std::vector<T>& v) {
  put(b, uint64_t(v.size()));
  put(b, v.data(), v.size());
}

template <typename T>
void take(const std::byte*& p, const std::byte* end, T* out, std::size_t n) {
  static_assert(std::is_trivially_copyable_v<T>);
  if (std::size_t(end - p) < n * sizeof(T)) throw std::runtime_error("pipeline message truncated");
  // memcpy's pointers must be valid even for 0 bytes, and an empty vector's data() may be null.
  if (n > 0) std::memcpy(out, p, n * sizeof(T));
  p += n * sizeof(T);
}
template <typename T>
T take(const std::byte*& p, const std::byte* end) {
  T v;
  take(p, end, &v, 1);
  return v;
}
template <typename T>
std::vector<T> take_vector(const std::byte*& p, const std::byte* end) {
  const auto n = take<uint64_t>(p, end);
  if (n > uint64_t(end - p) / sizeof(T)) throw std::runtime_error("pipeline message: bad array length");
  std::vector<T> v(n);
  take(p, end, v.data(), n);
  return v;
}

}  // namespace flashline

#include "stages/safetensors_writer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <stdexcept>

#include "model/model_config.h"

namespace flashline {
namespace {

void write_file(const std::filesystem::path& path, const std::string& header,
                const std::vector<std::span<const std::byte>>& blobs) {
  std::string h = header;
  h.append((8 - h.size() % 8) % 8, ' ');
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw InputError(fmt::format("{}: cannot create: {}", path.string(), std::strerror(errno)));
  unsigned char len[8];
  uint64_t n = h.size();
  for (int i = 0; i < 8; ++i) len[i] = static_cast<unsigned char>(n >> (8 * i));  // little-endian
  out.write(reinterpret_cast<const char*>(len), 8);
  out.write(h.data(), std::streamsize(h.size()));
  for (const auto& b : blobs) out.write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
  out.flush();
  if (!out) throw InputError(fmt::format("{}: write failed: {}", path.string(), std::strerror(errno)));
}

}  // namespace

void SafetensorsWriter::add(std::string name, DType dtype, std::vector<int64_t> shape, std::vector<std::byte> data) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  if (uint64_t(n) * dtype_size(dtype) != data.size())
    throw std::invalid_argument(fmt::format("safetensors writer: tensor \"{}\": {} bytes given, shape needs {}", name,
                                            data.size(), uint64_t(n) * dtype_size(dtype)));
  if (std::any_of(tensors_.begin(), tensors_.end(), [&](const Entry& e) { return e.name == name; }))
    throw std::invalid_argument(fmt::format("safetensors writer: tensor \"{}\" added twice", name));
  tensors_.push_back({std::move(name), dtype, std::move(shape), std::move(data)});
}

uint64_t SafetensorsWriter::data_bytes() const {
  uint64_t n = 0;
  for (const auto& t : tensors_) n += t.data.size();
  return n;
}

std::vector<std::string> SafetensorsWriter::names() const {
  std::vector<std::string> out;
  for (const auto& t : tensors_) out.push_back(t.name);
  return out;
}

void SafetensorsWriter::write(const std::filesystem::path& path) const {
  std::vector<const Entry*> order;
  for (const auto& t : tensors_) order.push_back(&t);
  std::sort(order.begin(), order.end(), [](const Entry* a, const Entry* b) { return a->name < b->name; });
  nlohmann::json h = nlohmann::json::object();
  std::vector<std::span<const std::byte>> blobs;
  uint64_t off = 0;
  for (const Entry* t : order) {
    h[t->name] = {{"dtype", dtype_name(t->dtype)}, {"shape", t->shape}, {"data_offsets", {off, off + t->data.size()}}};
    blobs.emplace_back(t->data);
    off += t->data.size();
  }
  h["__metadata__"] = {{"format", "pt"}};
  write_file(path, h.dump(), blobs);
}

void SafetensorsWriter::write_raw(const std::filesystem::path& path, const std::string& header,
                                  std::span<const std::byte> data) {
  write_file(path, header, {data});
}

}  // namespace flashline

#include "stages/kv_page_pool.h"

#include <limits>
#include <stdexcept>
#include <string>

namespace flashline {

KvPagePool::KvPagePool(std::size_t budget_bytes, std::size_t page_bytes) : page_bytes_(page_bytes) {
  const std::size_t n = page_bytes == 0 ? 0 : budget_bytes / page_bytes;
  if (n == 0)
    throw std::invalid_argument("KvPagePool: a budget of " + std::to_string(budget_bytes) +
                                " bytes holds no page of " + std::to_string(page_bytes) + " bytes");
  if (n > std::size_t(std::numeric_limits<int32_t>::max()))
    throw std::invalid_argument("KvPagePool: " + std::to_string(n) +
                                " pages do not fit 32-bit page ids");
  total_ = int32_t(n);
  storage_ = std::make_unique_for_overwrite<std::byte[]>(n * page_bytes);
  allocated_.assign(n, 0);
  std::vector<int32_t> ids(n);
  for (int32_t i = 0; i < total_; ++i) ids[i] = i;
  free_ids_ = decltype(free_ids_)(std::greater<int32_t>(), std::move(ids));
}

int32_t KvPagePool::alloc() {
  if (free_ids_.empty()) return -1;
  const int32_t id = free_ids_.top();
  free_ids_.pop();
  allocated_[id] = 1;
  ++used_;
  return id;
}

void KvPagePool::free(int32_t id) {
  check_allocated(id, "free");
  allocated_[id] = 0;
  --used_;
  free_ids_.push(id);
}

void KvPagePool::check_allocated(int32_t id, const char* what) const {
  if (id < 0 || id >= total_)
    throw std::logic_error(std::string("KvPagePool::") + what + ": page id " + std::to_string(id) +
                           " out of range [0, " + std::to_string(total_) + ")");
  if (!allocated_[id])
    throw std::logic_error(std::string("KvPagePool::") + what + ": page " + std::to_string(id) +
                           " is not allocated");
}

std::byte* KvPagePool::page(int32_t id) {
  check_allocated(id, "page");
  return storage_.get() + std::size_t(id) * page_bytes_;
}

const std::byte* KvPagePool::page(int32_t id) const {
  check_allocated(id, "page");
  return storage_.get() + std::size_t(id) * page_bytes_;
}

}  // namespace flashline

#pragma once
// A per-rank pool of fixed-size pages that holds the KV state of every request on the rank.
// One allocation sized from a byte budget; pages are handed out lowest free id first, so two
// ranks that run the same sequence of allocations and frees get the same page ids.
// Not thread-safe: the engine thread of a rank is its only user.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <vector>

namespace flashline {

class KvPagePool {
 public:
  // floor(budget_bytes / page_bytes) pages; std::invalid_argument if that is zero.
  KvPagePool(std::size_t budget_bytes, std::size_t page_bytes);

  // Lowest free page id, or -1 when every page is in use (exhaustion is not an error here:
  // the scheduler decides what to do about it).
  int32_t alloc();
  // std::logic_error for an id out of range or a page that is not allocated.
  void free(int32_t id);
  // Start of an allocated page; std::logic_error for an id that is not allocated.
  std::byte* page(int32_t id);
  const std::byte* page(int32_t id) const;

  int32_t used() const { return used_; }
  int32_t total() const { return total_; }
  int32_t free_pages() const { return total_ - used_; }
  std::size_t page_bytes() const { return page_bytes_; }

 private:
  void check_allocated(int32_t id, const char* what) const;

  std::size_t page_bytes_;
  int32_t total_ = 0, used_ = 0;
  // Left uninitialised: the OS maps the memory lazily, so a large budget costs nothing until
  // pages are written.
  std::unique_ptr<std::byte[]> storage_;
  std::vector<uint8_t> allocated_;
  std::priority_queue<int32_t, std::vector<int32_t>, std::greater<int32_t>> free_ids_;
};

}  // namespace flashline

#include "stages/paged_rows.h"

#include <stdexcept>
#include <string>
#include <utility>

namespace flashline {

int PagedRows::pages_for(int n_records, std::size_t record_bytes, std::size_t page_bytes) {
  const std::size_t per_page = record_bytes == 0 ? 0 : page_bytes / record_bytes;
  if (per_page == 0)
    throw std::invalid_argument("PagedRows: a record of " + std::to_string(record_bytes) +
                                " bytes does not fit a page of " + std::to_string(page_bytes) +
                                " bytes");
  if (n_records <= 0) return 0;
  return int((std::size_t(n_records) + per_page - 1) / per_page);
}

PagedRows::PagedRows(KvPagePool& pool, const KvRecordCodec& codec)
    : pool_(&pool), codec_(&codec), record_bytes_(codec.record_bytes()) {
  pages_for(1, record_bytes_, pool.page_bytes());  // throws if a record does not fit a page
  records_per_page_ = int(pool.page_bytes() / record_bytes_);
}

PagedRows::PagedRows(PagedRows&& other) noexcept
    : pool_(other.pool_),
      codec_(other.codec_),
      record_bytes_(other.record_bytes_),
      records_per_page_(other.records_per_page_),
      size_(std::exchange(other.size_, 0)),
      pages_(std::move(other.pages_)) {
  other.pages_.clear();
}

PagedRows& PagedRows::operator=(PagedRows&& other) noexcept {
  if (this != &other) {
    release();
    pool_ = other.pool_;
    codec_ = other.codec_;
    record_bytes_ = other.record_bytes_;
    records_per_page_ = other.records_per_page_;
    size_ = std::exchange(other.size_, 0);
    pages_ = std::move(other.pages_);
    other.pages_.clear();
  }
  return *this;
}

bool PagedRows::reserve(int n) {
  if (!pool_) throw std::logic_error("PagedRows: used before being given a pool and a codec");
  const int need = pages_for(n, record_bytes_, pool_->page_bytes()) - pages();
  if (need <= 0) return true;
  if (pool_->free_pages() < need) return false;
  for (int k = 0; k < need; ++k) pages_.push_back(pool_->alloc());
  return true;
}

void PagedRows::append(const float* row) {
  if (size_ == capacity() && !reserve(size_ + 1)) throw std::runtime_error("KV pages exhausted");
  codec_->encode(row, slot(size_));
  ++size_;
}

std::byte* PagedRows::slot(int i) const {
  return pool_->page(pages_[i / records_per_page_]) +
         std::size_t(i % records_per_page_) * record_bytes_;
}

std::byte* PagedRows::record(int i) const {
  if (i < 0 || i >= size_)
    throw std::out_of_range("PagedRows: record " + std::to_string(i) + " of " +
                            std::to_string(size_));
  return slot(i);
}

void PagedRows::set(int i, const float* row) { codec_->encode(row, record(i)); }

void PagedRows::get(int i, float* row) const { codec_->decode(record(i), row); }

void PagedRows::truncate(int n) {
  if (n < 0 || n > size_)
    throw std::out_of_range("PagedRows: truncate to " + std::to_string(n) + " of " +
                            std::to_string(size_));
  size_ = n;
  const int keep = n == 0 ? 0 : pages_for(n, record_bytes_, pool_->page_bytes());
  while (pages() > keep) {
    pool_->free(pages_.back());
    pages_.pop_back();
  }
}

void PagedRows::release() {
  if (pool_) truncate(0);
}

}  // namespace flashline

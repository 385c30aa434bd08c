#pragma once
// A growable array of fixed-size records of one codec, stored in pages of a KvPagePool. Records
// never straddle pages, so record i lives in page i / records_per_page at a fixed offset.
// Move-only; the destructor returns every page. The pool and the codec must outlive it.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "stages/kv_page_pool.h"
#include "stages/kv_record_codec.h"

namespace flashline {

class PagedRows {
 public:
  PagedRows() = default;  // empty and unusable until assigned from a constructed one
  // std::invalid_argument if one record does not fit a page.
  PagedRows(KvPagePool& pool, const KvRecordCodec& codec);
  ~PagedRows() { release(); }
  PagedRows(PagedRows&& other) noexcept;
  PagedRows& operator=(PagedRows&& other) noexcept;
  PagedRows(const PagedRows&) = delete;
  PagedRows& operator=(const PagedRows&) = delete;

  // Pages needed for n records; std::invalid_argument if a record does not fit a page.
  static int pages_for(int n_records, std::size_t record_bytes, std::size_t page_bytes);

  // Makes room for n records in total. All or nothing: false, and no page taken, when the
  // pool lacks the pages.
  bool reserve(int n);
  // Appends one record, taking a page if the reserved ones are full; std::runtime_error("KV pages
  // exhausted") when the pool has none.
  void append(const float* row);
  // Overwrites / reads record i (std::out_of_range unless 0 <= i < size()). A set() that throws
  // because the row cannot be encoded leaves record i unspecified.
  void set(int i, const float* row);
  void get(int i, float* row) const;
  // Keeps the first n records (n <= size()) and returns the pages they do not need, reserved
  // ones included (speculative rollback).
  void truncate(int n);
  // Drops every record and returns every page.
  void release();

  int size() const { return size_; }
  int capacity() const { return int(pages_.size()) * records_per_page_; }
  int pages() const { return int(pages_.size()); }
  int records_per_page() const { return records_per_page_; }
  const KvRecordCodec* codec() const { return codec_; }

 private:
  std::byte* slot(int i) const;    // any reserved slot
  std::byte* record(int i) const;  // an existing record, bounds-checked

  KvPagePool* pool_ = nullptr;
  const KvRecordCodec* codec_ = nullptr;
  std::size_t record_bytes_ = 0;
  int records_per_page_ = 0;
  int size_ = 0;
  std::vector<int32_t> pages_;
};

}  // namespace flashline

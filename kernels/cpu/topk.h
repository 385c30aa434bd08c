#pragma once
#include <cstdint>
#include <vector>

namespace flashline {

// Indices of the k largest values, by value descending, equal values by ascending index
// (-inf values rank last, still in index order). k is clamped to n.
std::vector<int32_t> topk_desc(const float* v, int n, int k);

}  // namespace flashline

#include "kernels/cpu/topk.h"

#include <algorithm>
#include <numeric>

namespace flashline {

std::vector<int32_t> topk_desc(const float* v, int n, int k) {
  k = std::max(0, std::min(k, n));
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [v](int32_t a, int32_t b) { return v[a] > v[b] || (v[a] == v[b] && a < b); });
  order.resize(k);
  return order;
}

}  // namespace flashline

#pragma once
// A one-head sparse index written out by hand for the tests: ranges and gathered columns per
// 64-row block, checked by validate_index.
#include <cstdint>
#include <utility>
#include <vector>

#include "kernels/sparse/coverage.h"
#include "kernels/sparse/sparse_index.h"

namespace hc::kernels {

inline SparseIndex hand_index(int64_t n, const std::vector<std::vector<std::pair<int32_t, int32_t>>>& ranges,
                              const std::vector<std::vector<int32_t>>& cols) {
  SparseIndex index;
  index.n_heads = 1;
  index.n_tokens = n;
  index.range_offsets = {0};
  index.col_offsets = {0};
  for (size_t rb = 0; rb < ranges.size(); ++rb) {
    for (auto [b, e] : ranges[rb]) index.range_begin.push_back(b), index.range_end.push_back(e);
    for (int32_t c : cols[rb]) index.cols.push_back(c);
    index.range_offsets.push_back(int32_t(index.range_begin.size()));
    index.col_offsets.push_back(int32_t(index.cols.size()));
  }
  validate_index(index.view());
  return index;
}

}  // namespace hc::kernels

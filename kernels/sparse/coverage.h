#pragma once
// What an index covers, row by row: the set C_h(i) the kernels compute (DESIGN.md).
//   C_h(i) = { j : j in a range or gathered column of slot (h, i / 64), j <= i, and the head's
//              band admits it (band_local[h] == 0 or j < band_sink[h] or i - j < band_local[h]) }
// Host pointers only. Used by the tests, the recall computations and the cost accounting.
#include <cstdint>
#include <vector>

#include "kernels/sparse/sparse_index.h"

namespace hc::kernels {

// Whether key j is in C_head(i).
bool covered(const SparseIndexView& index, int64_t head, int64_t i, int64_t j);

// C_head(i), ascending, written into `keys` (cleared first).
void covered_keys(const SparseIndexView& index, int64_t head, int64_t i, std::vector<int32_t>& keys);

// sum_i |C_head(i)|: the exact (per-row) pair count, as opposed to kernel_pair_count (cost.h).
int64_t covered_pair_count(const SparseIndexView& index, int64_t head);

// Throws hc::InputError("sparse index", ...) unless the structure holds: offsets monotone and
// in bounds, ranges ascending, merged (non-touching), inside [0, r1 + 1), non-empty; columns
// ascending, <= r1, outside the slot's ranges; band values >= 0.
void validate_index(const SparseIndexView& index);

}  // namespace hc::kernels

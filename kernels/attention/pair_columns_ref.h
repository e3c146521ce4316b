#pragma once
// The gathered columns of one Hopper CTA (hopper_forward.cuh): a CTA computes row blocks 2t and
// 2t + 1 of a head and loads each gathered key once for both. The pass merges the two blocks'
// ascending column lists of the sparse index into one ascending list of entries
//   entry = key << 2 | 1 (block 2t computes it) | 2 (block 2t + 1 computes it)
// Columns above a block's last row have no work in it (causality) and are left out; a key left
// with neither bit is dropped. Pair (h, t)'s entries start where slot (h, 2t)'s columns start in
// index.cols (the pair's two lists are adjacent there, so the merge never needs more room).
// Keys must be below 2^29 (n_tokens <= 2^29).
#include <cstdint>
#include <vector>

#include "kernels/sparse/sparse_index.h"

namespace hc::kernels {

constexpr int64_t kMaxPairColumnTokens = int64_t(1) << 29;

// Pairs per head: (n_row_blocks + 1) / 2, the CTAs per head of the index-driven Hopper kernel.
inline int64_t num_row_block_pairs(int64_t n_tokens) { return (num_row_blocks(n_tokens) + 1) / 2; }

struct PairColumnsHost {
  std::vector<int32_t> entries;  // [index.cols.size()], entries of pair p at cols_begin(p), rest unused (0)
  std::vector<int32_t> counts;   // [n_heads * pairs per head]
};

// CPU reference of merge_pair_columns_gpu (pair_columns.h), same layout and values.
PairColumnsHost merge_pair_columns_ref(const SparseIndex& index);

}  // namespace hc::kernels

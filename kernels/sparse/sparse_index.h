#pragma once
// The sparse index: for every (query head, row block of B = 64 rows), the key ranges and the
// gathered columns the attention kernel computes. Dense, A-shape, vertical-slash and block-sparse
// differ only in this data (masks as data). Causality (j <= i) is always applied per row on top.
//
// Layout (CSR over slots; slot = head * n_row_blocks + row_block):
//   range_offsets [n_heads * n_row_blocks + 1]  ranges of slot s are range_offsets[s] .. range_offsets[s+1]-1
//   range_begin   [total_ranges]                first key of a range (inclusive)
//   range_end     [total_ranges]                one past the last key (exclusive)
//   col_offsets   [n_heads * n_row_blocks + 1]  gathered columns of slot s, likewise
//   cols          [total_cols]                  key indices, ascending, disjoint from the slot's ranges
// Within a slot ranges are ascending, non-overlapping and non-touching (merged), and end <= the
// block's last row + 1 (clipped to causality at block level).
//
// Optional per-head band (added for a_shape, whose window is per row and so not block-shaped):
//   band_sink  [n_heads]  (or empty / nullptr: no band on any head)
//   band_local [n_heads]  (likewise)
// When band_local[h] > 0, row i of head h computes key j only if it is in the slot's ranges or
// columns, j <= i, AND (j < band_sink[h] or i - j < band_local[h]). band_local[h] == 0: no band.
// Full rule (also in coverage.h): C_h(i) = {j in ranges/cols of (h, i / 64) : j <= i and band}.
#include <cstdint>
#include <vector>

namespace hc::kernels {

constexpr int kBlock = 64;  // B in DESIGN.md: row block and key block size

inline int64_t num_row_blocks(int64_t n_tokens) { return (n_tokens + kBlock - 1) / kBlock; }

// Non-owning view; pointers are host or device memory depending on who receives it.
struct SparseIndexView {
  int64_t n_heads = 0;
  int64_t n_tokens = 0;
  const int32_t* range_offsets = nullptr;
  const int32_t* range_begin = nullptr;
  const int32_t* range_end = nullptr;
  const int32_t* col_offsets = nullptr;
  const int32_t* cols = nullptr;
  const int32_t* band_sink = nullptr;   // [n_heads] or nullptr
  const int32_t* band_local = nullptr;  // [n_heads] or nullptr
  // Entries of cols (col_offsets' last value), or -1: unknown. The attention launcher then sizes
  // its buffers by col_capacity, or without one reads the count from col_offsets (a copy to the
  // host and a stream synchronisation).
  int64_t total_cols = -1;
  // At least total_cols (the cols buffer's size), or -1: unknown. GPU builders that allocate from
  // a bound instead of reading their totals back leave total_cols unknown and set this.
  int64_t col_capacity = -1;
  // A performance hint, set by builders whose row blocks compute the same key tiles (dense, and
  // a_shape: each block's ranges start where its neighbour's do or one block later; no gathered
  // columns). The Hopper kernel then gives a CTA three row blocks instead of two at d = 64,
  // loading each tile once for all three (hopper_loader.cuh, hopper_consumers; d = 128 takes
  // three for every index). Any value gives the same result.
  bool row_blocks_share_tiles = false;
};

// Owning host index.
struct SparseIndex {
  int64_t n_heads = 0;
  int64_t n_tokens = 0;
  std::vector<int32_t> range_offsets;  // [n_heads * n_row_blocks + 1]
  std::vector<int32_t> range_begin;    // [total_ranges]
  std::vector<int32_t> range_end;      // [total_ranges]
  std::vector<int32_t> col_offsets;    // [n_heads * n_row_blocks + 1]
  std::vector<int32_t> cols;           // [total_cols]
  std::vector<int32_t> band_sink;      // [n_heads] or empty
  std::vector<int32_t> band_local;     // [n_heads] or empty; 0 = no band on that head
  bool row_blocks_share_tiles = false;  // as in SparseIndexView

  SparseIndexView view() const {
    return {n_heads, n_tokens, range_offsets.data(), range_begin.data(), range_end.data(),
            col_offsets.data(), cols.data(),
            band_sink.empty() ? nullptr : band_sink.data(),
            band_local.empty() ? nullptr : band_local.data(), static_cast<int64_t>(cols.size()),
            static_cast<int64_t>(cols.size()), row_blocks_share_tiles};
  }
};

}  // namespace hc::kernels

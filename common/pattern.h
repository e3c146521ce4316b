#pragma once
// The sparse attention patterns, one vocabulary for every part of headcal (grid, atlas, profile,
// search, kernels). The integer values are those stored in the atlas (an HDF5 enum) and read from
// every file format; semantics: docs/DESIGN.md "Pattern semantics".
//
//   pattern          p1          p2
//   dense            (unused 0)  (unused 0)
//   a_shape          sink        local        C(i) = {j <= i : j < sink or i - j < local}
//   vertical_slash   v           s            top-v columns, top-s diagonals (block-shaped coverage)
//   block_sparse     k_blocks    (unused 0)   top-k key blocks per 64-row block
#include <cstdint>

namespace hc {

enum class Pattern : int32_t { dense = 0, a_shape = 1, vertical_slash = 2, block_sparse = 3 };
constexpr int kNumPatterns = 4;

// "dense", "a_shape", "vertical_slash", "block_sparse" ("unknown" for any other value).
inline const char* pattern_name(Pattern pattern) {
  switch (pattern) {
    case Pattern::dense: return "dense";
    case Pattern::a_shape: return "a_shape";
    case Pattern::vertical_slash: return "vertical_slash";
    case Pattern::block_sparse: return "block_sparse";
  }
  return "unknown";
}

// True for the values of Pattern (what a file may hold).
inline bool is_valid_pattern(int32_t value) { return value >= 0 && value < kNumPatterns; }

}  // namespace hc

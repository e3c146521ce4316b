#pragma once
// The gathered columns of one Hopper work tile (IndexLoader, hopper_loader.cuh): a CTA computes the
// `blocks_per_tile` consecutive 64-row blocks bt, bt + 1, ... (bt = blocks_per_tile * t) of a
// head and loads each gathered key once for all of them. The pass merges those blocks' ascending
// column lists of the sparse index into one ascending list of entries
//   entry = key << kTileColumnBits | (bit b set: block bt + b computes the key)
// Columns above a block's last row have no work in it (causality) and are left out; a key left
// with no bit is dropped. Tile (h, t)'s entries start where slot (h, bt)'s columns start in
// index.cols (the tile's lists are adjacent there, so the merge never needs more room).
// Keys must be below 2^(31 - kTileColumnBits) (kMaxTileColumnTokens).
#include <cstdint>
#include <vector>

#include "kernels/sparse/sparse_index.h"

namespace hc::kernels {

constexpr int kTileColumnBits = 3;  // up to 3 blocks per work tile (the Hopper kernel's consumers)
constexpr int kMaxBlocksPerTile = kTileColumnBits;
constexpr int64_t kMaxTileColumnTokens = int64_t(1) << (31 - kTileColumnBits);

// Work tiles per head: the CTAs' row tiles of the index-driven Hopper kernel.
inline int64_t num_work_row_tiles(int64_t n_tokens, int blocks_per_tile) {
  return (num_row_blocks(n_tokens) + blocks_per_tile - 1) / blocks_per_tile;
}

struct TileColumnsHost {
  std::vector<int32_t> entries;  // [index.cols.size()], entries of tile t at cols_begin(t), rest unused (0)
  std::vector<int32_t> counts;   // [n_heads * work tiles per head]
};

// CPU reference of merge_tile_columns_gpu (tile_columns.h), same layout and values.
// blocks_per_tile in 1..kMaxBlocksPerTile.
TileColumnsHost merge_tile_columns_ref(const SparseIndex& index, int blocks_per_tile);

}  // namespace hc::kernels

#pragma once
// GPU pass of the tile-column merge (semantics and layout: tile_columns_ref.h). Run by
// sparse_attention_forward before the Hopper index-driven kernel; public for its tests.
#include <cuda_runtime_api.h>

#include <memory>

#include "kernels/attention/tile_columns_ref.h"

namespace hc::kernels {

struct TileColumnsDevice {
  std::shared_ptr<int32_t> entries;  // [total_cols]
  std::shared_ptr<int32_t> counts;   // [n_heads * work tiles per head]
};

// How the GPU merges: automatic takes the bitmap merge up to kBitmapAutoTokens tokens (a CTA per
// work tile; it takes up to kBitmapMaxTokens), the warp merge beyond (a warp per work tile); the
// tests run both. H100, vertical_slash(3500,100), headcal bench sparse kernel ms (the merge runs
// before the attention kernel), warp merge -> bitmap merge: 0.700 -> 0.634 at 8K, d = 128 (the
// merge alone 115 -> 59 us, ncu) and 0.208 -> 0.183 at 8K, d = 64; but 2.26 -> 2.33 at 32K, d =
// 128 and 8.75 -> 9.48 at 128K: the bitmaps and their scan grow with the tile's keys, the warp
// merge with its columns, and beyond 8K there are enough tiles to keep the SMs busy.
enum class TileColumnsMethod { automatic, bitmap, warp_merge };
constexpr int64_t kBitmapMaxTokens = int64_t(1) << 17;  // 3 bitmaps of 128K keys: 48 KB of shared memory
constexpr int64_t kBitmapAutoTokens = int64_t(1) << 14;

// `index` in device memory; total_cols: its number of columns or more (> 0), the size of the
// entries buffer, of which only the first (number of columns) are written; blocks_per_tile in
// 1..kMaxBlocksPerTile. The buffers come from headcal's stream-ordered pool and are freed in
// `stream` order when dropped.
TileColumnsDevice merge_tile_columns_gpu(const SparseIndexView& index, int blocks_per_tile, int64_t total_cols,
                                         cudaStream_t stream,
                                         TileColumnsMethod method = TileColumnsMethod::automatic);

// The same merge into the caller's buffers: entries [total_cols], counts [n_heads * work tiles
// per head] (num_work_row_tiles(n_tokens, blocks_per_tile)); no allocation.
void merge_tile_columns_into(const SparseIndexView& index, int blocks_per_tile, int64_t total_cols, int32_t* entries,
                             int32_t* counts, cudaStream_t stream,
                             TileColumnsMethod method = TileColumnsMethod::automatic);

}  // namespace hc::kernels

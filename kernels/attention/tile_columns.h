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

// `index` in device memory; total_cols: its number of columns or more (> 0), the size of the
// entries buffer, of which only the first (number of columns) are written; blocks_per_tile in
// 1..kMaxBlocksPerTile. The buffers come from headcal's stream-ordered pool and are freed in
// `stream` order when dropped.
TileColumnsDevice merge_tile_columns_gpu(const SparseIndexView& index, int blocks_per_tile, int64_t total_cols,
                                         cudaStream_t stream);

}  // namespace hc::kernels

// The Hopper kernel's stage walk counted on the host (stage_walk.h).
#include "kernels/attention/stage_walk.h"

#include <algorithm>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/attention/tile_columns_ref.h"
#include "kernels/sparse/cost.h"

namespace hc::kernels {

StageWalk walk_stages(const SparseIndex& index, int blocks_per_tile) {
  if (blocks_per_tile < 1 || blocks_per_tile > kMaxBlocksPerTile)
    throw InputError("walk_stages", "blocks_per_tile " + std::to_string(blocks_per_tile) + " is not in 1.." +
                                        std::to_string(kMaxBlocksPerTile));
  StageWalk w;
  for (int64_t h = 0; h < index.n_heads; ++h) w.pairs += kernel_pair_count(index, h);
  const TileColumnsHost merged = merge_tile_columns_ref(index, blocks_per_tile);
  const int64_t n_blocks = num_row_blocks(index.n_tokens);
  const int64_t n_tiles = num_work_row_tiles(index.n_tokens, blocks_per_tile);
  std::vector<int32_t> starts;  // first keys of the work tile's consecutive-key tiles
  const SparseIndexView view = index.view();
  for (int64_t h = 0; h < index.n_heads; ++h) {
    for (int64_t t = 0; t < n_tiles; ++t) {
      starts.clear();
      const int64_t block0 = t * blocks_per_tile;
      int64_t rows[kMaxBlocksPerTile] = {};
      for (int b = 0; b < blocks_per_tile && block0 + b < n_blocks; ++b) {
        const int64_t r0 = (block0 + b) * kBlock;
        rows[b] = std::min<int64_t>(r0 + kBlock, index.n_tokens) - r0;
        for_each_range_tile(view, h, block0 + b, [&](int64_t key, int64_t tile_end) {
          ++w.block_stages;
          w.stage_pairs += rows[b] * kBlock;
          if (tile_end - key < kBlock) ++w.short_stages;
          starts.push_back(static_cast<int32_t>(key));
        });
      }
      std::sort(starts.begin(), starts.end());
      w.loaded_stages += std::unique(starts.begin(), starts.end()) - starts.begin();
      // Gathered: entries of this work tile, kBlock per stage, each block computing a stage it
      // has an entry in.
      const int32_t count = merged.counts[h * n_tiles + t];
      const int32_t begin = index.col_offsets[h * n_blocks + block0];
      for (int32_t s = 0; s < count; s += kBlock) {
        int bits = 0;
        for (int32_t e = s; e < std::min(count, s + kBlock); ++e)
          bits |= merged.entries[begin + e] & ((1 << kTileColumnBits) - 1);
        ++w.loaded_stages;
        ++w.gathered_stages;
        for (int b = 0; b < blocks_per_tile; ++b)
          if ((bits >> b) & 1) {
            ++w.block_stages;
            ++w.gathered_block_stages;
            w.stage_pairs += rows[b] * kBlock;
          }
      }
    }
  }
  return w;
}

}  // namespace hc::kernels

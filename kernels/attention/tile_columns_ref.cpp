// CPU reference of the tile-column merge (tile_columns_ref.h): a plain sort of the blocks' lists.
#include "kernels/attention/tile_columns_ref.h"

#include <algorithm>
#include <string>
#include <utility>

#include "common/error.h"

namespace hc::kernels {

TileColumnsHost merge_tile_columns_ref(const SparseIndex& index, int blocks_per_tile) {
  if (blocks_per_tile < 1 || blocks_per_tile > kMaxBlocksPerTile)
    throw InputError("merge_tile_columns_ref", "blocks_per_tile " + std::to_string(blocks_per_tile) +
                                                   " is not in 1.." + std::to_string(kMaxBlocksPerTile));
  const int64_t n_blocks = num_row_blocks(index.n_tokens);
  const int64_t n_tiles = num_work_row_tiles(index.n_tokens, blocks_per_tile);
  TileColumnsHost out;
  out.entries.assign(index.cols.size(), 0);
  out.counts.assign(static_cast<size_t>(index.n_heads * n_tiles), 0);
  for (int64_t h = 0; h < index.n_heads; ++h) {
    for (int64_t t = 0; t < n_tiles; ++t) {
      const int64_t block0 = t * blocks_per_tile;
      const int64_t slot0 = h * n_blocks + block0;
      std::vector<std::pair<int32_t, int32_t>> keys;  // (key, bit)
      for (int b = 0; b < blocks_per_tile && block0 + b < n_blocks; ++b) {
        const int64_t last_row = std::min<int64_t>((block0 + b) * kBlock + kBlock - 1, index.n_tokens - 1);
        for (int32_t i = index.col_offsets[slot0 + b]; i < index.col_offsets[slot0 + b + 1]; ++i)
          if (index.cols[i] <= last_row) keys.push_back({index.cols[i], 1 << b});
      }
      std::sort(keys.begin(), keys.end());
      int32_t pos = index.col_offsets[slot0];
      const int32_t begin = pos;
      for (size_t i = 0; i < keys.size(); ++i) {
        if (i > 0 && keys[i].first == keys[i - 1].first) {
          out.entries[pos - 1] |= keys[i].second;
          continue;
        }
        out.entries[pos++] = keys[i].first << kTileColumnBits | keys[i].second;
      }
      out.counts[h * n_tiles + t] = pos - begin;
    }
  }
  return out;
}

}  // namespace hc::kernels

#pragma once
// Internal to headcal::kernels (not installed): the index-driven launch over a prepared index, for
// the layer planner (kernels/sparse/layer_plan.h), which merges the columns itself into its
// workspace, and the tests' cap on the persistent grid.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/attention/attention.h"

namespace hc::kernels::detail {

// 64-row blocks per work tile of the index-driven Hopper kernel (what merge_tile_columns_gpu
// must be given for the same index).
int sparse_blocks_per_tile(int head_dim, bool row_blocks_share_tiles);

// sparse_attention_forward without its allocations: tile_entries / tile_entry_counts from
// merge_tile_columns_into with sparse_blocks_per_tile (both null when the index has no columns);
// tile_counter: two ints of device memory for the persistent CTAs' work counter, zero before the
// first launch and left zero by every launch (null: allocated per launch). No probe mode.
void sparse_attention_prepared(const AttentionParams& p, const SparseIndexView& index, const int32_t* tile_entries,
                               const int32_t* tile_entry_counts, int* tile_counter, cudaStream_t stream);

// Caps the Hopper kernels' grid at `ctas` CTAs while it lives (0: no cap), so that tests run many
// work tiles through few persistent CTAs. Process-wide.
int persistent_cta_cap();
class ScopedCtaCap {
 public:
  explicit ScopedCtaCap(int ctas);
  ~ScopedCtaCap();
  ScopedCtaCap(const ScopedCtaCap&) = delete;
  ScopedCtaCap& operator=(const ScopedCtaCap&) = delete;

 private:
  int previous_;
};

}  // namespace hc::kernels::detail

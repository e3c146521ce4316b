#pragma once
// How the Hopper index-driven kernel (IndexLoader, hopper_loader.cuh) walks a sparse index,
// counted on the host: the 64-key ring stages its loader fills for each work tile and the stages
// each 64-row block's consumer computes. The kernel's time per pair follows from these counts more
// than from the pairs alone: a stage costs a consumer one QK^T / softmax / PV chain however few of
// its 64 keys are the block's, and a stage loaded for one block only feeds one consumer (the dense
// index's stages feed every block of the work tile). `headcal bench sparse` reports them.
#include <cstdint>

#include "kernels/attention/tile_columns_ref.h"  // kMaxBlocksPerTile, num_work_row_tiles
#include "kernels/sparse/sparse_index.h"

namespace hc::kernels {
namespace detail {

// Consumer warpgroups per CTA, 64 query rows each (one row block of the sparse index). Each
// warpgroup's chain of QK^T, softmax and PV leaves the tensor cores idle between its wgmmas; a
// third warpgroup fills them where the registers allow it (152 per consumer thread: index-driven
// units of one stage at d = 64 and 128; the dense kernel's pipelined units at d = 64 only, d = 128
// needs 224). H100, kernel only:
//   dense, d = 64: 192-row work tiles, as FlashAttention-3's d = 64 shape (headcal bench dense:
//     0.233 -> 0.219 ms at 8K, 3.18 -> 2.84 at 32K, 49.0 -> 45.7 at 128K).
//   index-driven, d = 128: three for every index (a_shape 0.88-0.91x, the dense index
//     0.87-0.89x, block_sparse(100) 0.86-1.02x, vertical_slash 0.88-1.05x, 8K to 128K).
//   index-driven, d = 64: three only when the index says its row blocks share their tiles
//     (SparseIndexView::row_blocks_share_tiles: a_shape 0.88-0.98x). Where a block computes tiles
//     of its own, the CTA's K/V traffic per pair grows with its blocks, at twice d = 128's bytes
//     per FLOP, and H = 9 heads give few work tiles: block_sparse(100) at 128K was 11% slower
//     with three, vertical_slash(3500,100) at 8K 46% (387 work tiles on 132 SMs: SMs active 67%
//     of the kernel's time instead of 93%, ncu).
constexpr int hopper_consumers(int d, bool dense, bool row_blocks_share_tiles) {
  if (dense) return d == 64 ? 3 : 2;
  return d == 128 || row_blocks_share_tiles ? 3 : 2;
}

}  // namespace detail

struct StageWalk {
  int64_t loaded_stages = 0;    // ring stages the loaders fill: consecutive keys + gathered
  int64_t gathered_stages = 0;  // of those, stages of gathered columns (16-byte cp.async, not TMA)
  int64_t block_stages = 0;     // stages computed, summed over the blocks (one chain each)
  int64_t gathered_block_stages = 0;  // of those, gathered stages
  int64_t short_stages = 0;     // of those, consecutive-key stages with fewer than 64 of the block's keys
  int64_t pairs = 0;            // pairs computed at kernel block granularity (cost.h's count)
  int64_t stage_pairs = 0;      // sum over computed stages of the block's rows x 64
};

// The walk of `blocks_per_tile` (1 .. kMaxBlocksPerTile) consecutive 64-row blocks per work tile,
// as the kernel does it: per block, its ranges cut into tiles [b, b + 64), ... (the last one cut
// at the range's end), tiles without work skipped (cost.h, tile_has_work); tiles of several
// blocks that start at the same key are one stage; then the blocks' gathered columns merged
// (tile_columns_ref.h), 64 entries per stage, computed by every block with an entry in it.
// host_index must be in host memory.
StageWalk walk_stages(const SparseIndex& host_index, int blocks_per_tile);

// The walk with the work tiles the kernel gives this index at head_dim (64 or 128).
inline StageWalk walk_stages_as_launched(const SparseIndex& host_index, int head_dim) {
  return walk_stages(host_index, detail::hopper_consumers(head_dim, false, host_index.row_blocks_share_tiles));
}

}  // namespace hc::kernels

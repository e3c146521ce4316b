#pragma once
// The Hopper attention kernel's tile scheduler (internal; see hopper_forward.cuh): which work
// tile (head, row tile) a CTA's loader takes first and next. The consumers learn each tile from
// the ring's "tile begins" stage, so only the loader warpgroup runs the scheduler.
//
// Index-driven CTAs are persistent (one per SM): the first tile is blockIdx.x, the next ones come
// from a counter in global memory (FlashArgs::tile_counter), which the last CTA to finish leaves
// at zero. Dense CTAs take one tile each
// (HopperTraits::kQBuffers says why): the launch gives them no counter. One CTA per work tile
// instead (non-persistent) cost a fixed ~8.5 us per tile on H100 (headcal bench sparse,
// a_shape(64, local) swept over local at 32K and 128K, d = 64 and 128: kernel time = ~8.5 us per
// tile + ~0.75 us (d = 64) or ~1.0 us (d = 128) per 64-key stage): launch, index reads, the first
// loads and the epilogue, none overlapped.
//
// Longest row tiles first; the heads of one row tile are adjacent (dense), or the row tiles of
// one GQA group (index-driven, FlashArgs::kv_group_order), so K/V is shared in L2.
#include "kernels/attention/flash_forward.cuh"  // FlashArgs
#include "kernels/attention/hopper_layout.cuh"  // kLoaderBarrier
#include "kernels/hopper_primitives.cuh"

namespace hc::kernels::detail {

struct WorkTile {
  int head, row_tile;
};

// The work tile w of a launch: a head and a row tile, longest first (n_row_tiles counts row
// tiles of HopperShape::kRows rows). Dense order: the heads of one row tile are adjacent (they
// stream the same keys in step). KV-group order: the tiles running at once share one KV head's
// K/V (the index-driven walk reads scattered tiles, whose reuse across row tiles and heads of a
// group stays in L2 only if the group's K/V is all that is being read).
__device__ __forceinline__ WorkTile work_tile(const FlashArgs& a, int w) {
  WorkTile t;
  if (a.kv_group_order) {
    const int per_group = a.n_row_tiles * a.group;
    const int kv = w / per_group;
    const int in_group = w % per_group;
    t.head = kv * a.group + in_group % a.group;
    t.row_tile = a.n_row_tiles - 1 - in_group / a.group;
  } else {
    t.head = w % a.n_heads;
    t.row_tile = a.n_row_tiles - 1 - w / a.n_heads;
  }
  return t;
}

// Run by the loader warpgroup (thread lt of 128): first(), then per work tile claim() once its
// stages are all issued and handoff() after its end marker. The next tile is claimed only then
// (the consumers still have up to kStages stages to compute, which hides the atomic's latency).
// Claiming it when the tile began left long tiles waiting behind long tiles at the end of the
// launch: the index-driven kernel with a dense index at 8K, d = 64, was 29% slower than one CTA
// per tile (ncu on H100: SMs active 70% of the time instead of 84%).
struct TileScheduler {
  const FlashArgs& a;
  int* slots;  // shared int [2]: thread 0's claim for the warpgroup, alternating per tile
  int lt;      // loader thread
  int n_work;  // work tiles in the launch

  __device__ __forceinline__ TileScheduler(const FlashArgs& args, int* next_work_slots, int loader_thread)
      : a(args), slots(next_work_slots), lt(loader_thread), n_work(args.n_row_tiles * args.n_heads) {}

  __device__ __forceinline__ int first() const { return static_cast<int>(blockIdx.x); }
  __device__ __forceinline__ bool has(int work) const { return work < n_work; }
  __device__ __forceinline__ WorkTile tile(int work) const { return work_tile(a, work); }
  // Thread 0 takes the next tile from the launch's counter (none without one); the result is
  // valid in thread 0 only until handoff().
  __device__ __forceinline__ int claim() const {
    int next_work = n_work;
    if (lt == 0 && a.tile_counter != nullptr) next_work = static_cast<int>(gridDim.x) + atomicAdd(a.tile_counter, 1);
    return next_work;
  }
  // The CTA has made its last claim: the last CTA to get here zeroes the counter for the next
  // launch (every claim is made by then), so a caller's counter needs zeroing only once.
  __device__ __forceinline__ void retire() const {
    if (lt != 0 || a.tile_counter == nullptr) return;
    __threadfence();  // this CTA's claims come before its retirement
    if (atomicAdd(a.tile_counter + 1, 1) == static_cast<int>(gridDim.x) - 1) {
      atomicExch(a.tile_counter, 0);
      atomicExch(a.tile_counter + 1, 0);
    }
  }
  // Thread 0's claim for every loader thread; iter: the work tile's position in the CTA's walk.
  __device__ __forceinline__ int handoff(int iter, int claimed) const {
    if (lt == 0) slots[iter & 1] = claimed;
    named_barrier_sync(kLoaderBarrier, 128);  // next_work written
    return slots[iter & 1];
  }
};

}  // namespace hc::kernels::detail

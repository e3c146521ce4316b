// GPU tile-column merge (tile_columns.h): one warp per (head, work tile) merges the tile's
// kLists ascending column lists 32 keys of each at a time. Each step takes every key of the
// windows up to the smallest of the windows' last keys (so nothing smaller can still come from
// any list). A key in several windows is written once, by the lowest list holding it, with the
// bits of all of them; its union position counts, in every window, the keys below it that are
// written by their own list. Windows equal in every list are taken whole.
#include <climits>
#include <string>

#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/attention/tile_columns.h"
#include "kernels/sparse/device_pool.h"

namespace hc::kernels {
namespace {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kNone = INT_MAX;  // past a list's end (or above its block's last row)

// Number of lanes whose `window` (ascending over lanes) is below x.
__device__ __forceinline__ int count_below(int window, int x) {
  int n = 0;
#pragma unroll
  for (int step = 16; step >= 1; step >>= 1)
    if (__shfl_sync(kFullMask, window, n + step - 1) < x) n += step;
  if (__shfl_sync(kFullMask, window, n) < x) n += 1;  // n == 31 and all 32 below
  return n;
}

// Lanes below `n` (n in 0..32).
__device__ __forceinline__ unsigned lanes_below(int n) { return n >= 32 ? kFullMask : (1u << n) - 1; }

template <int kLists>
__global__ void merge_tile_columns_kernel(const int32_t* __restrict__ col_offsets, const int32_t* __restrict__ cols,
                                          int n_heads, int n_tokens, int n_row_blocks, int n_tiles,
                                          int64_t total_cols, int32_t* __restrict__ entries,
                                          int32_t* __restrict__ counts) {
  const int tile = static_cast<int>((blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5);
  const int lane = threadIdx.x & 31;
  if (tile >= n_heads * n_tiles) return;
  const int head = tile / n_tiles, t = tile % n_tiles;
  const int block0 = kLists * t;
  const int slot0 = head * n_row_blocks + block0;
  int pos[kLists], end[kLists], last[kLists];
  const int begin = __ldg(col_offsets + slot0);
#pragma unroll
  for (int b = 0; b < kLists; ++b) {
    const bool exists = block0 + b < n_row_blocks;
    pos[b] = b == 0 ? begin : end[b - 1];
    end[b] = exists ? __ldg(col_offsets + slot0 + b + 1) : pos[b];
    last[b] = min((block0 + b) * 64 + 63, n_tokens - 1);
  }
  const unsigned below_me = lanes_below(lane);
  int out = begin;
  for (;;) {
    int w[kLists];  // this lane's key of each list's window
    bool any = false;
    int cut = kNone;
#pragma unroll
    for (int b = 0; b < kLists; ++b) {
      w[b] = pos[b] + lane < end[b] ? __ldg(cols + pos[b] + lane) : kNone;
      if (w[b] > last[b]) w[b] = kNone;
      const bool here = __shfl_sync(kFullMask, w[b], 0) != kNone;  // shuffles outside any condition
      any = any || here;
      cut = min(cut, __shfl_sync(kFullMask, w[b], 31));
    }
    if (!any) break;
    // Windows that hold the same keys in every list are taken whole, each key with every
    // block's bit: what the general step below gives them, without its rank searches. The
    // blocks of a tile share most of their columns in vertical-slash indexes (their lists differ
    // only near the blocks' diagonals): vertical_slash(3500,100), H100, ncu, clocks unlocked:
    // 85 -> 63 us at 32K tokens, d = 64; 629 -> 338 us at 128K, d = 128, where what is left is
    // mostly reading the lists (460 MB).
    bool same = true;
#pragma unroll
    for (int b = 1; b < kLists; ++b) same = same && w[b] == w[0];
    if (__all_sync(kFullMask, same)) {
      const bool valid = w[0] != kNone;  // a prefix of the lanes
      const int taken = __popc(__ballot_sync(kFullMask, valid));
      if (valid && int64_t(out) + lane < total_cols) entries[out + lane] = w[0] << kTileColumnBits | ((1 << kLists) - 1);
      out += taken;
#pragma unroll
      for (int b = 0; b < kLists; ++b) pos[b] += taken;
      continue;
    }
    bool in[kLists], owner[kLists];
    int bits[kLists];
    int rank[kLists][kLists];  // rank[b][o]: keys of list o's window below this lane's key of b
    unsigned owned[kLists];
#pragma unroll
    for (int b = 0; b < kLists; ++b) {
      in[b] = w[b] != kNone && w[b] <= cut;
      owner[b] = in[b];
      bits[b] = 1 << b;
#pragma unroll
      for (int o = 0; o < kLists; ++o) {
        if (o == b) continue;
        // A key up to the cut that another list holds is in that list's window (the earlier
        // steps took every key up to their cuts, and the window reaches the cut).
        rank[b][o] = count_below(w[o], w[b]);
        const int at_rank = __shfl_sync(kFullMask, w[o], rank[b][o] & 31);
        const bool there = in[b] && rank[b][o] < 32 && at_rank == w[b];
        if (there) {
          bits[b] |= 1 << o;
          if (o < b) owner[b] = false;
        }
      }
      owned[b] = __ballot_sync(kFullMask, owner[b]);
    }
#pragma unroll
    for (int b = 0; b < kLists; ++b) {
      int64_t at = int64_t(out) + __popc(owned[b] & below_me);
#pragma unroll
      for (int o = 0; o < kLists; ++o)
        if (o != b) at += __popc(owned[o] & lanes_below(rank[b][o]));
      if (owner[b] && at < total_cols) entries[at] = w[b] << kTileColumnBits | bits[b];
    }
#pragma unroll
    for (int b = 0; b < kLists; ++b) {
      out += __popc(owned[b]);
      pos[b] += __popc(__ballot_sync(kFullMask, in[b]));
    }
  }
  if (lane == 0) counts[tile] = out - begin;
}

template <int kLists>
void launch_merge(const SparseIndexView& index, int64_t n_tiles, int64_t total_cols, const TileColumnsDevice& out,
                  cudaStream_t stream) {
  constexpr int kThreads = 256;
  const int64_t warps = index.n_heads * n_tiles;
  const int64_t blocks = (warps * 32 + kThreads - 1) / kThreads;
  merge_tile_columns_kernel<kLists><<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      index.col_offsets, index.cols, static_cast<int>(index.n_heads), static_cast<int>(index.n_tokens),
      static_cast<int>(num_row_blocks(index.n_tokens)), static_cast<int>(n_tiles), total_cols, out.entries.get(),
      out.counts.get());
  HC_CHECK_LAUNCH();
}

}  // namespace

TileColumnsDevice merge_tile_columns_gpu(const SparseIndexView& index, int blocks_per_tile, int64_t total_cols,
                                         cudaStream_t stream) {
  if (index.n_tokens > kMaxTileColumnTokens)
    throw InputError("sparse_attention_forward",
                     "more than " + std::to_string(kMaxTileColumnTokens) + " tokens are not supported");
  if (blocks_per_tile < 1 || blocks_per_tile > kMaxBlocksPerTile)
    throw InputError("merge_tile_columns_gpu", "blocks_per_tile " + std::to_string(blocks_per_tile) +
                                                   " is not in 1.." + std::to_string(kMaxBlocksPerTile));
  if (total_cols <= 0) throw InputError("merge_tile_columns_gpu", "the index has no columns to merge");
  const int64_t n_tiles = num_work_row_tiles(index.n_tokens, blocks_per_tile);
  TileColumnsDevice out;
  out.entries = detail::device_alloc<int32_t>(static_cast<size_t>(total_cols), stream, true);
  out.counts = detail::device_alloc<int32_t>(static_cast<size_t>(index.n_heads * n_tiles), stream, true);
  if (blocks_per_tile == 1) launch_merge<1>(index, n_tiles, total_cols, out, stream);
  else if (blocks_per_tile == 2) launch_merge<2>(index, n_tiles, total_cols, out, stream);
  else launch_merge<3>(index, n_tiles, total_cols, out, stream);
  return out;
}

}  // namespace hc::kernels

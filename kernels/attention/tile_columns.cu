// GPU tile-column merge (tile_columns.h), two ways. Up to kBitmapAutoTokens tokens, a CTA per
// (head, work tile) marks each list's keys in a bitmap of its own in shared memory and writes the
// union in key order from the bitmaps' words (merge_tile_columns_bitmap_kernel). Beyond, one warp
// per (head, work tile) merges the tile's kLists ascending column lists 32 keys of each at a time.
// Each step takes every key of the windows up to the smallest of the windows' last keys (so
// nothing smaller can still come from any list). A key in several windows is written once, by the
// lowest list holding it, with the bits of all of them; its union position counts, in every
// window, the keys below it that are written by their own list. Windows equal in every list are
// taken whole.
#include <algorithm>
#include <climits>
#include <string>

#include "common/cuda_check.h"
#include "kernels/chained_launch.h"
#include "common/error.h"
#include "kernels/attention/tile_columns.h"
#include "kernels/device_primitives.cuh"
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
  detail::chained_kernel_begins();
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

// The bitmap merge. A warp-per-tile merge walks a tile's lists one 32-key window after another,
// a chain of dependent shuffles per window: with few tiles it ran at a few warps per SM
// (vertical_slash(3500,100) at 8K tokens, d = 128: 1376 tiles, 115 us against a 575 us attention
// kernel; ncu on H100). Here each CTA sets its lists' bits (one shared atomic per 32-bit word a
// warp's keys fall in), scans the union's popcounts, and writes every key with its lists' bits.
// Shared memory: kLists bitmaps of the tile's keys 0 .. its last row (48 KB at kBitmapMaxTokens).
constexpr int kBitmapThreads = 256;
template <int kLists>
__global__ void __launch_bounds__(kBitmapThreads) merge_tile_columns_bitmap_kernel(
    const int32_t* __restrict__ col_offsets, const int32_t* __restrict__ cols, int n_tokens, int n_row_blocks,
    int n_tiles, int64_t total_cols, int32_t* __restrict__ entries, int32_t* __restrict__ counts) {
  detail::chained_kernel_begins();
  extern __shared__ uint32_t s_bits[];  // [kLists][words]
  __shared__ int s_warp[33];
  const int tile = blockIdx.x, head = tile / n_tiles, t = tile % n_tiles;
  const int tid = threadIdx.x, lane = tid & 31;
  const int block0 = kLists * t;
  const int slot0 = head * n_row_blocks + block0;
  const int n_blocks = min(kLists, n_row_blocks - block0);
  const int tile_last = min((block0 + n_blocks) * 64 - 1, n_tokens - 1);
  const int words = (tile_last >> 5) + 1;
  for (int i = tid; i < kLists * words; i += kBitmapThreads) s_bits[i] = 0;
  __syncthreads();
  const int begin = __ldg(col_offsets + slot0);
#pragma unroll
  for (int b = 0; b < kLists; ++b) {
    if (b >= n_blocks) break;
    const int last = min((block0 + b) * 64 + 63, n_tokens - 1);
    const int end = __ldg(col_offsets + slot0 + b + 1);
    uint32_t* bits = s_bits + b * words;
    // The lists ascend, so the lanes of one word are adjacent: their bits are OR-ed into the
    // first of them by shuffles, which alone touches the word. Four windows' keys are loaded
    // before their bits are set.
    constexpr int kBatch = 4;
    for (int i0 = __ldg(col_offsets + slot0 + b) + (tid & ~31); i0 < end; i0 += kBatch * kBitmapThreads) {
      int keys[kBatch];
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const int i = i0 + u * kBitmapThreads + lane;
        keys[u] = i < end ? __ldg(cols + i) : INT_MAX;
      }
#pragma unroll
      for (int u = 0; u < kBatch; ++u) {
        const bool valid = keys[u] <= last;
        const int word = valid ? keys[u] >> 5 : -1 - lane;  // invalid lanes: a word of their own
        uint32_t mask = valid ? 1u << (keys[u] & 31) : 0u;
#pragma unroll
        for (int off = 1; off < 32; off <<= 1) {
          const uint32_t m = __shfl_down_sync(kFullMask, mask, off);
          const int w = __shfl_down_sync(kFullMask, word, off);
          if (lane + off < 32 && w == word) mask |= m;
        }
        const int word_before = __shfl_up_sync(kFullMask, word, 1);
        if (valid && (lane == 0 || word_before != word)) atomicOr(bits + word, mask);
      }
    }
  }
  __syncthreads();
  // Each thread's contiguous run of words, its keys' place by a scan of the union's popcounts.
  const int chunk = (words + kBitmapThreads - 1) / kBitmapThreads;
  const int w_lo = min(words, tid * chunk), w_hi = min(words, w_lo + chunk);
  int mine = 0;
  for (int w = w_lo; w < w_hi; ++w) {
    uint32_t any = 0;
#pragma unroll
    for (int b = 0; b < kLists; ++b) any |= s_bits[b * words + w];
    mine += __popc(any);
  }
  int total = 0;
  int64_t at = int64_t(begin) + detail::block_exclusive_scan<kBitmapThreads>(mine, s_warp, &total);
  for (int w = w_lo; w < w_hi; ++w) {
    uint32_t list_bits[kLists], any = 0;
#pragma unroll
    for (int b = 0; b < kLists; ++b) {
      list_bits[b] = s_bits[b * words + w];
      any |= list_bits[b];
    }
    while (any != 0) {
      const int bit = __ffs(any) - 1;
      any &= any - 1;
      int members = 0;
#pragma unroll
      for (int b = 0; b < kLists; ++b) members |= ((list_bits[b] >> bit) & 1) << b;
      if (at < total_cols) entries[at] = (w * 32 + bit) << kTileColumnBits | members;
      ++at;
    }
  }
  if (tid == 0) counts[tile] = total;
}

template <int kLists>
void launch_merge(const SparseIndexView& index, int64_t n_tiles, int64_t total_cols, int32_t* entries, int32_t* counts,
                  bool bitmap, cudaStream_t stream) {
  constexpr int kThreads = 256;
  if (bitmap) {
    const int words = static_cast<int>((index.n_tokens - 1) / 32 + 1);
    const size_t smem = size_t(kLists) * words * sizeof(uint32_t);
    auto kernel = merge_tile_columns_bitmap_kernel<kLists>;
    HC_CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
    detail::launch_chained(kernel, static_cast<unsigned>(index.n_heads * n_tiles), kBitmapThreads, smem, stream, 0,
                           index.col_offsets, index.cols, static_cast<int>(index.n_tokens),
                           static_cast<int>(num_row_blocks(index.n_tokens)), static_cast<int>(n_tiles), total_cols,
                           entries, counts);
    return;
  }
  const int64_t warps = index.n_heads * n_tiles;
  const int64_t blocks = (warps * 32 + kThreads - 1) / kThreads;
  detail::launch_chained(merge_tile_columns_kernel<kLists>, static_cast<unsigned>(blocks), kThreads, 0, stream, 0,
                         index.col_offsets, index.cols, static_cast<int>(index.n_heads),
                         static_cast<int>(index.n_tokens), static_cast<int>(num_row_blocks(index.n_tokens)),
                         static_cast<int>(n_tiles), total_cols, entries, counts);
}

}  // namespace

void merge_tile_columns_into(const SparseIndexView& index, int blocks_per_tile, int64_t total_cols, int32_t* entries,
                             int32_t* counts, cudaStream_t stream, TileColumnsMethod method) {
  if (index.n_tokens > kMaxTileColumnTokens)
    throw InputError("sparse_attention_forward",
                     "more than " + std::to_string(kMaxTileColumnTokens) + " tokens are not supported");
  if (blocks_per_tile < 1 || blocks_per_tile > kMaxBlocksPerTile)
    throw InputError("merge_tile_columns_gpu", "blocks_per_tile " + std::to_string(blocks_per_tile) +
                                                   " is not in 1.." + std::to_string(kMaxBlocksPerTile));
  if (total_cols <= 0) throw InputError("merge_tile_columns_gpu", "the index has no columns to merge");
  if (method == TileColumnsMethod::bitmap && index.n_tokens > kBitmapMaxTokens)
    throw InputError("merge_tile_columns_gpu", "the bitmap merge takes up to " + std::to_string(kBitmapMaxTokens) +
                                                   " tokens, got " + std::to_string(index.n_tokens));
  const bool bitmap = method == TileColumnsMethod::bitmap ||
                      (method == TileColumnsMethod::automatic && index.n_tokens <= kBitmapAutoTokens);
  const int64_t n_tiles = num_work_row_tiles(index.n_tokens, blocks_per_tile);
  if (blocks_per_tile == 1) launch_merge<1>(index, n_tiles, total_cols, entries, counts, bitmap, stream);
  else if (blocks_per_tile == 2) launch_merge<2>(index, n_tiles, total_cols, entries, counts, bitmap, stream);
  else launch_merge<3>(index, n_tiles, total_cols, entries, counts, bitmap, stream);
}

TileColumnsDevice merge_tile_columns_gpu(const SparseIndexView& index, int blocks_per_tile, int64_t total_cols,
                                         cudaStream_t stream, TileColumnsMethod method) {
  TileColumnsDevice out;
  const int64_t n_tiles = num_work_row_tiles(index.n_tokens, std::max(1, blocks_per_tile));
  out.entries = detail::device_alloc<int32_t>(static_cast<size_t>(std::max<int64_t>(total_cols, 1)), stream, true);
  out.counts = detail::device_alloc<int32_t>(static_cast<size_t>(index.n_heads * n_tiles), stream, true);
  merge_tile_columns_into(index, blocks_per_tile, total_cols, out.entries.get(), out.counts.get(), stream, method);
  return out;
}

}  // namespace hc::kernels

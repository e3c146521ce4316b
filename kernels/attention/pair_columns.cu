// GPU pair-column merge (pair_columns.h): one warp per (head, row-block pair) merges the two
// ascending column lists 32 + 32 keys at a time. Each step takes every key of both windows up to
// the smaller of the two windows' last keys (so nothing smaller can still come from either list),
// ranks each key in the other window by a binary search over lanes, and writes it at its union
// position; a key in both windows is written once, from the first list, with both bits.
#include <climits>

#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/attention/pair_columns.h"
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

__global__ void merge_pair_columns_kernel(const int32_t* __restrict__ col_offsets, const int32_t* __restrict__ cols,
                                          int n_heads, int n_tokens, int n_row_blocks, int n_pairs,
                                          int64_t total_cols, int32_t* __restrict__ entries,
                                          int32_t* __restrict__ counts) {
  const int pair = static_cast<int>((blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x) >> 5);
  const int lane = threadIdx.x & 31;
  if (pair >= n_heads * n_pairs) return;
  const int head = pair / n_pairs, t = pair % n_pairs;
  const int slot0 = head * n_row_blocks + 2 * t;
  const bool has_second = 2 * t + 1 < n_row_blocks;
  const int a_end = __ldg(col_offsets + slot0 + 1);
  const int b_end = has_second ? __ldg(col_offsets + slot0 + 2) : a_end;
  const int last_a = min(2 * t * 64 + 63, n_tokens - 1);
  const int last_b = min(2 * t * 64 + 127, n_tokens - 1);
  const unsigned below_me = (1u << lane) - 1;
  const int begin = __ldg(col_offsets + slot0);
  int ia = begin, ib = a_end, out = begin;
  for (;;) {
    int a = ia + lane < a_end ? __ldg(cols + ia + lane) : kNone;
    int b = ib + lane < b_end ? __ldg(cols + ib + lane) : kNone;
    if (a > last_a) a = kNone;
    if (b > last_b) b = kNone;
    if (__shfl_sync(kFullMask, a, 0) == kNone && __shfl_sync(kFullMask, b, 0) == kNone) break;
    const int cut = min(__shfl_sync(kFullMask, a, 31), __shfl_sync(kFullMask, b, 31));
    const bool a_in = a != kNone && a <= cut;
    const bool b_in = b != kNone && b <= cut;
    const int a_rank = count_below(b, a);  // keys of b's window below a (all of them taken)
    const int b_rank = count_below(a, b);
    const int b_at = __shfl_sync(kFullMask, b, a_rank & 31);
    const int a_at = __shfl_sync(kFullMask, a, b_rank & 31);
    const bool a_dup = a_in && a_rank < 32 && b_at == a;
    const bool b_dup = b_in && b_rank < 32 && a_at == b;
    const unsigned a_taken = __ballot_sync(kFullMask, a_in);
    const unsigned b_taken = __ballot_sync(kFullMask, b_in);
    const unsigned a_dups = __ballot_sync(kFullMask, a_dup);
    const unsigned b_new = __ballot_sync(kFullMask, b_in && !b_dup);
    // Union position: keys of the other list below this one, counting each duplicate once.
    if (a_in) {
      const int64_t at = int64_t(out) + lane + a_rank - __popc(a_dups & below_me);
      if (at < total_cols) entries[at] = a << 2 | 1 | (a_dup ? 2 : 0);
    }
    if (b_in && !b_dup) {
      const int64_t at = int64_t(out) + b_rank + __popc(b_new & below_me);
      if (at < total_cols) entries[at] = b << 2 | 2;
    }
    out += __popc(a_taken) + __popc(b_new);
    ia += __popc(a_taken);
    ib += __popc(b_taken);
  }
  if (lane == 0) counts[pair] = out - begin;
}

}  // namespace

PairColumnsDevice merge_pair_columns_gpu(const SparseIndexView& index, int64_t total_cols, cudaStream_t stream) {
  if (index.n_tokens > kMaxPairColumnTokens)
    throw InputError("sparse_attention_forward", "more than 2^29 tokens are not supported");
  if (total_cols <= 0) throw InputError("merge_pair_columns_gpu", "the index has no columns to merge");
  const int64_t n_pairs = num_row_block_pairs(index.n_tokens);
  const int64_t warps = index.n_heads * n_pairs;
  PairColumnsDevice out;
  out.entries = detail::device_alloc<int32_t>(static_cast<size_t>(total_cols), stream, true);
  out.counts = detail::device_alloc<int32_t>(static_cast<size_t>(warps), stream, true);
  constexpr int kThreads = 256;
  const int64_t blocks = (warps * 32 + kThreads - 1) / kThreads;
  merge_pair_columns_kernel<<<static_cast<unsigned>(blocks), kThreads, 0, stream>>>(
      index.col_offsets, index.cols, static_cast<int>(index.n_heads), static_cast<int>(index.n_tokens),
      static_cast<int>(num_row_blocks(index.n_tokens)), static_cast<int>(n_pairs), total_cols, out.entries.get(),
      out.counts.get());
  HC_CHECK_LAUNCH();
  return out;
}

}  // namespace hc::kernels

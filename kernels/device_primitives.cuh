#pragma once
// Device primitives shared by the attention kernels, the index builders and the tile-column
// merge: warp and block prefix sums, binary search.
#include <cstdint>

namespace hc::kernels::detail {

// Inclusive sum of v over this lane and the ones below it (called by whole warps).
template <typename I>
__device__ __forceinline__ I warp_inclusive_sum(I v) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int off = 1; off < 32; off <<= 1) {
    const I y = __shfl_up_sync(0xffffffffu, v, off);
    if (lane >= off) v += y;
  }
  return v;
}

// Exclusive scan of a block's values; returns this thread's prefix, total in *total.
template <int kThreads, typename I = int>
__device__ I block_exclusive_scan(I v, I* s_warp, I* total) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const I inc = warp_inclusive_sum(v);
  if (lane == 31) s_warp[warp] = inc;
  __syncthreads();
  if (warp == 0) {
    const I w = lane < kThreads / 32 ? s_warp[lane] : 0;
    const I winc = warp_inclusive_sum(w);
    if (lane < kThreads / 32) s_warp[lane] = winc - w;
    if (lane == kThreads / 32 - 1) s_warp[32] = winc;
  }
  __syncthreads();
  const I result = s_warp[warp] + inc - v;
  *total = s_warp[32];
  __syncthreads();
  return result;
}

// Number of entries <= x in the ascending a[0 .. n) (binary search; a read-only while the
// kernel runs).
__device__ __forceinline__ int count_at_most(const int32_t* a, int n, int x) {
  int lo = 0, hi = n;
  while (lo < hi) {
    const int mid = (lo + hi) >> 1;
    if (__ldg(a + mid) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

}  // namespace hc::kernels::detail

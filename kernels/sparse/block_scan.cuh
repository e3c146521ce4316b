#pragma once
// Warp and block prefix sums shared by the index builders and the tile-column merge.
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

}  // namespace hc::kernels::detail

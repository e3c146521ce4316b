#pragma once
// Radix top-k building blocks shared by the vertical-slash selection (index_select.cu) and the
// block-sparse selection (block_estimate.cu): forced entries first, then score descending, ties
// toward the lower index (index_ref.h's rule). Internal to headcal::kernels.
#include <cstdint>

#include "kernels/device_primitives.cuh"

namespace hc::kernels::detail {

// Order-preserving map of a float to uint32 (larger float, larger key); NaN ranks as -inf, as
// on the CPU. Forced entries get 0xffffffff, above every float.
__device__ __forceinline__ uint32_t order_key(float f) {
  if (f != f) f = -__builtin_huge_valf();
  const uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// Adds the active lanes' bins to a shared histogram, one atomic per distinct bin of the warp
// (called by whole warps). The candidates of a radix pass mostly share their leading bits, and a
// per-lane atomicAdd on one bin serialised 1024 threads: the vertical-slash selection took
// 237 us at 128K tokens, H = 32, 184 us with this (ncu on H100).
__device__ __forceinline__ void histogram_add(int* hist, uint32_t bin, bool active) {
  const unsigned lanes = __ballot_sync(0xffffffffu, active);
  if (!active) return;
  const unsigned same = __match_any_sync(lanes, bin);
  if ((threadIdx.x & 31) == __ffs(same) - 1) atomicAdd(&hist[bin], __popc(same));
}

// The digit of a 256-bin histogram (counts of the candidates' current 8 bits) that holds the
// remaining-th largest candidate: s_sel[0] = digit, s_sel[1] = its rank within the digit. Run by
// warp 0: lane l sums digits 255 - 8l .. 248 - 8l, a warp scan finds the lane where the count
// from the top reaches `remaining`, and that lane walks its 8 digits (one thread walking 256
// digits four times per selection dominated the block-sparse builder: 4.3 ms at 128K tokens,
// H = 32).
__device__ __forceinline__ void find_digit(const int* hist, int remaining, int* s_sel) {
  const int lane = threadIdx.x & 31;
  int sum = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) sum += hist[255 - 8 * lane - j];
  const int inc = warp_inclusive_sum(sum);
  const unsigned reach = __ballot_sync(0xffffffffu, inc >= remaining);
  if (lane == __ffs(reach) - 1) {
    int cum = inc - sum;
    for (int j = 0; j < 8; ++j) {
      const int dgt = 255 - 8 * lane - j;
      if (cum + hist[dgt] >= remaining) {
        s_sel[0] = dgt;
        s_sel[1] = remaining - cum;
        break;
      }
      cum += hist[dgt];
    }
  }
}

// Writes the selected indices of [lo, hi) (this thread's contiguous part): keys above threshold,
// and keys equal to it while fewer than `remaining` equal ones come before. gt_before / eq_before:
// the counts of such keys before lo. out is in index order.
template <class KeyOf>
__device__ void write_selected(int lo, int hi, KeyOf key_of, uint32_t threshold, int remaining, int gt_before,
                               int eq_before, int32_t* out) {
  int pos = gt_before + min(eq_before, remaining);
  for (int x = lo; x < hi; ++x) {
    const uint32_t key = key_of(x);
    if (key > threshold || (key == threshold && eq_before++ < remaining)) out[pos++] = x;
  }
}

// Radix select, 8 bits at a time from the top, over this CTA's keys key_of(c_lo .. c_hi - 1):
// returns the value of the k-th largest key of the whole selection (threshold) and sets
// `remaining` to how many keys equal to it are kept. combined_histogram() is called once the
// CTA's histogram s_hist is complete and returns the histogram of the whole selection (s_hist
// itself for one CTA; the sum over a cluster for select_per_head_kernel).
template <int kThreads, class KeyOf, class Combine>
__device__ uint32_t radix_threshold(int c_lo, int c_hi, int k, KeyOf key_of, int* s_hist, int* s_sel,
                                    Combine combined_histogram, int& remaining) {
  const int tid = threadIdx.x;
  uint32_t prefix = 0, mask = 0;
  remaining = k;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = tid; i < 256; i += kThreads) s_hist[i] = 0;
    __syncthreads();
    for (int base = c_lo + (tid & ~31); base < c_hi; base += kThreads) {  // warp-uniform trips
      const int x = base + (tid & 31);
      const uint32_t key = x < c_hi ? key_of(x) : 0u;
      histogram_add(s_hist, (key >> shift) & 255u, x < c_hi && (key & mask) == prefix);
    }
    const int* hist = combined_histogram();
    if (tid < 32) find_digit(hist, remaining, s_sel);
    __syncthreads();
    prefix |= static_cast<uint32_t>(s_sel[0]) << shift;
    mask |= 255u << shift;
    remaining = s_sel[1];
    __syncthreads();
  }
  return prefix;
}

// Each thread's contiguous part [lo, hi) of this CTA's keys c_lo .. c_hi - 1, and how many keys
// above / equal to the threshold come before it in the CTA (gt_before, eq_before) and in all
// (gt_total, eq_total).
struct ThresholdCounts {
  int lo, hi, gt_before, eq_before, gt_total, eq_total;
};
template <int kThreads, class KeyOf>
__device__ ThresholdCounts count_against_threshold(int c_lo, int c_hi, KeyOf key_of, uint32_t threshold,
                                                   int* s_warp) {
  ThresholdCounts t;
  const int chunk = (c_hi - c_lo + kThreads - 1) / kThreads;
  t.lo = min(c_hi, c_lo + static_cast<int>(threadIdx.x) * chunk);
  t.hi = min(c_hi, t.lo + chunk);
  int n_gt = 0, n_eq = 0;
  for (int x = t.lo; x < t.hi; ++x) {
    const uint32_t key = key_of(x);
    n_gt += key > threshold;
    n_eq += key == threshold;
  }
  t.gt_total = t.eq_total = 0;
  t.gt_before = block_exclusive_scan<kThreads>(n_gt, s_warp, &t.gt_total);
  t.eq_before = block_exclusive_scan<kThreads>(n_eq, s_warp, &t.eq_total);
  return t;
}

// Top-k of one row's keys by one warp (radix select, 8 bits at a time): the indices of the k_eff
// largest keys key_of(0 .. len - 1), ties toward the lower index, ascending into out. s_hist is
// the warp's own 256 ints; s_sel its own 2.
template <class KeyOf>
__device__ void warp_select_top(int len, int k_eff, KeyOf key_of, int* s_hist, int* s_sel, int32_t* out) {
  const int lane = threadIdx.x & 31;
  if (k_eff >= len) {
    for (int x = lane; x < len; x += 32) out[x] = x;
    return;
  }
  uint32_t prefix = 0, mask = 0;
  int remaining = k_eff;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = lane; i < 256; i += 32) s_hist[i] = 0;
    __syncwarp();
    for (int x = lane; x < len; x += 32) {  // (one atomic per distinct bin, as in radix_threshold, was slower here)
      const uint32_t key = key_of(x);
      if ((key & mask) == prefix) atomicAdd(&s_hist[(key >> shift) & 255u], 1);
    }
    __syncwarp();
    find_digit(s_hist, remaining, s_sel);
    __syncwarp();
    prefix |= static_cast<uint32_t>(s_sel[0]) << shift;
    mask |= 255u << shift;
    remaining = s_sel[1];
    __syncwarp();
  }
  // Each lane's contiguous part, its counts above / equal to the threshold, their warp prefixes.
  const int chunk = (len + 31) / 32;
  const int lo = min(len, lane * chunk), hi = min(len, lo + chunk);
  int n_gt = 0, n_eq = 0;
  for (int x = lo; x < hi; ++x) {
    const uint32_t key = key_of(x);
    n_gt += key > prefix;
    n_eq += key == prefix;
  }
  const int gt_inc = warp_inclusive_sum(n_gt), eq_inc = warp_inclusive_sum(n_eq);
  write_selected(lo, hi, key_of, prefix, remaining, gt_inc - n_gt, eq_inc - n_eq, out);
}
}  // namespace hc::kernels::detail

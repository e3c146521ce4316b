#pragma once
// Device primitives shared by the attention kernels, the index builders and the tile-column
// merge: warp and block prefix sums, binary search, shared-memory addresses, cp.async copies,
// log2(e) and the chained-launch waits. The sm_90a ones (mbarriers, TMA, wgmma sequencing) are
// in kernels/hopper_primitives.cuh.
#include <cstdint>

namespace hc::kernels::detail {

// log2(e): the kernels compute exp(x) as exp2(x * log2(e)) (one FFMA and the EX2 unit); usable
// in host code too (the softmax scale is premultiplied by it at launch).
constexpr float kLog2e = 1.4426950408889634f;

__device__ __forceinline__ uint32_t smem_addr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte global->shared copy; when !valid nothing is read and the destination is zero-filled.
__device__ __forceinline__ void cp_async_16(uint32_t dst, const void* src, bool valid) {
  const int bytes = valid ? 16 : 0;
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int kPending>
__device__ __forceinline__ void cp_async_wait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(kPending));
}
// Waits for every cp.async of this thread, committed or not.
__device__ __forceinline__ void cp_async_wait_all() { asm volatile("cp.async.wait_all;\n" ::: "memory"); }

// Programmatic dependent launch (sm_90): a kernel launched by launch_chained
// (kernels/chained_launch.h) may be scheduled while the kernel before it on the stream is still
// running. It calls wait_for_previous_kernel before it reads or writes any memory that kernel (or
// one before it) touches: the wait returns once that kernel has completed and its writes are
// visible. allow_next_kernel lets the next chained kernel be scheduled (its launch and prologue
// then overlap this kernel's work). Both are no-ops in a kernel launched without the attribute.
__device__ __forceinline__ void wait_for_previous_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;\n" ::: "memory");
#endif
}
__device__ __forceinline__ void allow_next_kernel() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;\n" ::: "memory");
#endif
}
// Both, first thing in a kernel of the plan's chain.
__device__ __forceinline__ void chained_kernel_begins() {
  wait_for_previous_kernel();
  allow_next_kernel();
}

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

// Number of entries <= x in the ascending a[0 .. n) (binary search). kReadOnlyGlobal: a is global
// memory, read-only while the kernel runs (loads through the read-only path); else a may be in
// any space, shared memory included.
template <bool kReadOnlyGlobal = true>
__device__ __forceinline__ int count_at_most(const int32_t* a, int n, int x) {
  int lo = 0, hi = n;
  while (lo < hi) {
    const int mid = (lo + hi) >> 1;
    if ((kReadOnlyGlobal ? __ldg(a + mid) : a[mid]) <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

}  // namespace hc::kernels::detail

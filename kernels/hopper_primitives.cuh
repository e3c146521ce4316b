#pragma once
// sm_90a device primitives shared by the Hopper attention kernel (kernels/attention/hopper_*.cuh)
// and the vertical-slash estimate (kernels/sparse/vs_estimate.cu): mbarriers, TMA loads, shared
// and global stores, proxy fences, named barriers, setmaxnreg, wgmma sequencing, shared-memory
// matrix descriptors and the 128-byte-swizzled panel layout. The wgmma instructions themselves
// are in kernels/attention/wgmma_ops.cuh (generated); smem_addr, cp.async and log2(e) in
// kernels/device_primitives.cuh.
#include <cuda.h>  // CUtensorMap

#include <cstdint>

#include "kernels/device_primitives.cuh"

namespace hc::kernels::detail {

// ---- mbarriers and TMA --------------------------------------------------------------------------

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
}
// Makes the mbarrier inits above visible to the other threads and to the async proxy (TMA).
__device__ __forceinline__ void fence_mbarrier_init() {
  asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Arrives on `bar` once all earlier cp.async of this thread have landed (the pending count is
// raised now and lowered then, so the phase cannot complete before the data is there).
__device__ __forceinline__ void mbar_arrive_on_cp_async(uint32_t bar) {
  asm volatile("cp.async.mbarrier.arrive.shared::cta.b64 [%0];\n" ::"r"(bar) : "memory");
}
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  asm volatile(
      "{\n.reg .pred done;\n"
      "WAIT_LOOP:\n"
      "mbarrier.try_wait.parity.shared::cta.b64 done, [%0], %1;\n"
      "@!done bra WAIT_LOOP;\n}\n" ::"r"(bar),
      "r"(parity)
      : "memory");
}
// The next phase of `bar` also waits for `bytes` from the bulk copy engine.
__device__ __forceinline__ void mbar_expect_bytes(uint32_t bar, uint32_t bytes) {
  asm volatile("mbarrier.expect_tx.relaxed.cta.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
// Bulk tensor copy of one box (x = column, y = row of the 2-D map) into shared memory; rows past
// the map's end arrive as zeros. Completion is counted on `bar`.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap* map, int x, int y, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(x), "r"(y), "r"(bar)
      : "memory");
}

// ---- Shared and global memory, fences, barriers, registers --------------------------------------

__device__ __forceinline__ void st_shared_u32(uint32_t addr, uint32_t v) {
  asm volatile("st.shared.b32 [%0], %1;\n" ::"r"(addr), "r"(v) : "memory");
}
__device__ __forceinline__ uint4 ld_shared_16(uint32_t addr) {
  uint4 v;
  asm volatile("ld.shared.v4.b32 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "r"(addr)
               : "memory");
  return v;
}
__device__ __forceinline__ void st_global_16(void* p, uint4 v) {
  asm volatile("st.global.v4.b32 [%0], {%1, %2, %3, %4};\n" ::"l"(p), "r"(v.x), "r"(v.y), "r"(v.z), "r"(v.w)
               : "memory");
}
// Orders this thread's (generic-proxy) shared-memory writes before later tensor-core reads.
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
// Warpgroup-wide register budget changes (the warp-specialised kernel's producer gives registers
// up, its consumers take them).
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs>
__device__ __forceinline__ void setmaxnreg_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

// ---- wgmma sequencing ---------------------------------------------------------------------------

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
// Waits until at most kPending committed wgmma groups of this warpgroup are still running.
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
// Keeps the compiler from moving accumulator reads/writes across the asynchronous wgmma window.
template <int kN>
__device__ __forceinline__ void fence_accumulators(float (&d)[kN][4]) {
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[i][e])::"memory");
}

// ---- Shared-memory matrix descriptors and the swizzled panel layout -----------------------------

// Shared-memory matrix descriptor, 128-byte swizzle. K-major operands (Q, K): stride between
// 8-row groups 1024 bytes, leading offset unused (1). MN-major V: leading offset = distance
// between 64-column panels, stride = 1024 bytes between groups of 8 keys.
// Only the low word varies: start address >> 4 in bits 0-13, leading offset >> 4 in bits 16-29.
// A consumer keeps the low word of a tile's descriptor and adds byte offsets >> 4 to it (shared
// addresses are below 2^18, so the address field never carries into the leading offset): one
// integer add per wgmma instead of rebuilding the descriptor (mask, shift, two ORs and moves per
// operand; ncu on H100 put ~15% of the kernel's stall samples on that arithmetic between the
// wgmmas of 64-key stages, vertical_slash(3500,100) at 32K, d = 128; kernel times moved within
// the run-to-run spread, 0.94-1.07x).
constexpr uint32_t kSmemDescHigh = (1024 >> 4) | (1u << 30);  // stride 1024 bytes, 128-byte swizzle
__device__ __forceinline__ uint32_t smem_desc_low(uint32_t addr, uint32_t leading_bytes) {
  return ((addr & 0x3FFFF) >> 4) | ((leading_bytes >> 4) << 16);
}
// The descriptor of the matrix `bytes` after the one whose descriptor's low word is `low`.
__device__ __forceinline__ uint64_t smem_desc_at(uint32_t low, uint32_t bytes) {
  return (static_cast<uint64_t>(kSmemDescHigh) << 32) | (low + (bytes >> 4));
}

// The first 1024-byte boundary in a dynamic shared-memory array (the 128-byte swizzle's atoms need
// it; the array is sized 1024 bytes over its layout for this). Advanced by an offset into the
// array, not an integer round trip of the pointer, so the compiler keeps shared-memory loads (LDS)
// for what is read through it.
__device__ __forceinline__ unsigned char* align_smem_1024(unsigned char* raw) {
  return raw + ((1024 - (smem_addr(raw) & 1023)) & 1023);
}

// Tiles [rows][D] are stored as 64-column panels of [rows][128 bytes], 16-byte chunk c of row r
// at chunk c ^ (r & 7): the 128-byte swizzle wgmma's descriptors and TMA's SWIZZLE_128B describe.
// Byte offset of 16-byte chunk c of row r in such a [kRows][D] tile.
template <int kRows>
__device__ __forceinline__ uint32_t panel_offset(int r, int c) {
  return (c >> 3) * (kRows * 128) + r * 128 + (((c & 7) ^ (r & 7)) << 4);
}

}  // namespace hc::kernels::detail

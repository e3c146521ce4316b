#pragma once
// Hopper (sm_90a) attention forward: warp-specialised CTAs on wgmma tensor cores (internal;
// launched by attention.cu). Same semantics, arguments and tile walk as flash_forward.cuh; the
// mma.sync kernel there stays for probe mode.
//
// A CTA is three warpgroups:
//   warpgroup 0, the loader: walks the key tiles (TileCursorT) and copies K and V tiles into a
//     ring of shared-memory stages with cp.async (zero-filled past the tile's valid keys), so
//     consecutive ranges and gathered columns take the same path; each stage's arrival is an
//     mbarrier that completes when the copies have landed ("full"), and consumers hand the stage
//     back through a second mbarrier ("empty"). setmaxnreg gives it 56 registers.
//   warpgroups 1 and 2, the consumers: 64 query rows each, S = Q K^T with wgmma (Q and K from
//     shared memory), online softmax in registers, O += P V with wgmma (P from registers, V from
//     shared memory). 224 registers each.
// Two modes (kShared):
//   shared (dense): the consumers own rows r0..r0+63 and r0+64..r0+127 of one head and read one
//     key stream of 128-key tiles: each K/V tile is fetched once for 128 rows.
//   split (index-driven): each consumer owns one (head, 64-row block) slot of the sparse index
//     and the loader runs one stream of 64-key tiles per consumer (warps 0-1 and 2-3). Slots are
//     ordered by row block, longest first, then head, so the two slots of a CTA are neighbouring
//     heads of one row block (a GQA group's K/V then hit in L2).
//
// Shared-memory tiles are [rows][head_dim] in 64-column panels of [rows][128 bytes], 16-byte
// chunk c of row r at chunk c ^ (r & 7): the 128-byte swizzle wgmma's descriptors describe.
#include <cuda.h>  // CUtensorMap
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/attention/flash_forward.cuh"
#include "kernels/attention/wgmma_ops.cuh"

namespace hc::kernels::detail {

// ---- PTX helpers: mbarriers, proxy fences, wgmma sequencing, descriptors ----------------------

__device__ __forceinline__ void mbar_init(uint32_t bar, uint32_t count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count));
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
// Orders this thread's (generic-proxy) shared-memory writes before later tensor-core reads.
__device__ __forceinline__ void fence_proxy_async() {
  asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");
}
__device__ __forceinline__ void named_barrier_sync(int id, int threads) {
  asm volatile("bar.sync %0, %1;\n" ::"r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() {
  asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory");
}
__device__ __forceinline__ void wgmma_wait_all() {
  asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory");
}
// Keeps the compiler from moving accumulator reads/writes across the asynchronous wgmma window.
template <int kN>
__device__ __forceinline__ void fence_accumulators(float (&d)[kN][4]) {
#pragma unroll
  for (int i = 0; i < kN; ++i)
#pragma unroll
    for (int e = 0; e < 4; ++e) asm volatile("" : "+f"(d[i][e])::"memory");
}

// Shared-memory matrix descriptor, 128-byte swizzle. K-major operands (Q, K): stride between
// 8-row groups 1024 bytes, leading offset unused (1). MN-major V: leading offset = distance
// between 64-column panels, stride = 1024 bytes between groups of 8 keys.
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr, uint32_t leading_bytes) {
  return static_cast<uint64_t>((addr & 0x3FFFF) >> 4) |
         (static_cast<uint64_t>(leading_bytes >> 4) << 16) | (static_cast<uint64_t>(1024 >> 4) << 32) |
         (1ull << 62);
}

// Byte offset of 16-byte chunk c of row r in a [rows][D] tile stored as 64-column swizzled panels.
template <int kRows>
__device__ __forceinline__ uint32_t panel_offset(int r, int c) {
  return (c >> 3) * (kRows * 128) + r * 128 + (((c & 7) ^ (r & 7)) << 4);
}

// ---- Compile-time layout -----------------------------------------------------------------------

template <int D, bool kShared, int kStageCount>
struct HopperTraits {
  static constexpr int kConsumers = 2;
  static constexpr int kThreads = 128 * (1 + kConsumers);
  // Key tile: 128 keys when both consumers share it (half the loads per FLOP of 64), 64 in
  // split mode, the sparse index's block width.
  static constexpr int kN = kShared ? 128 : 64;
  static constexpr int kStreams = kShared ? 1 : kConsumers;
  static constexpr int kStreamThreads = 128 / kStreams;   // loader threads per stream
  static constexpr int kConsumersPerStream = kConsumers / kStreams;
  static constexpr int kStages = kStageCount;
  static constexpr int kQBytes = 64 * D * 2;    // one consumer's Q tile [64][D]
  static constexpr int kTileBytes = kN * D * 2;  // one K (or V) tile [kN][D]
  static constexpr int kQOff = 0;
  static constexpr int kKOff = kQOff + kConsumers * kQBytes;
  static constexpr int kVOff = kKOff + kStreams * kStages * kTileBytes;
  static constexpr int kKeysOff = kVOff + kStreams * kStages * kTileBytes;  // int [streams][stages][kN]
  static constexpr int kMetaOff = kKeysOff + kStreams * kStages * kN * 4;   // int [streams][stages][8]
  static constexpr int kBarOff = kMetaOff + kStreams * kStages * 32;        // u64 full/empty [streams][stages]
  static constexpr int kSmemBytes = kBarOff + 2 * kStreams * kStages * 8 + 1024;  // +1024: alignment
  static_assert(kKOff % 1024 == 0 && kVOff % 1024 == 0, "swizzle atoms need 1024-byte alignment");
};

template <typename T, int D, bool kShared, int kStageCount>
__global__ void __launch_bounds__(384, 1)
    hopper_forward_kernel(const FlashArgs a, const __grid_constant__ CUtensorMap k_map,
                          const __grid_constant__ CUtensorMap v_map) {
  using Tr = HopperTraits<D, kShared, kStageCount>;
  using Mma = MmaOp<T>;
  constexpr int kN = Tr::kN;
  constexpr int kStages = Tr::kStages;
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  constexpr float kNegInf = -__builtin_huge_valf();

  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = reinterpret_cast<unsigned char*>(
      (reinterpret_cast<uintptr_t>(smem_raw) + 1023) & ~static_cast<uintptr_t>(1023));
  int* s_keys = reinterpret_cast<int*>(smem + Tr::kKeysOff);  // [streams][stages][kN]
  int* s_meta = reinterpret_cast<int*>(smem + Tr::kMetaOff);  // [streams][stages][8]
  const uint32_t smem_base = smem_addr(smem);
  auto full_bar = [&](int stream, int stage) { return smem_base + Tr::kBarOff + (stream * kStages + stage) * 8; };
  auto empty_bar = [&](int stream, int stage) {
    return smem_base + Tr::kBarOff + (Tr::kStreams * kStages + stream * kStages + stage) * 8;
  };

  const int tid = threadIdx.x;
  const int warpgroup = tid / 128;
  const int N = a.n_tokens;

  if (tid == 0) {
    for (int s = 0; s < Tr::kStreams; ++s)
      for (int st = 0; st < kStages; ++st) {
        mbar_init(full_bar(s, st), Tr::kStreamThreads);
        mbar_init(empty_bar(s, st), 128 * Tr::kConsumersPerStream);
      }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  // The (head, first row) a consumer owns; valid = false for the spare slot of an odd count.
  struct Slot {
    int head, row0, row_block;
    bool valid;
  };
  auto slot_of = [&](int consumer) {
    Slot s;
    if constexpr (kShared) {
      const int item = blockIdx.x;
      s.head = item % a.n_heads;
      const int row_tile = a.n_row_tiles - 1 - item / a.n_heads;  // 128-row tiles, longest first
      s.row0 = row_tile * 128 + 64 * consumer;
      s.row_block = -1;
      s.valid = true;
    } else {
      const long long seq = 2LL * blockIdx.x + consumer;
      s.valid = seq < static_cast<long long>(a.n_heads) * a.n_row_tiles;
      s.head = s.valid ? static_cast<int>(seq % a.n_heads) : 0;
      s.row_block = s.valid ? a.n_row_tiles - 1 - static_cast<int>(seq / a.n_heads) : 0;
      s.row0 = s.row_block * 64;
    }
    return s;
  };

  if (warpgroup == 0) {
    // ------------------------------------------------------------------ loader
    asm volatile("setmaxnreg.dec.sync.aligned.u32 56;\n");
    const int stream = kShared ? 0 : tid / Tr::kStreamThreads;
    const int lt = tid % Tr::kStreamThreads;  // thread index within the stream
    const Slot slot = slot_of(stream);
    const int kv_head = slot.head / a.group;
    const T* k_base = static_cast<const T*>(a.k) + static_cast<int64_t>(kv_head) * D;
    const T* v_base = static_cast<const T*>(a.v) + static_cast<int64_t>(kv_head) * D;

    TileCursorT<kN> cursor;
    cursor.cols = a.cols;
    int r0, r1, band_sink = 0, band_local = 0;
    if constexpr (kShared) {
      r0 = slot.row0;
      r1 = min(N, r0 + 128) - 1;
      cursor.range_begin = cursor.range_end = nullptr;
      cursor.range_i = 0;
      cursor.range_stop = 1;
      cursor.pos = 0;
      cursor.cur_end = r1 + 1;
      cursor.col_i = cursor.col_stop = 0;
    } else {
      r0 = slot.row0;
      r1 = min(N, r0 + 64) - 1;
      cursor.range_begin = a.range_begin;
      cursor.range_end = a.range_end;
      cursor.range_i = cursor.range_stop = cursor.col_i = cursor.col_stop = 0;
      if (slot.valid) {
        const int s = slot.head * a.n_row_tiles + slot.row_block;
        cursor.range_i = __ldg(a.range_offsets + s);
        cursor.range_stop = __ldg(a.range_offsets + s + 1);
        cursor.skip_empty_ranges();
        cursor.col_i = __ldg(a.col_offsets + s);
        cursor.col_stop = __ldg(a.col_offsets + s + 1);
        if (a.band_local != nullptr) band_local = __ldg(a.band_local + slot.head);
        if (a.band_sink != nullptr && band_local > 0) band_sink = __ldg(a.band_sink + slot.head);
      }
    }

    int stage = 0;
    uint32_t phase = 0;
    for (;;) {
      const KeyTile t = cursor.next(r0, r1, band_sink, band_local);
      mbar_wait(empty_bar(stream, stage), phase ^ 1);
      int* meta = s_meta + (stream * kStages + stage) * 8;
      if (lt == 0) {
        meta[0] = t.kind;
        meta[1] = t.start;
        meta[2] = t.count;
        meta[3] = t.first;
        meta[4] = t.last;
      }
      if (t.kind == 2) {
        int* keys = s_keys + (stream * kStages + stage) * kN;
        for (int r = lt; r < kN; r += Tr::kStreamThreads) keys[r] = r < t.count ? __ldg(a.cols + t.start + r) : -1;
      }
      const uint32_t k_dst = smem_base + Tr::kKOff + (stream * kStages + stage) * Tr::kTileBytes;
      const uint32_t v_dst = smem_base + Tr::kVOff + (stream * kStages + stage) * Tr::kTileBytes;
      if (t.kind == 1) {
        // Consecutive keys: one bulk tensor copy per 64-column panel of K and of V. Keys of the
        // box past the tile's count are real (finite) rows the consumers mask; past N, zeros.
        if (lt == 0) {
          mbar_expect_bytes(full_bar(stream, stage), 2 * Tr::kTileBytes);
#pragma unroll
          for (int p = 0; p < D / 64; ++p) {
            tma_load_2d(k_dst + p * kN * 128, &k_map, kv_head * D + 64 * p, t.start, full_bar(stream, stage));
            tma_load_2d(v_dst + p * kN * 128, &v_map, kv_head * D + 64 * p, t.start, full_bar(stream, stage));
          }
        }
      } else if (t.kind == 2) {
        // Gathered columns (no TMA gather on sm_90): 16-byte cp.async per thread, each thread one
        // column chunk of every kRowsPerPass-th key; keys past the count are zero-filled.
        constexpr int kRowsPerPass = Tr::kStreamThreads / kChunks;
        const int c = lt % kChunks, r_first = lt / kChunks;
#pragma unroll 4
        for (int i = 0; i < kN / kRowsPerPass; ++i) {
          const int r = r_first + i * kRowsPerPass;
          const bool valid = r < t.count;
          const int key = valid ? __ldg(a.cols + t.start + r) : 0;
          const uint32_t off = panel_offset<kN>(r, c);
          cp_async_16(k_dst + off, k_base + static_cast<int64_t>(key) * a.k_stride + c * 8, valid);
          cp_async_16(v_dst + off, v_base + static_cast<int64_t>(key) * a.v_stride + c * 8, valid);
        }
        mbar_arrive_on_cp_async(full_bar(stream, stage));
      }
      mbar_arrive(full_bar(stream, stage));  // releases the meta/keys writes above
      if (++stage == kStages) {
        stage = 0;
        phase ^= 1;
      }
      if (t.kind == 0) break;
    }
    asm volatile("cp.async.wait_all;\n" ::: "memory");
    return;
  }

  // -------------------------------------------------------------------- consumers
  asm volatile("setmaxnreg.inc.sync.aligned.u32 224;\n");
  const int consumer = warpgroup - 1;
  const int ct = tid - 128 * warpgroup;  // thread within the warpgroup
  const int warp = ct >> 5, lane = ct & 31;
  const int g = lane >> 2, t4 = lane & 3;
  const int stream = kShared ? 0 : consumer;
  const Slot slot = slot_of(consumer);
  const int rc0 = slot.row0;  // this warpgroup's first row
  const int head = slot.head;
  const int warp_row0 = rc0 + 16 * warp;

  int band_sink = 0, band_local = 0;
  if constexpr (!kShared) {
    if (slot.valid && a.band_local != nullptr) band_local = __ldg(a.band_local + head);
    if (slot.valid && a.band_sink != nullptr && band_local > 0) band_sink = __ldg(a.band_sink + head);
  }

  // Q tile [64][D] of this warpgroup; rows past N are zero.
  const uint32_t q_smem = smem_base + Tr::kQOff + consumer * Tr::kQBytes;
  if (slot.valid) {
    const T* q_base = static_cast<const T*>(a.q) + static_cast<int64_t>(head) * D;
#pragma unroll
    for (int it = 0; it < 64 * kChunks / 128; ++it) {
      const int idx = ct + it * 128;
      const int r = idx / kChunks, c = idx % kChunks;
      const int row = rc0 + r;
      const bool valid = row < N;
      cp_async_16(q_smem + panel_offset<64>(r, c), q_base + static_cast<int64_t>(valid ? row : 0) * a.q_stride + c * 8,
                  valid);
    }
  }
  asm volatile("cp.async.wait_all;\n" ::: "memory");
  fence_proxy_async();
  named_barrier_sync(1 + consumer, 128);

  const float sl2 = a.scale_log2;
  float o_acc[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o_acc[i][0] = o_acc[i][1] = o_acc[i][2] = o_acc[i][3] = 0.f;
  float m_run[2] = {kNegInf, kNegInf}, l_run[2] = {0.f, 0.f};
  const int row_a = warp_row0 + g, row_b = warp_row0 + g + 8;  // this thread's two rows

  // One key tile as the loader described it, plus whether this warpgroup computes it (shared
  // mode: the first warpgroup skips the part of the last tile above its rows).
  struct Tile {
    int kind, start, count, first, last, stage;
    bool work;
  };
  int stage = 0;
  uint32_t phase = 0;
  auto next_tile = [&]() {
    mbar_wait(full_bar(stream, stage), phase);
    fence_proxy_async();
    const int* meta = s_meta + (stream * kStages + stage) * 8;
    Tile t{meta[0], meta[1], meta[2], meta[3], meta[4], stage, false};
    t.work = t.kind != 0 && (!kShared || t.first <= rc0 + 63);
    if (++stage == kStages) {
      stage = 0;
      phase ^= 1;
    }
    return t;
  };
  auto release = [&](const Tile& t) { mbar_arrive(empty_bar(stream, t.stage)); };

  // S = Q K^T  [64 rows x kN keys] (asynchronous until the next wgmma_wait_all).
  auto issue_scores = [&](float (&s)[kN / 8][4], const Tile& t) {
    const uint32_t k_smem = smem_base + Tr::kKOff + (stream * kStages + t.stage) * Tr::kTileBytes;
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t koff = (kk & 3) * 32;  // 16 columns = 32 bytes along the panel
      const uint64_t qd = smem_desc(q_smem + (kk >> 2) * (64 * 128) + koff, 16);
      const uint64_t kd = smem_desc(k_smem + (kk >> 2) * (kN * 128) + koff, 16);
      Wgmma<T, kN>::ss(s, qd, kd, kk > 0 ? 1 : 0);
    }
    wgmma_commit();
  };

  // Masks, online softmax and O += P V (asynchronous) of one tile whose scores are in s.
  auto softmax_and_pv = [&](float (&s)[kN / 8][4], const Tile& t) {
    // Masks: keys past the tile's valid count, after the row (causality), outside the band.
    const bool band_mask = band_local > 0 && t.last >= band_sink && warp_row0 + 15 - t.first >= band_local;
    if (t.count < kN || t.last > warp_row0 || band_mask) {
      const int* keys = s_keys + (stream * kStages + t.stage) * kN;
#pragma unroll
      for (int nb = 0; nb < kN / 8; ++nb) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int col = nb * 8 + 2 * t4 + (e & 1);
          const int row = (e >> 1) ? row_b : row_a;
          int key;
          bool ok;
          if (t.kind == 1) {
            key = t.start + col;
            ok = col < t.count;
          } else {
            key = keys[col];
            ok = key >= 0;
          }
          if (!ok || key > row) s[nb][e] = kNegInf;
          if (band_mask && key >= band_sink && row - key >= band_local) s[nb][e] = kNegInf;
        }
      }
    }

    // Online softmax (base 2), as flash_forward.cuh.
    float mx[2] = {m_run[0], m_run[1]};
#pragma unroll
    for (int nb = 0; nb < kN / 8; ++nb) {
      mx[0] = fmaxf(mx[0], fmaxf(s[nb][0], s[nb][1]));
      mx[1] = fmaxf(mx[1], fmaxf(s[nb][2], s[nb][3]));
    }
    float ref[2], alpha[2];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
      mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
      ref[i] = mx[i] == kNegInf ? 0.f : mx[i] * sl2;
      alpha[i] = mx[i] == m_run[i] ? 1.f : exp2f(m_run[i] * sl2 - ref[i]);
      m_run[i] = mx[i];
    }
    float row_sum[2] = {0.f, 0.f};
#pragma unroll
    for (int nb = 0; nb < kN / 8; ++nb) {
      s[nb][0] = exp2f(fmaf(s[nb][0], sl2, -ref[0]));
      s[nb][1] = exp2f(fmaf(s[nb][1], sl2, -ref[0]));
      s[nb][2] = exp2f(fmaf(s[nb][2], sl2, -ref[1]));
      s[nb][3] = exp2f(fmaf(s[nb][3], sl2, -ref[1]));
      row_sum[0] += s[nb][0] + s[nb][1];
      row_sum[1] += s[nb][2] + s[nb][3];
    }
    l_run[0] = l_run[0] * alpha[0] + row_sum[0];
    l_run[1] = l_run[1] * alpha[1] + row_sum[1];
#pragma unroll
    for (int db = 0; db < D / 8; ++db) {
      o_acc[db][0] *= alpha[0];
      o_acc[db][1] *= alpha[0];
      o_acc[db][2] *= alpha[1];
      o_acc[db][3] *= alpha[1];
    }

    // O += P V: the S accumulators of two 8-key blocks form one 16-key A fragment.
    uint32_t p[kN / 16][4];
#pragma unroll
    for (int kk = 0; kk < kN / 16; ++kk) {
      p[kk][0] = Mma::pack(s[2 * kk][0], s[2 * kk][1]);
      p[kk][1] = Mma::pack(s[2 * kk][2], s[2 * kk][3]);
      p[kk][2] = Mma::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      p[kk][3] = Mma::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }
    const uint32_t v_smem = smem_base + Tr::kVOff + (stream * kStages + t.stage) * Tr::kTileBytes;
    fence_accumulators<D / 8>(o_acc);
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kN / 16; ++kk) {
      const uint64_t vd = smem_desc(v_smem + kk * 16 * 128, kN * 128);
      Wgmma<T, D>::rs(o_acc, p[kk], vd, 1);
    }
    wgmma_commit();
  };

  for (;;) {
    const Tile t = next_tile();
    if (t.kind == 0) break;
    if (t.work) {
      float s[kN / 8][4];
      issue_scores(s, t);
      wgmma_wait_all();
      fence_accumulators<kN / 8>(s);
      softmax_and_pv(s, t);
      wgmma_wait_all();
      fence_accumulators<D / 8>(o_acc);
    }
    release(t);
  }
  if (!slot.valid) return;

  // Epilogue: full row sums, normalisation, O and LSE.
  float inv[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l_run[i] += __shfl_xor_sync(0xffffffffu, l_run[i], 1);
    l_run[i] += __shfl_xor_sync(0xffffffffu, l_run[i], 2);
    inv[i] = l_run[i] > 0.f ? 1.f / l_run[i] : 0.f;
  }
  if (a.o != nullptr) {
    T* o_base = static_cast<T*>(a.o) + static_cast<int64_t>(head) * D;
#pragma unroll
    for (int db = 0; db < D / 8; ++db) {
      const int col = db * 8 + 2 * t4;
      if (row_a < N)
        *reinterpret_cast<uint32_t*>(o_base + static_cast<int64_t>(row_a) * a.o_stride + col) =
            Mma::pack(o_acc[db][0] * inv[0], o_acc[db][1] * inv[0]);
      if (row_b < N)
        *reinterpret_cast<uint32_t*>(o_base + static_cast<int64_t>(row_b) * a.o_stride + col) =
            Mma::pack(o_acc[db][2] * inv[1], o_acc[db][3] * inv[1]);
    }
  }
  if (a.lse != nullptr && t4 == 0) {
    constexpr float kLn2 = 0.6931471805599453f;
    if (row_a < N)
      a.lse[static_cast<int64_t>(head) * N + row_a] =
          l_run[0] > 0.f ? (m_run[0] * sl2 + __log2f(l_run[0])) * kLn2 : kNegInf;
    if (row_b < N)
      a.lse[static_cast<int64_t>(head) * N + row_b] =
          l_run[1] > 0.f ? (m_run[1] * sl2 + __log2f(l_run[1])) * kLn2 : kNegInf;
  }
}

}  // namespace hc::kernels::detail

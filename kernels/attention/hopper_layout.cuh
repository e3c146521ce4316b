#pragma once
// The Hopper attention kernel's compile-time shape and shared-memory layout (internal; see
// hopper_forward.cuh): warpgroups and register budgets, keys per stage, Q buffers, the byte
// offsets of Q, the K/V ring, the stages' key lists and metadata and the mbarriers, and the
// CTA's view of that memory (HopperSmem) that the loader and the consumers share.
//
// Shared-memory tiles are [rows][head_dim] in 64-column panels of [rows][128 bytes], 16-byte
// chunk c of row r at chunk c ^ (r & 7): the 128-byte swizzle wgmma's descriptors describe
// (panel_offset, kernels/hopper_primitives.cuh).
#include <cstdint>

#include "kernels/attention/stage_walk.h"  // hopper_consumers
#include "kernels/hopper_primitives.cuh"

namespace hc::kernels::detail {

// What a ring stage carries.
enum StageKind : int {
  kStageTileEnd = 0,     // the work tile's keys are done: epilogue
  kStageKeys = 1,        // consecutive keys (TMA)
  kStageGathered = 2,    // gathered columns (cp.async)
  kStageTileBegin = 3,   // a work tile starts: head, row tile, band; its Q has landed
  kStageNoMoreWork = 4,  // the CTA is done
};

// Stage metadata, written by the loader. Consecutive keys: shared-memory row r holds key
// base + r, and consumer c computes keys [lo[c], hi[c]). Gathered columns: row r holds the key
// of entry r of the stage's entry list (key << kTileColumnBits | bit c: consumer c computes it),
// rows [lo[c], hi[c]) = [0, count) when any entry has bit c. lo == hi: not for that consumer.
// first/last: smallest and largest key consumer c computes (gathered: of the stage's entries).
// Tile begin: head, row_tile, band_sink, band_local (the rest unused).
template <int kConsumers>
struct StageMeta {
  int kind, base;
  int shared_by_all;  // gathered: all kN entries are computed by every consumer (no membership mask)
  int lo[kConsumers], hi[kConsumers], first[kConsumers], last[kConsumers];
  int head, row_tile, band_sink, band_local;
};

// Named barriers (0 is __syncthreads): the loader warpgroup's own, and consumer c's epilogue
// barrier kEpilogueBarrier + c.
constexpr int kLoaderBarrier = 3;
constexpr int kEpilogueBarrier = 4;

// hopper_consumers (kernels/attention/stage_walk.h): consumer warpgroups per CTA.

// What does not depend on the number of K/V stages.
template <int D, bool kDense, int kConsumerCount>
struct HopperShape {
  static constexpr int kD = D;             // head dim
  static constexpr bool kIsDense = kDense;  // dense range walk, or index-driven
  static constexpr int kConsumers = kConsumerCount;
  static_assert(kConsumers == 2 || (kConsumers == 3 && (D == 64 || !kDense)),
                "three consumers: index-driven, or dense at d = 64 (registers)");
  static constexpr int kRows = 64 * kConsumers;  // query rows per work tile
  static constexpr int kThreads = 128 * (1 + kConsumers);
  // setmaxnreg budgets (multiples of 8; loader + consumers within the SM's 64K registers): the
  // loader keeps 56 (its cursors, one per 64-row block), the consumers share the rest: 224 each
  // of two, 152 each of three (ptxas, nvcc 13.0: no spill at d = 64; 32 bytes at d = 128, where
  // three were still faster than two, see hopper_consumers). A dense loader walks one range: 24,
  // so that three dense consumers get 160 (at 152 the pipelined dense units serialise their
  // wgmmas, C7512).
  static constexpr int kLoaderRegs = kDense && kConsumers == 3 ? 24 : 56;
  static constexpr int kConsumerRegs = (65536 / 128 - kLoaderRegs) / kConsumers / 8 * 8;
  static_assert(128 * kLoaderRegs + 128 * kConsumers * kConsumerRegs <= 65536,
                "setmaxnreg budgets over the register file");
  // Keys per stage. Dense: 128 (FlashAttention-3's 64 x 128 shape per consumer; the last tile
  // and the first consumer's diagonal tile are computed 64 wide). Index-driven: 64, the index's
  // block width, with more stages. Measured on H100/H200 (headcal bench sparse, 32K, d = 128):
  // 128-key stages (3 of them) aligned to 128-key windows were 11-20% faster on a_shape(128,3968)
  // and vertical_slash(3500,100) but 1.8-2x slower on vertical_slash(1000,6096) and (30,800),
  // whose short ranges and gathered columns fill half-empty windows with fewer stages in flight.
  static constexpr int kN = kDense ? 128 : 64;
  static constexpr int kQBytes = 64 * D * 2;    // one consumer's Q tile [64][D]
  static constexpr int kTileBytes = kN * D * 2;  // one K (or V) tile [kN][D]
  // Q buffers: index-driven CTAs are persistent and load the next tile's Q while computing this
  // one; dense CTAs take one tile each (a second buffer would cost a K/V stage at d = 128, and
  // persistent dense CTAs were 2-4% slower at 128K on H100: tiles are long, and with 2 stages
  // instead of 3 the dense kernel lost 7% at 128K, d = 128).
  static constexpr int kQBuffers = kDense ? 1 : 2;

  // Byte offsets of the shared-memory layout with `stages` K/V stages: Q [kQBuffers][kConsumers]
  // [64][D] at 0, K and V [stages][kN][D], key lists int [stages][kN], StageMeta
  // [stages], mbarriers u64 full[stages], empty[stages], q_empty[kQBuffers], int next_work[2].
  struct Layout {
    int k, v, keys, meta, bars, sched, bytes;
  };
  static constexpr Layout layout(int stages) {
    Layout l{};
    l.k = kQBuffers * kConsumers * kQBytes;
    l.v = l.k + stages * kTileBytes;
    l.keys = l.v + stages * kTileBytes;
    l.meta = l.keys + stages * kN * 4;
    l.bars = (l.meta + stages * static_cast<int>(sizeof(StageMeta<kConsumers>)) + 7) / 8 * 8;
    l.sched = l.bars + (2 * stages + kQBuffers) * 8;
    l.bytes = l.sched + 8 + 1024;  // +1024: alignment
    return l;
  }
  // The most stages that fit in an H100 block's 227 KB.
  static constexpr int max_stages() {
    int n = 1;
    while (layout(n + 1).bytes <= 227 * 1024) ++n;
    return n;
  }
};

template <int D, bool kDense, int kStageCount, int kConsumerCount>
struct HopperTraits : HopperShape<D, kDense, kConsumerCount> {
  using Shape = HopperShape<D, kDense, kConsumerCount>;
  static constexpr int kStages = kStageCount;
  static constexpr typename Shape::Layout kLayout = Shape::layout(kStageCount);
  static constexpr int kQOff = 0;
  static constexpr int kKOff = kLayout.k;
  static constexpr int kVOff = kLayout.v;
  static constexpr int kKeysOff = kLayout.keys;
  static constexpr int kMetaOff = kLayout.meta;
  static constexpr int kBarOff = kLayout.bars;
  static constexpr int kSchedOff = kLayout.sched;
  static constexpr int kSmemBytes = kLayout.bytes;
  static_assert(kKOff % 1024 == 0 && kVOff % 1024 == 0, "swizzle atoms need 1024-byte alignment");
  static_assert(kBarOff % 8 == 0, "mbarriers need 8-byte alignment");
  static_assert(kSmemBytes <= 227 * 1024, "more shared memory than an H100 block can have");
};

// The CTA's shared memory as HopperTraits Tr lays it out: shared-window addresses of the tiles
// and mbarriers (for TMA, cp.async, wgmma descriptors and mbarrier instructions), pointers to
// what is read and written as data (key lists, stage metadata, the scheduler's slots).
template <class Tr>
struct HopperSmem {
  using Meta = StageMeta<Tr::kConsumers>;
  uint32_t base;   // shared address of the 1024-byte-aligned start
  int* keys;       // [stages][kN] gathered stages' entries
  Meta* meta;      // [stages]
  int* next_work;  // [2]

  // smem: the aligned start (align_smem_1024), so that the metadata and key lists are read by LDS.
  __device__ __forceinline__ explicit HopperSmem(unsigned char* smem)
      : base(smem_addr(smem)),
        keys(reinterpret_cast<int*>(smem + Tr::kKeysOff)),
        meta(reinterpret_cast<Meta*>(smem + Tr::kMetaOff)),
        next_work(reinterpret_cast<int*>(smem + Tr::kSchedOff)) {}

  // Completes when stage `stage` is filled (every loader thread arrives, plus TMA bytes).
  __device__ __forceinline__ uint32_t full_bar(int stage) const { return base + Tr::kBarOff + stage * 8; }
  // Completes when every consumer thread has released stage `stage`.
  __device__ __forceinline__ uint32_t empty_bar(int stage) const {
    return base + Tr::kBarOff + (Tr::kStages + stage) * 8;
  }
  // Completes when every consumer thread is done with Q buffer buf (its QK^T and the O copy-out).
  __device__ __forceinline__ uint32_t q_empty_bar(int buf) const {
    return base + Tr::kBarOff + (2 * Tr::kStages + buf) * 8;
  }
  // Q tile [64][D] of consumer c in Q buffer buf.
  __device__ __forceinline__ uint32_t q_tile(int buf, int c) const {
    return base + Tr::kQOff + (Tr::kConsumers * buf + c) * Tr::kQBytes;
  }
  // K and V tiles [kN][D] of stage `stage`.
  __device__ __forceinline__ uint32_t k_tile(int stage) const { return base + Tr::kKOff + stage * Tr::kTileBytes; }
  __device__ __forceinline__ uint32_t v_tile(int stage) const { return base + Tr::kVOff + stage * Tr::kTileBytes; }

  // By one thread, before the CTA's first __syncthreads.
  __device__ __forceinline__ void init_barriers() const {
    for (int st = 0; st < Tr::kStages; ++st) {
      mbar_init(full_bar(st), 128);                    // every loader thread arrives
      mbar_init(empty_bar(st), Tr::kConsumers * 128);  // every consumer thread arrives
    }
    for (int buf = 0; buf < Tr::kQBuffers; ++buf) mbar_init(q_empty_bar(buf), Tr::kConsumers * 128);
    fence_mbarrier_init();
  }
};

}  // namespace hc::kernels::detail

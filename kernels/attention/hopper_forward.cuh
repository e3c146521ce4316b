#pragma once
// Hopper (sm_90a) attention forward: warp-specialised CTAs on wgmma tensor cores (internal;
// launched by attention.cu). Same semantics, arguments and tile walk as flash_forward.cuh; the
// mma.sync kernel there stays for probe mode.
//
// Work tiles are 64 * kConsumers query rows of one head (192 or 128: hopper_consumers).
// Index-driven CTAs are persistent (one per SM): the first tile is blockIdx.x, the next ones come
// from a counter in global memory (FlashArgs::tile_counter). Dense CTAs take one tile each
// (HopperTraits::kQBuffers says why). A CTA is 1 + kConsumers warpgroups:
//   warpgroup 0, the loader: for each work tile, loads its Q (TMA; index-driven, into one of
//     two Q buffers, so the next tile's Q lands while this one's is still read), then walks the
//     key tiles (TileCursorT, up to 128 keys each) and fills a ring of shared-memory stages:
//     consecutive keys by TMA (bulk tensor copies, two 64-column panels per operand at
//     d = 128), gathered columns by 16-byte cp.async (no TMA gather on sm_90). A stage's
//     "full" mbarrier completes when its bytes have landed; the consumers hand it back through
//     its "empty" mbarrier. The ring carries a "tile begins" stage (head, rows, band) before a
//     tile's keys and a "tile ends" stage after them, so the loader runs into the next tile
//     while the consumers finish one. setmaxnreg gives it 56 registers (24 in the dense kernel
//     with three consumers: HopperShape::kLoaderRegs).
//   warpgroups 1 .. kConsumers, the consumers: rows r0 + 64 c .. r0 + 64 c + 63 for consumer c.
//     S = Q K^T with wgmma (Q and K from shared memory), online softmax in registers, O += P V
//     with wgmma (P from registers, V from shared memory). A tile of up to 64 keys is computed
//     64 wide, a longer one (or, index-driven, two consecutive 64-key stages of the same
//     consumer) 128 wide. Dense: PV of one key tile runs under the next tile's softmax (see
//     `compute`). The rest of the registers each (224 with two consumers, 152 with three).
//     After a tile's last stage a consumer frees its Q buffer and writes O and LSE while the
//     loader is already filling the ring with the next tile.
// One CTA per work tile instead (non-persistent) cost a fixed ~8.5 us per tile on H100 (headcal
// bench sparse, a_shape(64, local) swept over local at 32K and 128K, d = 64 and 128: kernel time
// = ~8.5 us per tile + ~0.75 us (d = 64) or ~1.0 us (d = 128) per 64-key stage): launch, index
// reads, the first loads and the epilogue, none overlapped.
// All consumers read the one key stream, so a K/V tile is fetched once for the whole work tile
// (64-row CTAs with streams of their own doubled the L2 traffic: 73% of L2 bandwidth and 35%
// slower; ncu on H100). Two modes (kDense):
//   dense: one causal range per CTA in 128-key tiles.
//   index-driven: the ranges of the CTA's 64-row blocks in the sparse index, walked in merged
//     key order; a consecutive-key tile that several blocks' lists start at the same key is
//     loaded once for all of them (ranges shift by 64 keys from one row block to the next, so
//     their tiles line up), any other tile for its own consumer only (the others skip it). Then
//     the gathered columns of the blocks, merged so that a key several compute is loaded once
//     (tile_columns.h), 64 per stage. Each consumer applies its own keys, causality and band,
//     so C(i) is exact per row.
// Longest row tiles first; the heads of one row tile are adjacent (dense), or the row tiles of
// one GQA group (index-driven, FlashArgs::kv_group_order), so K/V is shared in L2.
//
// Shared-memory tiles are [rows][head_dim] in 64-column panels of [rows][128 bytes], 16-byte
// chunk c of row r at chunk c ^ (r & 7): the 128-byte swizzle wgmma's descriptors describe.
#include <cuda.h>  // CUtensorMap
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

#include "kernels/attention/flash_forward.cuh"
#include "kernels/attention/stage_walk.h"        // hopper_consumers
#include "kernels/attention/tile_columns_ref.h"  // kTileColumnBits
#include "kernels/attention/wgmma_ops.cuh"
#include "kernels/hopper_primitives.cuh"

namespace hc::kernels::detail {

// ---- Compile-time layout -----------------------------------------------------------------------

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

// The work tile w of a launch: a head and a row tile, longest first (n_row_tiles counts row
// tiles of HopperShape::kRows rows). Dense order: the heads of one row tile are adjacent (they
// stream the same keys in step). KV-group order: the tiles running at once share one KV head's
// K/V (the index-driven walk reads scattered tiles, whose reuse across row tiles and heads of a
// group stays in L2 only if the group's K/V is all that is being read).
__device__ __forceinline__ void work_tile(const FlashArgs& a, int w, int& head, int& row_tile) {
  if (a.kv_group_order) {
    const int per_group = a.n_row_tiles * a.group;
    const int kv = w / per_group;
    const int in_group = w % per_group;
    head = kv * a.group + in_group % a.group;
    row_tile = a.n_row_tiles - 1 - in_group / a.group;
  } else {
    head = w % a.n_heads;
    row_tile = a.n_row_tiles - 1 - w / a.n_heads;
  }
}

// hopper_consumers (kernels/attention/stage_walk.h): consumer warpgroups per CTA.

// What does not depend on the number of K/V stages.
template <int D, bool kDense, int kConsumerCount>
struct HopperShape {
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

template <typename T, int D, bool kDense, int kStageCount, int kConsumerCount>
__global__ void __launch_bounds__(HopperShape<D, kDense, kConsumerCount>::kThreads, 1)
    hopper_forward_kernel(const FlashArgs a, const __grid_constant__ CUtensorMap q_map,
                          const __grid_constant__ CUtensorMap k_map, const __grid_constant__ CUtensorMap v_map) {
  using Tr = HopperTraits<D, kDense, kStageCount, kConsumerCount>;
  using Mma = MmaOp<T>;
  using Meta = StageMeta<Tr::kConsumers>;
  constexpr int kN = Tr::kN;
  constexpr int kStages = Tr::kStages;
  constexpr int kC = Tr::kConsumers;
  constexpr int kRows = Tr::kRows;
  constexpr int kAllConsumers = (1 << kC) - 1;  // membership bits of a key every consumer computes
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  constexpr float kNegInf = -__builtin_huge_valf();

  extern __shared__ unsigned char smem_raw[];
  unsigned char* smem = align_smem_1024(smem_raw);  // the metadata and key lists are read by LDS
  int* s_keys = reinterpret_cast<int*>(smem + Tr::kKeysOff);                // [stages][kN]
  Meta* s_meta = reinterpret_cast<Meta*>(smem + Tr::kMetaOff);              // [stages]
  int* s_next_work = reinterpret_cast<int*>(smem + Tr::kSchedOff);          // [2]
  const uint32_t smem_base = smem_addr(smem);
  auto full_bar = [&](int stage) { return smem_base + Tr::kBarOff + stage * 8; };
  auto empty_bar = [&](int stage) { return smem_base + Tr::kBarOff + (kStages + stage) * 8; };
  auto q_empty_bar = [&](int buf) { return smem_base + Tr::kBarOff + (2 * kStages + buf) * 8; };
  // Q tile [64][D] of consumer c in Q buffer buf.
  auto q_tile = [&](int buf, int c) { return smem_base + Tr::kQOff + (kC * buf + c) * Tr::kQBytes; };
  constexpr int kQBuffers = Tr::kQBuffers;

  const int tid = threadIdx.x;
  const int warpgroup = tid / 128;
  const int N = a.n_tokens;
  const int n_work = a.n_row_tiles * a.n_heads;

  if (tid == 0) {
    for (int st = 0; st < kStages; ++st) {
      mbar_init(full_bar(st), 128);       // every loader thread arrives
      mbar_init(empty_bar(st), kC * 128);  // every consumer thread arrives
    }
    for (int buf = 0; buf < kQBuffers; ++buf) mbar_init(q_empty_bar(buf), kC * 128);
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
  }
  __syncthreads();

  const int n_row_blocks = (N + 63) / 64;

  if (warpgroup == 0) {
    // ------------------------------------------------------------------ loader
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(Tr::kLoaderRegs));
    const int lt = tid;
    int head = 0, row_tile = 0;  // the work tile being loaded
    int kv_col = 0;                // its KV head's first column in K and V: (head / group) * D

    int stage = 0;
    uint32_t phase = 0;
    auto advance = [&]() {
      if (++stage == kStages) {
        stage = 0;
        phase ^= 1;
      }
    };
    // Loads one consecutive-key tile (or the end marker, kind 0) into the next stage for the
    // consumers in `meta` (lo == hi: not theirs).
    auto emit = [&](const Meta& m) {
      mbar_wait(empty_bar(stage), phase ^ 1);
      if (lt == 0) s_meta[stage] = m;
      const uint32_t k_dst = smem_base + Tr::kKOff + stage * Tr::kTileBytes;
      const uint32_t v_dst = smem_base + Tr::kVOff + stage * Tr::kTileBytes;
      if (m.kind == kStageKeys) {
        // Consecutive keys: one bulk tensor copy per 64-column panel of K and of V, the whole
        // kN-key window from base. Keys outside a consumer's [lo, hi) are real (finite) rows it
        // masks; keys past N arrive as zeros.
        if (lt == 0) {
          mbar_expect_bytes(full_bar(stage), 2 * Tr::kTileBytes);
#pragma unroll
          for (int p = 0; p < D / 64; ++p) {
            tma_load_2d(k_dst + p * kN * 128, &k_map, kv_col + 64 * p, m.base, full_bar(stage));
            tma_load_2d(v_dst + p * kN * 128, &v_map, kv_col + 64 * p, m.base, full_bar(stage));
          }
        }
      }
      mbar_arrive(full_bar(stage));  // releases the meta write above
      advance();
    };
    // Gathered columns (no TMA gather on sm_90): 16-byte cp.async per thread, each thread one
    // column chunk of every kRowsPerPass-th key of the stage. Warp 0 reads a stage's entries
    // (key << kTileColumnBits | which consumers compute it, FlashArgs::tile_entries) one stage
    // ahead, so the loader does not wait a global-memory latency per stage
    // (vertical_slash(3500,100) at 128K, kernel only, H100: 21.4 -> 16.1 ms at d = 128, 5.09 ->
    // 3.52 at d = 64), and hands them to the other warps through the stage's key list (registers
    // for all 64 per thread spilled).
    constexpr int kRowsPerPass = 128 / kChunks;
    static_assert(kDense || kN == 64, "warp 0 holds a stage's 64 entries, two per lane");
    struct StageEntries {
      int low, high;  // warp 0: entries of rows lane and lane + 32 (0: none)
    };
    auto read_entries = [&](int pos, int count) {
      StageEntries e{0, 0};
      if (lt < 32) {
        if (lt < count) e.low = __ldg(a.tile_entries + pos + lt);
        if (lt + 32 < count) e.high = __ldg(a.tile_entries + pos + lt + 32);
      }
      return e;
    };
    // Loads `count` gathered keys; rows past the count are zero-filled (a stale V row times P = 0
    // could be NaN). A consumer none of whose keys is in the stage skips it.
    auto emit_gathered = [&](const StageEntries& e, int count) {
      mbar_wait(empty_bar(stage), phase ^ 1);
      int* entries = s_keys + stage * kN;
      if (lt < 32) {
        entries[lt] = e.low;
        entries[lt + 32] = e.high;
        const int members = __reduce_or_sync(0xffffffffu, e.low | e.high) & kAllConsumers;
        const int all_of_all = __reduce_and_sync(0xffffffffu, e.low & e.high) & kAllConsumers;
        if (lt == 0) {
          Meta m;
          m.kind = kStageGathered;
          m.base = 0;
          m.shared_by_all = count == kN && all_of_all == kAllConsumers;
#pragma unroll
          for (int c = 0; c < kC; ++c) {
            m.lo[c] = 0;
            m.hi[c] = (members >> c) & 1 ? count : 0;
            m.first[c] = 0;  // the consumers read first and last from the stage's entries
            m.last[c] = -1;
          }
          s_meta[stage] = m;
        }
      }
      named_barrier_sync(3, 128);  // the loader's own barrier: entries written
      const uint32_t k_dst = smem_base + Tr::kKOff + stage * Tr::kTileBytes;
      const uint32_t v_dst = smem_base + Tr::kVOff + stage * Tr::kTileBytes;
      const int chunk_col = lt % kChunks;
      const T* k_rows = static_cast<const T*>(a.k) + kv_col;
      const T* v_rows = static_cast<const T*>(a.v) + kv_col;
#pragma unroll
      for (int r = lt / kChunks; r < kN; r += kRowsPerPass) {
        const int entry = entries[r];
        const int64_t key = entry >> kTileColumnBits;
        const uint32_t off = panel_offset<kN>(r, chunk_col);
        cp_async_16(k_dst + off, k_rows + key * a.k_stride + chunk_col * 8, entry != 0);
        cp_async_16(v_dst + off, v_rows + key * a.v_stride + chunk_col * 8, entry != 0);
      }
      mbar_arrive_on_cp_async(full_bar(stage));
      mbar_arrive(full_bar(stage));  // releases the meta/entries writes above
      advance();
    };
    // The stage for consecutive-key tile t (or the tile's end, kind 0) of consumer c (or of
    // all, for == kC).
    auto tile_meta = [](const KeyTile& t, int for_c) {
      Meta m;
      m.kind = t.kind;
      m.base = t.start;
      m.shared_by_all = 0;
#pragma unroll
      for (int c = 0; c < kC; ++c) {
        const bool mine = for_c == kC || for_c == c;
        m.lo[c] = t.start;
        m.hi[c] = mine ? m.lo[c] + t.count : m.lo[c];
        m.first[c] = t.first;
        m.last[c] = t.last;
      }
      return m;
    };

    // A work tile begins: its Q (each consumer's 64 rows; rows past N arrive as zeros, a
    // consumer with none is not loaded) into Q buffer buf, once the consumers have freed it
    // (kQBuffers tiles ago), and the tile's head, rows and band.
    auto emit_begin = [&](int buf, uint32_t buf_phase, int band_sink, int band_local) {
      mbar_wait(q_empty_bar(buf), buf_phase ^ 1);
      mbar_wait(empty_bar(stage), phase ^ 1);
      if (lt == 0) {
        Meta m;
        m.kind = kStageTileBegin;
        m.head = head;
        m.row_tile = row_tile;
        m.band_sink = band_sink;
        m.band_local = band_local;
        s_meta[stage] = m;
        const int r0 = row_tile * kRows;
        const int consumers_with_rows = min(kC, (N - r0 + 63) / 64);
        mbar_expect_bytes(full_bar(stage), consumers_with_rows * Tr::kQBytes);
        for (int c = 0; c < consumers_with_rows; ++c)
#pragma unroll
          for (int p = 0; p < D / 64; ++p)
            tma_load_2d(q_tile(buf, c) + p * 64 * 128, &q_map, head * D + 64 * p, r0 + 64 * c, full_bar(stage));
      }
      mbar_arrive(full_bar(stage));
      advance();
    };
    auto emit_marker = [&](int kind) {
      KeyTile none;
      none.kind = 0;
      none.start = none.count = none.first = 0;
      none.last = -1;
      Meta m = tile_meta(none, kC);
      m.kind = kind;
      emit(m);
    };

    // The first work tile is blockIdx.x, the next ones come from the launch's counter (none
    // without one), taken once this tile's stages are all issued (the consumers still have up
    // to kStages stages to compute, which hides the atomic's latency). Taking it when the tile
    // began left long tiles waiting behind long tiles at the end of the launch: the index-driven
    // kernel with a dense index at 8K, d = 64, was 29% slower than one CTA per tile (ncu on H100:
    // SMs active 70% of the time instead of 84%).
    int work = static_cast<int>(blockIdx.x);
    for (int iter = 0; work < n_work; ++iter) {
      work_tile(a, work, head, row_tile);
      kv_col = head / a.group * D;
      const int r0 = row_tile * kRows;
      // The index reads of the tile (index-driven): those that depend only on its head and rows
      // go out together, then the first ranges' bounds; a chain of one read after another here
      // is paid at every tile.
      int band_sink = 0, band_local = 0;
      TileCursorT<kN> cur[kC];  // one cursor per 64-row block; a block past N has an empty list
      int rb0[kC], rb1[kC];
      int entries_begin = 0, n_entries = 0;
      if constexpr (!kDense) {
        band_local = a.band_local != nullptr ? __ldg(a.band_local + head) : 0;
        band_sink = a.band_sink != nullptr ? __ldg(a.band_sink + head) : 0;
        if (a.tile_entries != nullptr) n_entries = __ldg(a.tile_entry_counts + head * a.n_row_tiles + row_tile);
        entries_begin = __ldg(a.col_offsets + head * n_row_blocks + kC * row_tile);
#pragma unroll
        for (int c = 0; c < kC; ++c) {
          const int rb = kC * row_tile + c;
          rb0[c] = rb * 64;
          rb1[c] = min(N, rb0[c] + 64) - 1;
          cur[c].range_begin = a.range_begin;
          cur[c].range_end = a.range_end;
          cur[c].cols = a.cols;
          // The cursors walk the ranges only; the gathered columns of the blocks follow.
          cur[c].range_i = cur[c].range_stop = cur[c].col_i = cur[c].col_stop = 0;
          if (rb < n_row_blocks) {
            const int slot = head * n_row_blocks + rb;
            cur[c].range_i = __ldg(a.range_offsets + slot);
            cur[c].range_stop = __ldg(a.range_offsets + slot + 1);
          }
        }
        if (band_local <= 0) band_sink = 0;
#pragma unroll
        for (int c = 0; c < kC; ++c) cur[c].skip_empty_ranges();
      }
      emit_begin(iter % kQBuffers, (iter / kQBuffers) & 1, band_sink, band_local);

      if constexpr (kDense) {
        TileCursorT<kN> cursor;
        cursor.range_begin = cursor.range_end = cursor.cols = nullptr;
        cursor.range_i = 0;
        cursor.range_stop = 1;
        cursor.pos = 0;
        cursor.cur_end = min(N, r0 + kRows);
        cursor.col_i = cursor.col_stop = 0;
        for (;;) {
          const KeyTile t = cursor.next_any();
          if (t.kind == 0) break;
          emit(tile_meta(t, kC));
        }
      } else {
        KeyTile t[kC];
#pragma unroll
        for (int c = 0; c < kC; ++c) t[c] = cur[c].next(rb0[c], rb1[c], band_sink, band_local);
        // Merge by first key; consecutive-key tiles of several blocks that start at the same key
        // are loaded once (a block's ranges are its neighbour's shifted by 64 keys for the a_shape
        // and slash parts, so their tiles coincide). Cutting tiles at absolute 64-key windows
        // instead shared more tiles but cut more of them: vertical_slash(1000,6096) at 32K,
        // d = 128, H100: 15.7 ms vs 13.4. (The cursors are indexed by unrolled constants only,
        // so they stay in registers.)
        for (;;) {
          int lead = -1;  // the block whose tile has the smallest first key (the lowest on ties)
          KeyTile lead_tile{};
#pragma unroll
          for (int c = 0; c < kC; ++c)
            if (t[c].kind != 0 && (lead < 0 || t[c].first < lead_tile.first)) {
              lead = c;
              lead_tile = t[c];
            }
          if (lead < 0) break;
          Meta m = tile_meta(lead_tile, lead);
          bool taken[kC];
#pragma unroll
          for (int c = 0; c < kC; ++c) {
            taken[c] = c == lead || (lead_tile.kind == 1 && t[c].kind == 1 && t[c].start == lead_tile.start);
            if (taken[c] && c != lead) {
              m.lo[c] = t[c].start;
              m.hi[c] = t[c].start + t[c].count;
              m.first[c] = t[c].first;
              m.last[c] = t[c].last;
            }
          }
          emit(m);
#pragma unroll
          for (int c = 0; c < kC; ++c)
            if (taken[c]) t[c] = cur[c].next(rb0[c], rb1[c], band_sink, band_local);
        }
        // Gathered columns of the tile's blocks, merged (each key loaded once), kN per stage; a
        // stage's entries are read while the previous stage is issued.
        const int entries_end = entries_begin + n_entries;
        StageEntries ahead;
        if (n_entries > 0) ahead = read_entries(entries_begin, min(kN, n_entries));
        for (int pos = entries_begin; pos < entries_end; pos += kN) {
          const StageEntries now = ahead;
          if (pos + kN < entries_end) ahead = read_entries(pos + kN, min(kN, entries_end - pos - kN));
          emit_gathered(now, min(kN, entries_end - pos));
        }
      }
      int next_work = n_work;  // loader thread 0 takes it; its latency overlaps the marker's wait
      if (lt == 0 && a.tile_counter != nullptr) next_work = static_cast<int>(gridDim.x) + atomicAdd(a.tile_counter, 1);
      emit_marker(kStageTileEnd);
      if (lt == 0) s_next_work[iter & 1] = next_work;
      named_barrier_sync(3, 128);  // the loader's own barrier: next_work written
      work = s_next_work[iter & 1];
    }
    emit_marker(kStageNoMoreWork);
    asm volatile("cp.async.wait_all;\n" ::: "memory");
    return;
  }

  // -------------------------------------------------------------------- consumers
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(Tr::kConsumerRegs));
  const int consumer = warpgroup - 1;
  const int ct = tid - 128 * warpgroup;  // thread within the warpgroup
  const int warp = ct >> 5, lane = ct & 31;
  const int g = lane >> 2, t4 = lane & 3;
  const float sl2 = a.scale_log2;
  // The work tile being computed (from its "tile begins" stage).
  int head = 0, rc0 = 0, warp_row0 = 0, row_a = 0, row_b = 0;  // rc0: this warpgroup's first row
  int last_row = -1;  // rc0 + 63, or -1 when the warpgroup has no rows (then it computes nothing)
  int band_sink = 0, band_local = 0;
  uint32_t q_desc = 0;  // descriptor low word of this warpgroup's Q tile [64][D]; rows past N are zero
  // Descriptor low words of stage 0's K and V tiles; stage s's are kTileBytes * s bytes further.
  const uint32_t k_desc0 = smem_desc_low(smem_base + Tr::kKOff, 16);
  const uint32_t v_desc0 = smem_desc_low(smem_base + Tr::kVOff, kN * 128);
  float o_acc[D / 8][4];
  float m_run[2], l_run[2];

  // One key tile as the loader described it, plus whether this warpgroup computes it (shared
  // mode: the first warpgroup skips the part of the last tile above its rows).
  // This warpgroup's view of a stage: it computes its first 64 or all kN rows, masked to its keys.
  struct Tile {
    int kind, base, lo, hi, first, last, stage;
    bool work, shared_by_all;
  };
  int stage = 0;
  uint32_t phase = 0;
  int seq = 0;  // stages this warpgroup has taken from the ring (its position in the walk)
  auto advance = [&]() {
    ++seq;
    if (++stage == kStages) {
      stage = 0;
      phase ^= 1;
    }
  };
  auto next_tile = [&]() {
    mbar_wait(full_bar(stage), phase);
    fence_proxy_async();  // cp.async-filled stages are read by wgmma next
    const Meta& m = s_meta[stage];
    Tile t{m.kind, m.base, m.lo[consumer], m.hi[consumer], m.first[consumer], m.last[consumer], stage, false,
           m.shared_by_all != 0};
    if (t.kind == kStageGathered && t.hi > t.lo) {  // gathered keys ascend: bounds of the stage's keys
      t.first = s_keys[stage * kN + t.lo] >> kTileColumnBits;
      t.last = s_keys[stage * kN + t.hi - 1] >> kTileColumnBits;
    }
    // The dense path's first warpgroup skips the part of the last tile above its rows.
    t.work = t.kind != kStageTileEnd && t.hi > t.lo && t.first <= last_row;
    advance();
    return t;
  };
  auto release = [&](const Tile& t) { mbar_arrive(empty_bar(t.stage)); };

  // S[:, kFirst * 8 ..] = Q K^T of the tile's kW keys (issued only: asynchronous until the next
  // wgmma_commit + wgmma_wait).
  auto issue_scores = [&](auto& s, const Tile& t, auto width, auto first_block) {
    constexpr int kW = decltype(width)::value;
    constexpr int kFirst = decltype(first_block)::value;
    const uint32_t k_desc = k_desc0 + t.stage * (Tr::kTileBytes >> 4);
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t koff = (kk & 3) * 32;  // 16 columns = 32 bytes along the panel
      const uint64_t qd = smem_desc_at(q_desc, (kk >> 2) * (64 * 128) + koff);
      const uint64_t kd = smem_desc_at(k_desc, (kk >> 2) * (kN * 128) + koff);
      Wgmma<T, kW>::template ss<kFirst>(s, qd, kd, kk > 0 ? 1 : 0);
    }
  };

  // Masks S[:, kFirst * 8 .. + kW) for tile t: keys of the stage that are not this warpgroup's,
  // keys after the row (causality), keys outside the band.
  auto mask_scores = [&](auto& s, const Tile& t, auto width, auto first_block) {
    constexpr int kW = decltype(width)::value;
    constexpr int kFirst = decltype(first_block)::value;
    const bool band_mask = band_local > 0 && t.last >= band_sink && warp_row0 + 15 - t.first >= band_local;
    // A gathered stage holds the keys of all consumers: masked unless all are everyone's.
    const bool partial = t.kind == kStageKeys ? (t.lo > t.base || t.hi < t.base + kW) : !t.shared_by_all;
    if (!(partial || t.last > warp_row0 || band_mask)) return;
    if (t.kind == kStageKeys) {
      // Consecutive keys: a row keeps the columns of at most two intervals, [lo, min(hi, row + 1))
      // and, under a band, only its part below band_sink and its part from row - band_local + 1
      // on. Bounds per row, shifted by this thread's first column, so that each score costs two
      // or four compares against a constant (instead of rebuilding its key and testing it).
      const int off = t.base + 2 * t4;
      int a1[2], b1[2], a2[2], b2[2];
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int row = h ? row_b : row_a;
        const int lo = t.lo - off, hi = min(t.hi, row + 1) - off;
        a1[h] = lo;
        b1[h] = band_mask ? min(hi, band_sink - off) : hi;
        a2[h] = max(lo, row - band_local + 1 - off);
        b2[h] = hi;
      }
      if (band_mask) {
#pragma unroll
        for (int nb = 0; nb < kW / 8; ++nb)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int c = nb * 8 + (e & 1), h = e >> 1;
            if (!((c >= a1[h] && c < b1[h]) || (c >= a2[h] && c < b2[h]))) s[kFirst + nb][e] = kNegInf;
          }
      } else {
#pragma unroll
        for (int nb = 0; nb < kW / 8; ++nb)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int c = nb * 8 + (e & 1), h = e >> 1;
            if (!(c >= a1[h] && c < b1[h])) s[kFirst + nb][e] = kNegInf;
          }
      }
      return;
    }
    const int* keys = s_keys + t.stage * kN;
#pragma unroll
    for (int nb = 0; nb < kW / 8; ++nb) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int col = nb * 8 + 2 * t4 + (e & 1);
        const int row = (e >> 1) ? row_b : row_a;
        const int entry = keys[col];
        const int key = entry >> kTileColumnBits;
        if (!((entry >> consumer) & 1) || key > row) s[kFirst + nb][e] = kNegInf;
        if (band_mask && key >= band_sink && row - key >= band_local) s[kFirst + nb][e] = kNegInf;
      }
    }
  };

  // O += P V for the scores' 16-key slices kk_first .. kk_first + kW / 16 from tile t's V.
  auto issue_pv = [&](const uint32_t (*p)[4], const Tile& t, auto width, auto first_slice) {
    constexpr int kW = decltype(width)::value;
    constexpr int kFirst = decltype(first_slice)::value;
    const uint32_t v_desc = v_desc0 + t.stage * (Tr::kTileBytes >> 4);
#pragma unroll
    for (int kk = 0; kk < kW / 16; ++kk) {
      const uint64_t vd = smem_desc_at(v_desc, kk * 16 * 128);
      Wgmma<T, D>::rs(o_acc, p[kFirst + kk], vd, 1);
    }
  };

  // A unit of work is one key tile (64 keys of stage t, or 128 of a dense stage) or two
  // consecutive 64-key stages t and u of this warpgroup as one 128-key tile: one softmax step, one
  // O rescale and two waits per 128 keys instead of per 64 (H100, headcal bench sparse, kernel
  // only, a small gain: 128K tokens, vertical_slash(3500,100) 12.2 -> 11.9 ms at d = 128 and
  // 2.83 -> 2.67 at d = 64, block_sparse(100) 34.9 -> 34.1 at d = 128; a_shape(100,800)
  // 7.0 -> 7.2 at d = 128).
  //
  // Dense units are pipelined as in FlashAttention-3 (intra-warpgroup overlap): PV of unit j - 1
  // is issued once the scores of unit j are masked, the softmax of j runs while it is on the
  // tensor cores, and O is rescaled once it has landed; P of unit j - 1 waits in registers and its
  // stage stays held until then (`compute` says why index-driven units are not). Each combination
  // of unit shapes is its own complete wgmma sequence (a wgmma under a condition inside one commit
  // group makes ptxas serialise them).
  enum Unit : int { kNone = 0, kOne64 = 1, kOne128 = 2, kTwo64 = 3 };
  using Zero = std::integral_constant<int, 0>;
  using W64 = std::integral_constant<int, 64>;
  uint32_t p[8][4];  // P of the pending unit: [16-key slice][A fragment], packed pairs
  Tile pend_t{}, pend_u{};
  int pend = kNone;    // the pending unit's shape
  int pend_first = 0;  // its first stage's position in this warpgroup's walk of the ring

  // Issues PV of the pending unit (shape kPend).
  auto issue_pending_pv = [&](auto pend_shape) {
    constexpr int kPend = decltype(pend_shape)::value;
    if constexpr (kPend == kOne64) {
      issue_pv(p, pend_t, W64{}, Zero{});
    } else if constexpr (kPend == kOne128) {
      issue_pv(p, pend_t, std::integral_constant<int, kN>{}, Zero{});
    } else if constexpr (kPend == kTwo64) {
      issue_pv(p, pend_t, W64{}, Zero{});
      issue_pv(p, pend_u, W64{}, std::integral_constant<int, 4>{});
    }
  };
  // Unit (t, u) of shape kUnit after a pending unit of shape kPend.
  auto step = [&](const Tile& t, const Tile& u, int first, auto unit_shape, auto pend_shape) {
    constexpr int kUnit = decltype(unit_shape)::value;
    constexpr int kPend = decltype(pend_shape)::value;
    constexpr int kKeys = kUnit == kOne64 ? 64 : 128;
    using WUnit = std::integral_constant<int, kUnit == kOne128 ? kN : 64>;
    float s[kKeys / 8][4];
    wgmma_fence();
    issue_scores(s, t, WUnit{}, Zero{});
    if constexpr (kUnit == kTwo64) issue_scores(s, u, W64{}, std::integral_constant<int, 8>{});
    wgmma_commit();
    wgmma_wait<0>();
    fence_accumulators<kKeys / 8>(s);
    mask_scores(s, t, WUnit{}, Zero{});
    if constexpr (kUnit == kTwo64) mask_scores(s, u, W64{}, std::integral_constant<int, 8>{});
    // PV of the pending unit goes out only now: the masks branch on per-warp rows, and a wgmma in
    // flight across a branch ptxas cannot prove the warpgroup takes together makes it serialise
    // every wgmma of the kernel (C7520). The softmax below is branch-free.
    if constexpr (kPend != kNone) {
      fence_accumulators<D / 8>(o_acc);
      wgmma_fence();
      issue_pending_pv(pend_shape);
      wgmma_commit();
    }
    float alpha[2];
    softmax_scores(s, m_run[0], m_run[1], l_run[0], l_run[1], sl2, alpha);
    if constexpr (kPend != kNone) {
      wgmma_wait<0>();
      fence_accumulators<D / 8>(o_acc);
      release(pend_t);
      if constexpr (kPend == kTwo64) release(pend_u);
    }
    rescale_o(o_acc, alpha);
    // The S accumulators of two 8-key blocks form one 16-key A fragment.
#pragma unroll
    for (int kk = 0; kk < kKeys / 16; ++kk) {
      p[kk][0] = Mma::pack(s[2 * kk][0], s[2 * kk][1]);
      p[kk][1] = Mma::pack(s[2 * kk][2], s[2 * kk][3]);
      p[kk][2] = Mma::pack(s[2 * kk + 1][0], s[2 * kk + 1][1]);
      p[kk][3] = Mma::pack(s[2 * kk + 1][2], s[2 * kk + 1][3]);
    }
    pend_t = t;
    pend_u = u;
    pend = kUnit;
    pend_first = first;
  };
  // Index-driven units of two stages need more registers than three consumers have (ptxas,
  // nvcc 13.0: 60-112 bytes spilled at 152); with three, a unit is one stage. H100, d = 64,
  // kernel ms, best of three: two-stage units with the spills were 3-4% faster on
  // a_shape(128,3968) at 32K and 128K, 3% slower on a_shape(100,800) at 8K, the other 16
  // points within +-5% (geomean 0.997).
  constexpr bool kTwoStageUnits = kC == 2;
  // The shapes a kernel has: dense units are one stage of 64 or 128 keys, index-driven ones one
  // or two 64-key stages.
  constexpr int kWide = kDense ? kOne128 : kTwo64;
  // Completes the pending unit (shape kPend): PV, then its stages go back. Each shape is its own
  // complete sequence, waits included (a wait after the branches' join serialised every wgmma).
  auto flush_shape = [&](auto pend_shape) {
    constexpr int kPend = decltype(pend_shape)::value;
    fence_accumulators<D / 8>(o_acc);
    wgmma_fence();
    issue_pending_pv(pend_shape);
    wgmma_commit();
    wgmma_wait<0>();
    fence_accumulators<D / 8>(o_acc);
    release(pend_t);
    if constexpr (kPend == kTwo64) release(pend_u);
  };
  auto flush = [&]() {
    if (pend == kOne64) flush_shape(std::integral_constant<int, kOne64>{});
    else if (pend == kWide) flush_shape(std::integral_constant<int, kWide>{});
    pend = kNone;
  };
  // Dense units are pipelined. Index-driven ones complete at once: holding a unit's stages until
  // the next unit's softmax shortens the loader's lead where stages alternate between the
  // warpgroups, which costs the index-driven kernel more than the overlap gains (H100 A/B).
  auto compute = [&](const Tile& t, const Tile& u, int first, auto unit_shape) {
    if constexpr (kDense) {
      if (pend == kNone) step(t, u, first, unit_shape, std::integral_constant<int, kNone>{});
      else if (pend == kOne64) step(t, u, first, unit_shape, std::integral_constant<int, kOne64>{});
      else step(t, u, first, unit_shape, std::integral_constant<int, kWide>{});
    } else {
      step(t, u, first, unit_shape, std::integral_constant<int, kNone>{});
      flush_shape(unit_shape);
      pend = kNone;
    }
  };
  // The next stage, after completing the pending unit if holding it could stall the loader: it
  // refills a ring slot only when all warpgroups have released the stage kStages positions
  // before, so the oldest stage held must be less than kStages positions behind the one awaited.
  auto fetch = [&]() {
    if (pend != kNone && seq - pend_first >= kStages) flush();
    return next_tile();
  };

  for (int iter = 0;; ++iter) {
    // The "tile begins" stage (read here, not in next_tile, which runs for every stage).
    mbar_wait(full_bar(stage), phase);
    {
      const Meta& m = s_meta[stage];
      if (m.kind == kStageNoMoreWork) break;
      head = m.head;
      rc0 = m.row_tile * kRows + 64 * consumer;
      if constexpr (!kDense) {
        band_sink = m.band_sink;
        band_local = m.band_local;
      }
    }
    mbar_arrive(empty_bar(stage));  // Q is in its own buffer
    advance();
    warp_row0 = rc0 + 16 * warp;
    row_a = warp_row0 + g;  // this thread's two rows
    row_b = row_a + 8;
    last_row = rc0 < N ? rc0 + 63 : -1;
    q_desc = smem_desc_low(q_tile(iter % kQBuffers, consumer), 16);
#pragma unroll
    for (int i = 0; i < D / 8; ++i) o_acc[i][0] = o_acc[i][1] = o_acc[i][2] = o_acc[i][3] = 0.f;
    m_run[0] = m_run[1] = kNegInf;
    l_run[0] = l_run[1] = 0.f;

    if constexpr (kDense) {
      for (;;) {
        const int first = seq;
        const Tile t = fetch();
        if (t.kind == kStageTileEnd) {
          release(t);
          break;
        }
        if (!t.work) {
          release(t);
          continue;
        }
        // Rows of the stage this warpgroup needs end at its last row (causality); the first 64
        // suffice more often than not on the diagonal.
        if (min(t.hi, rc0 + 64) - t.base > 64) compute(t, t, first, std::integral_constant<int, kOne128>{});
        else compute(t, t, first, std::integral_constant<int, kOne64>{});
      }
    } else if constexpr (!kTwoStageUnits) {
      // Index-driven, one unit per stage: a narrower 32-key unit for stages whose keys fill only
      // their first 32 rows gains on some vertical-slash indexes but loses as much on a_shape.
      Tile t = fetch();
      while (t.kind != kStageTileEnd) {
        if (t.work) compute(t, t, seq - 1, std::integral_constant<int, kOne64>{});
        else release(t);
        t = fetch();
      }
      release(t);
    } else {
      // Index-driven: a stage this warpgroup computes waits for its partner; when that is this
      // warpgroup's too, both go as one unit (holding t while waiting for u obeys fetch's rule).
      int first = seq;
      Tile t = fetch();
      while (t.kind != kStageTileEnd) {
        if (!t.work) {
          release(t);
          first = seq;
          t = fetch();
          continue;
        }
        // With 8 stages (d = 64) the partner is this warpgroup's next stage: stages of the other
        // warpgroup in between go back at once, as long as t stays less than kStages positions
        // behind the stage awaited (fetch's rule). H100 A/B, kernel only, d = 64: vertical_slash
        // (30,800) -4..-6%, (1000,6096) -2..-4%, block_sparse(100) -1..-3%, others within +-3%;
        // with 5 stages (d = 128) holding t longer cost up to 10% (vertical_slash(30,800), 128K).
        Tile u = fetch();
        if constexpr (kStages >= 8) {
          while (!u.work && u.kind != kStageTileEnd && seq - first < kStages) {
            release(u);
            u = fetch();
          }
        }
        if (u.work) {
          compute(t, u, first, std::integral_constant<int, kTwo64>{});
          first = seq;
          t = fetch();
        } else {
          compute(t, t, first, std::integral_constant<int, kOne64>{});
          first = seq - 1;
          t = u;
        }
      }
      release(t);
    }
    flush();

    // Epilogue: row sums, LSE, O normalised. At d = 128, O goes through this warpgroup's Q tile
    // (free: every QK^T of the tile has completed; the loader refills it only after the q_empty
    // arrive below) and out in 16-byte pieces, whole rows per warp: stored from the accumulators
    // (4 bytes per thread, 8 rows per warp store; ncu: 47% excess sectors) the epilogue took
    // 2,500-4,700 cycles per work tile, ~10% of a_shape(100,800)'s tile time at 32K (H100,
    // clock64 timeline). A/B, kernel only: d = 128 a_shape(100,800) -6..-8%, vertical_slash
    // (3500,100) -3..-4%, dense -1..-3%; at d = 64 the staging lost 0..5% (a_shape(128,3968)
    // +5%), so d = 64 stores from the accumulators.
    if (rc0 < N) {
      float* lse_row = a.lse != nullptr ? a.lse + static_cast<int64_t>(head) * N : nullptr;
      T* o_head = a.o != nullptr ? static_cast<T*>(a.o) + static_cast<int64_t>(head) * D : nullptr;
      if constexpr (D == 128) {
        float inv[2];
        finish_rows(m_run[0], m_run[1], l_run[0], l_run[1], row_a, row_b, t4, N, sl2, lse_row, inv);
        if (o_head != nullptr) {
          const uint32_t o_tile = q_tile(iter % kQBuffers, consumer);  // [64][D] in 64-column panels
          const int ra = row_a - rc0, rb = row_b - rc0;
#pragma unroll
          for (int db = 0; db < D / 8; ++db) {
            st_shared_u32(o_tile + panel_offset<64>(ra, db) + 4 * t4,
                          Mma::pack(o_acc[db][0] * inv[0], o_acc[db][1] * inv[0]));
            st_shared_u32(o_tile + panel_offset<64>(rb, db) + 4 * t4,
                          Mma::pack(o_acc[db][2] * inv[1], o_acc[db][3] * inv[1]));
          }
          named_barrier_sync(4 + consumer, 128);  // this warpgroup's rows are all in the tile
#pragma unroll
          for (int idx = ct; idx < 64 * kChunks; idx += 128) {
            const int r = idx / kChunks, c = idx % kChunks;
            if (rc0 + r < N)
              st_global_16(o_head + static_cast<int64_t>(rc0 + r) * a.o_stride + c * 8,
                           ld_shared_16(o_tile + panel_offset<64>(r, c)));
          }
        }
      } else {
        store_rows<T>(o_acc, m_run[0], m_run[1], l_run[0], l_run[1], row_a, row_b, t4, N, sl2, o_head, a.o_stride,
                      lse_row);
      }
    }
    // Every wgmma reading this Q buffer has completed (flush waited for the last) and the O copy
    // has read it back: the loader may fill it again.
    fence_proxy_async();
    mbar_arrive(q_empty_bar(iter % kQBuffers));
  }
}

}  // namespace hc::kernels::detail

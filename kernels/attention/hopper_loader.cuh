#pragma once
// The Hopper attention kernel's loader warpgroup (internal; see hopper_forward.cuh): for each work
// tile, loads its Q (TMA; index-driven, into one of two Q buffers, so the next tile's Q lands while
// this one's is still read), then walks the key tiles (TileCursorT, up to kN keys each) and fills
// a ring of shared-memory stages: consecutive keys by TMA (bulk tensor copies, two 64-column
// panels per operand at d = 128), gathered columns by 16-byte cp.async (no TMA gather on sm_90).
// A stage's "full" mbarrier completes when its bytes have landed; the consumers hand it back
// through its "empty" mbarrier. The ring carries a "tile begins" stage (head, rows, band) before a
// tile's keys and a "tile ends" stage after them, so the loader runs into the next tile while the
// consumers finish one. setmaxnreg gives it 56 registers (24 in the dense kernel with three
// consumers: HopperShape::kLoaderRegs).
//
// All consumers read the one key stream, so a K/V tile is fetched once for the whole work tile
// (64-row CTAs with streams of their own doubled the L2 traffic: 73% of L2 bandwidth and 35%
// slower; ncu on H100). Two walks, one type each:
//   DenseLoader: one causal range per CTA in 128-key tiles.
//   IndexLoader: the ranges of the CTA's 64-row blocks in the sparse index, walked in merged
//     key order; a consecutive-key tile that several blocks' lists start at the same key is
//     loaded once for all of them (ranges shift by 64 keys from one row block to the next, so
//     their tiles line up), any other tile for its own consumer only (the others skip it). Then
//     the gathered columns of the blocks, merged so that a key several compute is loaded once
//     (tile_columns.h), 64 per stage. Each consumer applies its own keys, causality and band,
//     so C(i) is exact per row.
// Both run as loader.load_tile(work tile, iter), then end_tile() and at the end finish().
#include <cuda.h>  // CUtensorMap

#include <cstdint>

#include "kernels/attention/flash_forward.cuh"     // FlashArgs, KeyTile, TileCursorT
#include "kernels/attention/hopper_layout.cuh"
#include "kernels/attention/hopper_scheduler.cuh"  // WorkTile
#include "kernels/attention/tile_columns_ref.h"    // kTileColumnBits
#include "kernels/hopper_primitives.cuh"

namespace hc::kernels::detail {

// The loader's end of the stage ring, common to both walks: the stage being filled, the work
// tile's Q and "tile begins" stage, consecutive-key stages by TMA, and the end markers.
template <class Tr>
struct LoaderRing {
  using Meta = StageMeta<Tr::kConsumers>;
  static constexpr int kC = Tr::kConsumers;
  static constexpr int kN = Tr::kN;
  static constexpr int D = Tr::kD;

  const FlashArgs& a;
  const HopperSmem<Tr> sm;
  const CUtensorMap* q_map;  // the kernel's __grid_constant__ maps
  const CUtensorMap* k_map;
  const CUtensorMap* v_map;
  const int lt;  // thread within the loader warpgroup
  int stage = 0;  // the next stage to fill
  uint32_t phase = 0;
  int head = 0, row_tile = 0;  // the work tile being loaded
  int kv_col = 0;              // its KV head's first column in K and V: (head / group) * D

  __device__ __forceinline__ LoaderRing(const FlashArgs& args, const HopperSmem<Tr>& smem, const CUtensorMap* q,
                                        const CUtensorMap* k, const CUtensorMap* v, int loader_thread)
      : a(args), sm(smem), q_map(q), k_map(k), v_map(v), lt(loader_thread) {}

  __device__ __forceinline__ void advance() {
    if (++stage == Tr::kStages) {
      stage = 0;
      phase ^= 1;
    }
  }
  __device__ __forceinline__ void set_tile(const WorkTile& w) {
    head = w.head;
    row_tile = w.row_tile;
    kv_col = head / a.group * D;
  }

  // Loads one consecutive-key tile (or the end marker, kind 0) into the next stage for the
  // consumers in `meta` (lo == hi: not theirs).
  __device__ __forceinline__ void emit(const Meta& m) {
    mbar_wait(sm.empty_bar(stage), phase ^ 1);
    if (lt == 0) sm.meta[stage] = m;
    const uint32_t k_dst = sm.k_tile(stage);
    const uint32_t v_dst = sm.v_tile(stage);
    if (m.kind == kStageKeys) {
      // Consecutive keys: one bulk tensor copy per 64-column panel of K and of V, the whole
      // kN-key window from base. Keys outside a consumer's [lo, hi) are real (finite) rows it
      // masks; keys past N arrive as zeros.
      if (lt == 0) {
        mbar_expect_bytes(sm.full_bar(stage), 2 * Tr::kTileBytes);
#pragma unroll
        for (int p = 0; p < D / 64; ++p) {
          tma_load_2d(k_dst + p * kN * 128, k_map, kv_col + 64 * p, m.base, sm.full_bar(stage));
          tma_load_2d(v_dst + p * kN * 128, v_map, kv_col + 64 * p, m.base, sm.full_bar(stage));
        }
      }
    }
    mbar_arrive(sm.full_bar(stage));  // releases the meta write above
    advance();
  }

  // The stage for consecutive-key tile t (or the tile's end, kind 0) of consumer c (or of
  // all, for == kC).
  __device__ __forceinline__ static Meta tile_meta(const KeyTile& t, int for_c) {
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
  }

  // A work tile begins: its Q (each consumer's 64 rows; rows past N arrive as zeros, a
  // consumer with none is not loaded) into Q buffer buf, once the consumers have freed it
  // (kQBuffers tiles ago), and the tile's head, rows and band.
  __device__ __forceinline__ void emit_begin(int buf, uint32_t buf_phase, int band_sink, int band_local) {
    mbar_wait(sm.q_empty_bar(buf), buf_phase ^ 1);
    mbar_wait(sm.empty_bar(stage), phase ^ 1);
    if (lt == 0) {
      Meta m;
      m.kind = kStageTileBegin;
      m.head = head;
      m.row_tile = row_tile;
      m.band_sink = band_sink;
      m.band_local = band_local;
      sm.meta[stage] = m;
      const int r0 = row_tile * Tr::kRows;
      const int consumers_with_rows = min(kC, (a.n_tokens - r0 + 63) / 64);
      mbar_expect_bytes(sm.full_bar(stage), consumers_with_rows * Tr::kQBytes);
      for (int c = 0; c < consumers_with_rows; ++c)
#pragma unroll
        for (int p = 0; p < D / 64; ++p)
          tma_load_2d(sm.q_tile(buf, c) + p * 64 * 128, q_map, head * D + 64 * p, r0 + 64 * c, sm.full_bar(stage));
    }
    mbar_arrive(sm.full_bar(stage));
    advance();
  }
  // The "tile begins" stage of the iter-th work tile of this CTA: Q buffer iter % kQBuffers.
  __device__ __forceinline__ void emit_begin(int iter, int band_sink, int band_local) {
    emit_begin(iter % Tr::kQBuffers, (iter / Tr::kQBuffers) & 1, band_sink, band_local);
  }
  __device__ __forceinline__ void emit_marker(int kind) {
    KeyTile none;
    none.kind = 0;
    none.start = none.count = none.first = 0;
    none.last = -1;
    Meta m = tile_meta(none, kC);
    m.kind = kind;
    emit(m);
  }

  // The work tile's keys are all issued: its "tile ends" stage.
  __device__ __forceinline__ void end_tile() { emit_marker(kStageTileEnd); }
  // No more work: the consumers leave, and the loader once its copies have landed.
  __device__ __forceinline__ void finish() {
    emit_marker(kStageNoMoreWork);
    cp_async_wait_all();
  }
};

// The dense walk: keys [0, the work tile's last row] in kN-key tiles, every stage for every
// consumer (each masks the keys after its rows).
template <class Tr>
struct DenseLoader : LoaderRing<Tr> {
  using Ring = LoaderRing<Tr>;
  static_assert(Tr::kIsDense, "DenseLoader is the dense kernel's");

  __device__ __forceinline__ DenseLoader(const FlashArgs& args, const HopperSmem<Tr>& smem, const CUtensorMap* q,
                                         const CUtensorMap* k, const CUtensorMap* v, int loader_thread)
      : Ring(args, smem, q, k, v, loader_thread) {}

  // iter: the work tile's position in this CTA's walk.
  __device__ __forceinline__ void load_tile(const WorkTile& w, int iter) {
    this->set_tile(w);
    const int r0 = w.row_tile * Tr::kRows;
    this->emit_begin(iter, 0, 0);
    TileCursorT<Tr::kN> cursor;
    cursor.range_begin = cursor.range_end = cursor.cols = nullptr;
    cursor.range_i = 0;
    cursor.range_stop = 1;
    cursor.pos = 0;
    cursor.cur_end = min(this->a.n_tokens, r0 + Tr::kRows);
    cursor.col_i = cursor.col_stop = 0;
    for (;;) {
      const KeyTile t = cursor.next_any();
      if (t.kind == 0) break;
      this->emit(Ring::tile_meta(t, Tr::kConsumers));
    }
  }
};

// The index-driven walk: the row blocks' ranges merged by key, then their merged gathered columns.
template <typename T, class Tr>
struct IndexLoader : LoaderRing<Tr> {
  using Ring = LoaderRing<Tr>;
  using typename Ring::Meta;
  using Ring::a;
  using Ring::emit;
  using Ring::kv_col;
  using Ring::lt;
  using Ring::phase;
  using Ring::sm;
  using Ring::stage;
  static constexpr int kC = Tr::kConsumers;
  static constexpr int kN = Tr::kN;
  static constexpr int kChunks = Tr::kD / 8;          // 16-byte chunks per row
  static constexpr int kAllConsumers = (1 << kC) - 1;  // membership bits of a key every consumer computes
  static constexpr int kRowsPerPass = 128 / kChunks;   // gathered keys per pass of the warpgroup
  static_assert(!Tr::kIsDense, "IndexLoader is the index-driven kernel's");
  static_assert(kN == 64, "warp 0 holds a stage's 64 entries, two per lane");

  const int n_row_blocks;  // 64-row blocks of the sequence (the index's slots per head)

  __device__ __forceinline__ IndexLoader(const FlashArgs& args, const HopperSmem<Tr>& smem, const CUtensorMap* q,
                                         const CUtensorMap* k, const CUtensorMap* v, int loader_thread)
      : Ring(args, smem, q, k, v, loader_thread), n_row_blocks((args.n_tokens + 63) / 64) {}

  // Gathered columns (no TMA gather on sm_90): 16-byte cp.async per thread, each thread one
  // column chunk of every kRowsPerPass-th key of the stage. Warp 0 reads a stage's entries
  // (key << kTileColumnBits | which consumers compute it, FlashArgs::tile_entries) one stage
  // ahead, so the loader does not wait a global-memory latency per stage
  // (vertical_slash(3500,100) at 128K, kernel only, H100: 21.4 -> 16.1 ms at d = 128, 5.09 ->
  // 3.52 at d = 64), and hands them to the other warps through the stage's key list (registers
  // for all 64 per thread spilled).
  struct StageEntries {
    int low, high;  // warp 0: entries of rows lane and lane + 32 (0: none)
  };
  __device__ __forceinline__ StageEntries read_entries(int pos, int count) const {
    StageEntries e{0, 0};
    if (lt < 32) {
      if (lt < count) e.low = __ldg(a.tile_entries + pos + lt);
      if (lt + 32 < count) e.high = __ldg(a.tile_entries + pos + lt + 32);
    }
    return e;
  }
  // Loads `count` gathered keys; rows past the count are zero-filled (a stale V row times P = 0
  // could be NaN). A consumer none of whose keys is in the stage skips it.
  __device__ __forceinline__ void emit_gathered(const StageEntries& e, int count) {
    mbar_wait(sm.empty_bar(stage), phase ^ 1);
    int* entries = sm.keys + stage * kN;  // [kN]
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
        sm.meta[stage] = m;
      }
    }
    named_barrier_sync(kLoaderBarrier, 128);  // entries written
    const uint32_t k_dst = sm.k_tile(stage);
    const uint32_t v_dst = sm.v_tile(stage);
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
    mbar_arrive_on_cp_async(sm.full_bar(stage));
    mbar_arrive(sm.full_bar(stage));  // releases the meta/entries writes above
    this->advance();
  }

  // iter: the work tile's position in this CTA's walk.
  __device__ __forceinline__ void load_tile(const WorkTile& w, int iter) {
    this->set_tile(w);
    const int head = w.head, row_tile = w.row_tile;
    const int N = a.n_tokens;
    // The index reads of the tile: those that depend only on its head and rows go out together,
    // then the first ranges' bounds; a chain of one read after another here is paid at every tile.
    int band_sink = 0, band_local = 0;
    TileCursorT<kN> cur[kC];  // one cursor per 64-row block; a block past N has an empty list
    int rb0[kC], rb1[kC];     // the blocks' first and last rows
    band_local = a.band_local != nullptr ? __ldg(a.band_local + head) : 0;
    band_sink = a.band_sink != nullptr ? __ldg(a.band_sink + head) : 0;
    int n_entries = 0;
    if (a.tile_entries != nullptr) n_entries = __ldg(a.tile_entry_counts + head * a.n_row_tiles + row_tile);
    const int entries_begin = __ldg(a.col_offsets + head * n_row_blocks + kC * row_tile);
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
    this->emit_begin(iter, band_sink, band_local);

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
      Meta m = Ring::tile_meta(lead_tile, lead);
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
};

}  // namespace hc::kernels::detail

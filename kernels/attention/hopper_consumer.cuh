#pragma once
// The Hopper attention kernel's consumer warpgroups (internal; see hopper_forward.cuh).
// Warpgroups 1 .. kConsumers compute rows r0 + 64 c .. r0 + 64 c + 63 of the work tile for
// consumer c: S = Q K^T with wgmma (Q and K from shared memory), online softmax in registers,
// O += P V with wgmma (P from registers, V from shared memory). A tile of up to 64 keys is
// computed 64 wide, a longer one (or, index-driven, two consecutive 64-key stages of the same
// consumer) 128 wide. Dense: PV of one key tile runs under the next tile's softmax (see
// `compute`). setmaxnreg gives each the rest of the registers (224 with two consumers, 152 with
// three). After a tile's last stage a consumer frees its Q buffer and writes O and LSE while the
// loader is already filling the ring with the next tile.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/attention/flash_forward.cuh"   // FlashArgs, MmaOp, softmax_scores, finish_rows
#include "kernels/attention/hopper_layout.cuh"
#include "kernels/attention/tile_columns_ref.h"  // kTileColumnBits
#include "kernels/attention/wgmma_ops.cuh"
#include "kernels/hopper_primitives.cuh"

namespace hc::kernels::detail {

// A consumer thread's register-resident fragments: the rows' softmax state, O, P of the pending
// unit. An object of their own (the kernel's local), which HopperConsumer refers to: as members
// of the consumer (softmax_scores takes the row state's addresses) nvcc 13.0 compiles the kernel
// to up to 2.3% more SASS instructions and 4 more bytes of spills at d = 128.
template <int D>
struct ConsumerFragments {
  float m_run[2], l_run[2];  // running max (raw scores) and partial sum of the thread's two rows
  float o_acc[D / 8][4];     // O [64][D] as the wgmma accumulator fragment (wgmma_ops.cuh)
  uint32_t p[8][4];          // P of the pending unit: [16-key slice][A fragment], packed pairs
};

template <typename T, class Tr>
struct HopperConsumer {
  using Mma = MmaOp<T>;
  using Meta = StageMeta<Tr::kConsumers>;
  static constexpr int D = Tr::kD;
  static constexpr bool kDense = Tr::kIsDense;
  static constexpr int kN = Tr::kN;
  static constexpr int kStages = Tr::kStages;
  static constexpr int kC = Tr::kConsumers;
  static constexpr int kRows = Tr::kRows;
  static constexpr int kQBuffers = Tr::kQBuffers;
  static constexpr int kChunks = D / 8;  // 16-byte chunks per row
  static constexpr float kNegInf = -__builtin_huge_valf();

  // One key tile as the loader described it, plus whether this warpgroup computes it (shared
  // mode: the first warpgroup skips the part of the last tile above its rows).
  // This warpgroup's view of a stage: it computes its first 64 or all kN rows, masked to its keys.
  struct Tile {
    int kind, base, lo, hi, first, last, stage;
    bool work, shared_by_all;
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
  // Index-driven units of two stages need more registers than three consumers have (ptxas,
  // nvcc 13.0: 60-112 bytes spilled at 152); with three, a unit is one stage. H100, d = 64,
  // kernel ms, best of three: two-stage units with the spills were 3-4% faster on
  // a_shape(128,3968) at 32K and 128K, 3% slower on a_shape(100,800) at 8K, the other 16
  // points within +-5% (geomean 0.997).
  static constexpr bool kTwoStageUnits = kC == 2;
  // The shapes a kernel has: dense units are one stage of 64 or 128 keys, index-driven ones one
  // or two 64-key stages.
  static constexpr int kWide = kDense ? kOne128 : kTwo64;

  const FlashArgs& a;
  const HopperSmem<Tr> sm;
  const int consumer;     // 0 .. kC - 1, in warpgroup consumer + 1
  const int ct;           // thread within the warpgroup
  const int warp, g, t4;  // warp of the warpgroup; the thread's rows g, g + 8 and column pair t4
  const int N;            // tokens
  const float sl2;        // softmax scale * log2(e)
  float (&m_run)[2];      // ConsumerFragments
  float (&l_run)[2];
  float (&o_acc)[D / 8][4];
  uint32_t (&p)[8][4];
  // Descriptor low words of stage 0's K and V tiles; stage s's are kTileBytes * s bytes further.
  const uint32_t k_desc0, v_desc0;

  // The work tile being computed (from its "tile begins" stage).
  int head = 0, rc0 = 0, warp_row0 = 0, row_a = 0, row_b = 0;  // rc0: this warpgroup's first row
  int last_row = -1;  // rc0 + 63, or -1 when the warpgroup has no rows (then it computes nothing)
  int band_sink = 0, band_local = 0;
  uint32_t q_desc = 0;  // descriptor low word of this warpgroup's Q tile [64][D]; rows past N are zero

  int stage = 0;  // the next stage to take from the ring
  uint32_t phase = 0;
  int seq = 0;  // stages this warpgroup has taken from the ring (its position in the walk)

  Tile pend_t{}, pend_u{};  // the pending unit's stages (P in p)
  int pend = kNone;    // the pending unit's shape
  int pend_first = 0;  // its first stage's position in this warpgroup's walk of the ring

  // consumer_index: warpgroup - 1; thread: the thread within the warpgroup.
  __device__ __forceinline__ HopperConsumer(const FlashArgs& args, const HopperSmem<Tr>& smem, int consumer_index,
                                            int thread, ConsumerFragments<D>& f)
      : a(args),
        sm(smem),
        consumer(consumer_index),
        ct(thread),
        warp(ct >> 5),
        g((ct & 31) >> 2),
        t4((ct & 31) & 3),
        N(args.n_tokens),
        sl2(args.scale_log2),
        m_run(f.m_run),
        l_run(f.l_run),
        o_acc(f.o_acc),
        p(f.p),
        k_desc0(smem_desc_low(smem.k_tile(0), 16)),
        v_desc0(smem_desc_low(smem.v_tile(0), kN * 128)) {}

  // ---- The ring ---------------------------------------------------------------------------------

  __device__ __forceinline__ void advance() {
    ++seq;
    if (++stage == kStages) {
      stage = 0;
      phase ^= 1;
    }
  }
  __device__ __forceinline__ Tile next_tile() {
    mbar_wait(sm.full_bar(stage), phase);
    fence_proxy_async();  // cp.async-filled stages are read by wgmma next
    const Meta& m = sm.meta[stage];
    Tile t{m.kind, m.base, m.lo[consumer], m.hi[consumer], m.first[consumer], m.last[consumer], stage, false,
           m.shared_by_all != 0};
    if (t.kind == kStageGathered && t.hi > t.lo) {  // gathered keys ascend: bounds of the stage's keys
      t.first = sm.keys[stage * kN + t.lo] >> kTileColumnBits;
      t.last = sm.keys[stage * kN + t.hi - 1] >> kTileColumnBits;
    }
    // The dense path's first warpgroup skips the part of the last tile above its rows.
    t.work = t.kind != kStageTileEnd && t.hi > t.lo && t.first <= last_row;
    advance();
    return t;
  }
  __device__ __forceinline__ void release(const Tile& t) { mbar_arrive(sm.empty_bar(t.stage)); }

  // ---- QK^T, masks, PV --------------------------------------------------------------------------

  // S[:, kFirst * 8 ..] = Q K^T of the tile's kW keys (issued only: asynchronous until the next
  // wgmma_commit + wgmma_wait).
  template <int kW, int kFirst, int kNb>
  __device__ __forceinline__ void issue_scores(float (&s)[kNb][4], const Tile& t) {
    const uint32_t k_desc = k_desc0 + t.stage * (Tr::kTileBytes >> 4);
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      const uint32_t koff = (kk & 3) * 32;  // 16 columns = 32 bytes along the panel
      const uint64_t qd = smem_desc_at(q_desc, (kk >> 2) * (64 * 128) + koff);
      const uint64_t kd = smem_desc_at(k_desc, (kk >> 2) * (kN * 128) + koff);
      Wgmma<T, kW>::template ss<kFirst>(s, qd, kd, kk > 0 ? 1 : 0);
    }
  }

  // Masks S[:, kFirst * 8 .. + kW) for tile t: keys of the stage that are not this warpgroup's,
  // keys after the row (causality), keys outside the band.
  template <int kW, int kFirst, int kNb>
  __device__ __forceinline__ void mask_scores(float (&s)[kNb][4], const Tile& t) {
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
    const int* keys = sm.keys + t.stage * kN;
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
  }

  // O += P V for P's 16-key slices kFirst .. kFirst + kW / 16 from tile t's V.
  template <int kW, int kFirst>
  __device__ __forceinline__ void issue_pv(const Tile& t) {
    const uint32_t v_desc = v_desc0 + t.stage * (Tr::kTileBytes >> 4);
#pragma unroll
    for (int kk = 0; kk < kW / 16; ++kk) {
      const uint64_t vd = smem_desc_at(v_desc, kk * 16 * 128);
      Wgmma<T, D>::rs(o_acc, p[kFirst + kk], vd, 1);
    }
  }

  // ---- Units: scores, softmax and the pending unit's PV -----------------------------------------

  // Issues PV of the pending unit (shape kPend).
  template <int kPend>
  __device__ __forceinline__ void issue_pending_pv() {
    if constexpr (kPend == kOne64) {
      issue_pv<64, 0>(pend_t);
    } else if constexpr (kPend == kOne128) {
      issue_pv<kN, 0>(pend_t);
    } else if constexpr (kPend == kTwo64) {
      issue_pv<64, 0>(pend_t);
      issue_pv<64, 4>(pend_u);
    }
  }
  // Unit (t, u) of shape kUnit after a pending unit of shape kPend.
  template <int kUnit, int kPend>
  __device__ __forceinline__ void step(const Tile& t, const Tile& u, int first) {
    constexpr int kKeys = kUnit == kOne64 ? 64 : 128;
    constexpr int kWUnit = kUnit == kOne128 ? kN : 64;
    float s[kKeys / 8][4];  // S [64][kKeys] as the wgmma accumulator fragment
    wgmma_fence();
    issue_scores<kWUnit, 0>(s, t);
    if constexpr (kUnit == kTwo64) issue_scores<64, 8>(s, u);
    wgmma_commit();
    wgmma_wait<0>();
    fence_accumulators<kKeys / 8>(s);
    mask_scores<kWUnit, 0>(s, t);
    if constexpr (kUnit == kTwo64) mask_scores<64, 8>(s, u);
    // PV of the pending unit goes out only now: the masks branch on per-warp rows, and a wgmma in
    // flight across a branch ptxas cannot prove the warpgroup takes together makes it serialise
    // every wgmma of the kernel (C7520). The softmax below is branch-free.
    if constexpr (kPend != kNone) {
      fence_accumulators<D / 8>(o_acc);
      wgmma_fence();
      issue_pending_pv<kPend>();
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
  }
  // Completes the pending unit (shape kPend): PV, then its stages go back. Each shape is its own
  // complete sequence, waits included (a wait after the branches' join serialised every wgmma).
  template <int kPend>
  __device__ __forceinline__ void flush_shape() {
    fence_accumulators<D / 8>(o_acc);
    wgmma_fence();
    issue_pending_pv<kPend>();
    wgmma_commit();
    wgmma_wait<0>();
    fence_accumulators<D / 8>(o_acc);
    release(pend_t);
    if constexpr (kPend == kTwo64) release(pend_u);
  }
  __device__ __forceinline__ void flush() {
    if (pend == kOne64) flush_shape<kOne64>();
    else if (pend == kWide) flush_shape<kWide>();
    pend = kNone;
  }
  // Dense units are pipelined. Index-driven ones complete at once: holding a unit's stages until
  // the next unit's softmax shortens the loader's lead where stages alternate between the
  // warpgroups, which costs the index-driven kernel more than the overlap gains (H100 A/B).
  template <int kUnit>
  __device__ __forceinline__ void compute(const Tile& t, const Tile& u, int first) {
    if constexpr (kDense) {
      if (pend == kNone) step<kUnit, kNone>(t, u, first);
      else if (pend == kOne64) step<kUnit, kOne64>(t, u, first);
      else step<kUnit, kWide>(t, u, first);
    } else {
      step<kUnit, kNone>(t, u, first);
      flush_shape<kUnit>();
      pend = kNone;
    }
  }
  // The next stage, after completing the pending unit if holding it could stall the loader: it
  // refills a ring slot only when all warpgroups have released the stage kStages positions
  // before, so the oldest stage held must be less than kStages positions behind the one awaited.
  __device__ __forceinline__ Tile fetch() {
    if (pend != kNone && seq - pend_first >= kStages) flush();
    return next_tile();
  }

  // ---- The walks of a work tile's stages --------------------------------------------------------

  __device__ __forceinline__ void walk_dense() {
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
      if (min(t.hi, rc0 + 64) - t.base > 64) compute<kOne128>(t, t, first);
      else compute<kOne64>(t, t, first);
    }
  }
  // Index-driven, one unit per stage: a narrower 32-key unit for stages whose keys fill only
  // their first 32 rows gains on some vertical-slash indexes but loses as much on a_shape.
  __device__ __forceinline__ void walk_index_single() {
    Tile t = fetch();
    while (t.kind != kStageTileEnd) {
      if (t.work) compute<kOne64>(t, t, seq - 1);
      else release(t);
      t = fetch();
    }
    release(t);
  }
  // Index-driven: a stage this warpgroup computes waits for its partner; when that is this
  // warpgroup's too, both go as one unit (holding t while waiting for u obeys fetch's rule).
  __device__ __forceinline__ void walk_index_paired() {
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
        compute<kTwo64>(t, u, first);
        first = seq;
        t = fetch();
      } else {
        compute<kOne64>(t, t, first);
        first = seq - 1;
        t = u;
      }
    }
    release(t);
  }

  // ---- A work tile ------------------------------------------------------------------------------

  // Takes the "tile begins" stage of the iter-th work tile (read here, not in next_tile, which
  // runs for every stage); false when the CTA has no more work.
  __device__ __forceinline__ bool begin_tile(int iter) {
    mbar_wait(sm.full_bar(stage), phase);
    {
      const Meta& m = sm.meta[stage];
      if (m.kind == kStageNoMoreWork) return false;
      head = m.head;
      rc0 = m.row_tile * kRows + 64 * consumer;
      if constexpr (!kDense) {
        band_sink = m.band_sink;
        band_local = m.band_local;
      }
    }
    mbar_arrive(sm.empty_bar(stage));  // Q is in its own buffer
    advance();
    warp_row0 = rc0 + 16 * warp;
    row_a = warp_row0 + g;  // this thread's two rows
    row_b = row_a + 8;
    last_row = rc0 < N ? rc0 + 63 : -1;
    q_desc = smem_desc_low(sm.q_tile(iter % kQBuffers, consumer), 16);
#pragma unroll
    for (int i = 0; i < D / 8; ++i) o_acc[i][0] = o_acc[i][1] = o_acc[i][2] = o_acc[i][3] = 0.f;
    m_run[0] = m_run[1] = kNegInf;
    l_run[0] = l_run[1] = 0.f;
    return true;
  }

  // Epilogue: row sums, LSE, O normalised. At d = 128, O goes through this warpgroup's Q tile
  // (free: every QK^T of the tile has completed; the loader refills it only after the q_empty
  // arrive in end_tile) and out in 16-byte pieces, whole rows per warp: stored from the
  // accumulators (4 bytes per thread, 8 rows per warp store; ncu: 47% excess sectors) the
  // epilogue took 2,500-4,700 cycles per work tile, ~10% of a_shape(100,800)'s tile time at 32K
  // (H100, clock64 timeline). A/B, kernel only: d = 128 a_shape(100,800) -6..-8%, vertical_slash
  // (3500,100) -3..-4%, dense -1..-3%; at d = 64 the staging lost 0..5% (a_shape(128,3968)
  // +5%), so d = 64 stores from the accumulators.
  __device__ __forceinline__ void epilogue(int iter) {
    if (rc0 >= N) return;
    float* lse_row = a.lse != nullptr ? a.lse + static_cast<int64_t>(head) * N : nullptr;
    T* o_head = a.o != nullptr ? static_cast<T*>(a.o) + static_cast<int64_t>(head) * D : nullptr;
    if constexpr (D == 128) {
      float inv[2];
      finish_rows(m_run[0], m_run[1], l_run[0], l_run[1], row_a, row_b, t4, N, sl2, lse_row, inv);
      if (o_head != nullptr) {
        const uint32_t o_tile = sm.q_tile(iter % kQBuffers, consumer);  // [64][D] in 64-column panels
        const int ra = row_a - rc0, rb = row_b - rc0;
#pragma unroll
        for (int db = 0; db < D / 8; ++db) {
          st_shared_u32(o_tile + panel_offset<64>(ra, db) + 4 * t4,
                        Mma::pack(o_acc[db][0] * inv[0], o_acc[db][1] * inv[0]));
          st_shared_u32(o_tile + panel_offset<64>(rb, db) + 4 * t4,
                        Mma::pack(o_acc[db][2] * inv[1], o_acc[db][3] * inv[1]));
        }
        named_barrier_sync(kEpilogueBarrier + consumer, 128);  // this warpgroup's rows are all in the tile
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
  __device__ __forceinline__ void end_tile(int iter) {
    fence_proxy_async();
    mbar_arrive(sm.q_empty_bar(iter % kQBuffers));
  }

  __device__ __forceinline__ void run() {
    for (int iter = 0; begin_tile(iter); ++iter) {
      if constexpr (kDense) walk_dense();
      else if constexpr (!kTwoStageUnits) walk_index_single();
      else walk_index_paired();
      flush();
      epilogue(iter);
      end_tile(iter);
    }
  }
};

}  // namespace hc::kernels::detail

#pragma once
// headcal's mma.sync attention kernel (internal; launched by attention.cu): probe mode, and the
// dense and index-driven runs under HEADCAL_ATTN_KERNEL=mma. The default for those is the Hopper
// kernel of hopper_forward.cuh, whose loaders (hopper_loader.cuh) reuse KeyTile and TileCursorT from here.
//
// FlashAttention-2-style forward: each CTA owns kRows = 16 * kM * kWarps query rows of one head,
// each warp 16 * kM rows as mma.sync m16n8k16 fragments (fp32 accumulators; Q in registers when
// kM = 1, re-read from shared memory when kM = 2). Dense: 4 warps x 32 rows; index-driven: one
// 64-row block per CTA, 4 warps x 16 rows.
// Keys come in tiles of 64 rows, double-buffered in shared memory through cp.async, so the
// loads of tile j+1 run under the tensor-core work of tile j. A tile is either 64 consecutive
// keys of a range, or up to 64 gathered columns; the per-CTA tile list is walked from the sparse
// index (or, for the dense fast path, from the single causal range [0, r0 + kRows)).
// Masks (causal, partial tile) are applied only on tiles that need them.
//
// Shared memory rows are 128 or 256 bytes; 16-byte chunk c of row r is stored at chunk
// c ^ (r & 7), so the 8 rows an ldmatrix phase reads hit 8 different bank groups.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "kernels/device_primitives.cuh"  // smem_addr, cp.async, kLog2e

namespace hc::kernels::detail {

struct FlashArgs {
  const void* q;  // [N, H, D], row stride q_stride
  const void* k;  // [N, Hkv, D], row stride k_stride
  const void* v;  // [N, Hkv, D], row stride v_stride
  void* o;        // [N, H, D], row stride o_stride (may be null)
  float* lse;     // [H, N] (may be null)
  int n_tokens;
  int n_heads;
  int group;  // n_heads / n_kv_heads
  int n_row_tiles;
  // Hopper index-driven kernel only: 1 = CTAs of one KV group run together (row tiles of the
  // group's heads, longest first), 0 = the heads of one row tile run together (the dense order).
  int kv_group_order;
  // Hopper kernel: persistent CTAs take work tiles gridDim.x, gridDim.x + 1, ... from
  // tile_counter[0]; tile_counter[1] counts the CTAs done. Both are zero at launch and the kernel
  // leaves them zero (TileScheduler::retire).
  int* tile_counter;  // [2]
  int64_t q_stride, k_stride, v_stride, o_stride;
  float scale_log2;  // softmax scale * log2(e)
  // Sparse index (device), slot = head * n_row_blocks + row_block; unused on the dense path.
  const int32_t* range_offsets;
  const int32_t* range_begin;
  const int32_t* range_end;
  const int32_t* col_offsets;
  const int32_t* cols;
  const int32_t* band_sink;   // [H] or null
  const int32_t* band_local;  // [H] or null; 0 = no band on that head
  // Hopper index-driven kernel: each work tile's gathered columns, merged (tile_columns_ref.h);
  // null when the index has none.
  const int32_t* tile_entries;       // at col_offsets[head * n_row_blocks + blocks per tile * row_tile]
  const int32_t* tile_entry_counts;  // [H * n_row_tiles]
  // Probe mode.
  const float* probe_lse;               // [H, N]
  double* probe_recall;                 // [H] (raw sums; divided by N afterwards)
  unsigned long long* probe_pairs;      // [H]
};

constexpr int kKeyTile = 64;

// Pulls a line into L1 ahead of use (no fault, no register).
__device__ __forceinline__ void prefetch_l1(const void* p) {
  asm volatile("prefetch.global.L1 [%0];\n" ::"l"(p));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}

template <typename T>
struct MmaOp;
template <>
struct MmaOp<__nv_bfloat16> {
  __device__ __forceinline__ static void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  __device__ __forceinline__ static uint32_t pack(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
};
template <>
struct MmaOp<__half> {
  __device__ __forceinline__ static void run(float (&c)[4], const uint32_t (&a)[4], uint32_t b0,
                                             uint32_t b1) {
    asm volatile(
        "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};\n"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
  }
  __device__ __forceinline__ static uint32_t pack(float lo, float hi) {
    __half2 v = __floats2half2_rn(lo, hi);
    return *reinterpret_cast<uint32_t*>(&v);
  }
};

// ---- Per-thread row math shared by both kernels ------------------------------------------------
// A thread of an m16 fragment (mma.sync per warp, or wgmma per warp of a warpgroup) owns two rows,
// g and g + 8: score element s[nb][e] belongs to row e >> 1, O element o[db][e] likewise.

// 2^x on the special-function unit, subnormal results flushed to zero: P values below 2^-126
// (relative to the row max, 1) add nothing to a sum of at least 1. exp2f without -ftz adds a
// compare and two multiplies per element (32 of each per thread per 64-key tile).
__device__ __forceinline__ float exp2_ftz(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// The score half of an online-softmax step (base 2) over a tile of raw scores s: updates the
// rows' running max m (raw score units) and per-thread partial sums l, turns s into
// P = exp2(s * sl2 - m * sl2) and returns in alpha the factors O must be rescaled by (the change
// of max). Split from the O half so that a pipelined kernel can run it while O is still being
// accumulated by the tensor cores.
template <int kNb>
__device__ __forceinline__ void softmax_scores(float (&s)[kNb][4], float& m0, float& m1, float& l0, float& l1,
                                               float sl2, float (&alpha)[2]) {
  constexpr float kNegInf = -__builtin_huge_valf();
  float* m_run[2] = {&m0, &m1};
  float mx[2] = {m0, m1};
#pragma unroll
  for (int nb = 0; nb < kNb; ++nb) {
    mx[0] = fmaxf(mx[0], fmaxf(s[nb][0], s[nb][1]));
    mx[1] = fmaxf(mx[1], fmaxf(s[nb][2], s[nb][3]));
  }
  float ref[2];
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
    mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
    // A row with no unmasked key so far keeps m = -inf; subtracting 0 then avoids inf - inf.
    ref[i] = mx[i] == kNegInf ? 0.f : mx[i] * sl2;
    // An unchanged max rescales by exactly 1 (a fully masked tile leaves the row untouched).
    alpha[i] = mx[i] == *m_run[i] ? 1.f : exp2_ftz(*m_run[i] * sl2 - ref[i]);
    *m_run[i] = mx[i];
  }
  float row_sum[2] = {0.f, 0.f};
#pragma unroll
  for (int nb = 0; nb < kNb; ++nb) {
    s[nb][0] = exp2_ftz(fmaf(s[nb][0], sl2, -ref[0]));
    s[nb][1] = exp2_ftz(fmaf(s[nb][1], sl2, -ref[0]));
    s[nb][2] = exp2_ftz(fmaf(s[nb][2], sl2, -ref[1]));
    s[nb][3] = exp2_ftz(fmaf(s[nb][3], sl2, -ref[1]));
    row_sum[0] += s[nb][0] + s[nb][1];
    row_sum[1] += s[nb][2] + s[nb][3];
  }
  l0 = l0 * alpha[0] + row_sum[0];
  l1 = l1 * alpha[1] + row_sum[1];
}

// The O half: rescales O by alpha. Once the running maxima settle, most tiles leave every row's
// max unchanged (alpha = 1): the warp then skips the D/2 multiplies (warp-uniform; the result is
// bit-identical).
template <int kDb>
__device__ __forceinline__ void rescale_o(float (&o)[kDb][4], const float (&alpha)[2]) {
  if (__any_sync(0xffffffffu, alpha[0] != 1.f || alpha[1] != 1.f)) {
#pragma unroll
    for (int db = 0; db < kDb; ++db) {
      o[db][0] *= alpha[0];
      o[db][1] *= alpha[0];
      o[db][2] *= alpha[1];
      o[db][3] *= alpha[1];
    }
  }
}

// One online-softmax step: both halves.
template <int kNb, int kDb>
__device__ __forceinline__ void online_softmax_step(float (&s)[kNb][4], float& m0, float& m1, float& l0,
                                                    float& l1, float (&o)[kDb][4], float sl2) {
  float alpha[2];
  softmax_scores(s, m0, m1, l0, l1, sl2, alpha);
  rescale_o(o, alpha);
}

// The rows' totals: completes the row sums over the quad, writes the natural-log LSE (lse_row =
// head's row of lse, may be null; rows >= N are not written, a row with no key gets -inf) and
// returns the factors that normalise O (0 for a row with no key, whose O is then 0).
__device__ __forceinline__ void finish_rows(float m0, float m1, float l0, float l1, int row_a, int row_b, int t4,
                                            int N, float sl2, float* lse_row, float (&inv)[2]) {
  constexpr float kNegInf = -__builtin_huge_valf();
  constexpr float kLn2 = 0.6931471805599453f;
  l0 += __shfl_xor_sync(0xffffffffu, l0, 1);
  l0 += __shfl_xor_sync(0xffffffffu, l0, 2);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 1);
  l1 += __shfl_xor_sync(0xffffffffu, l1, 2);
  inv[0] = l0 > 0.f ? 1.f / l0 : 0.f;
  inv[1] = l1 > 0.f ? 1.f / l1 : 0.f;
  if (lse_row != nullptr && t4 == 0) {
    if (row_a < N) lse_row[row_a] = l0 > 0.f ? (m0 * sl2 + __log2f(l0)) * kLn2 : kNegInf;
    if (row_b < N) lse_row[row_b] = l1 > 0.f ? (m1 * sl2 + __log2f(l1)) * kLn2 : kNegInf;
  }
}

// Epilogue of the two rows: finish_rows, then O normalised and stored (o_base = head's column 0
// of row 0, may be null). Rows >= N are not written.
template <typename T, int kDb>
__device__ __forceinline__ void store_rows(const float (&o)[kDb][4], float m0, float m1, float l0, float l1,
                                           int row_a, int row_b, int t4, int N, float sl2, T* o_base,
                                           int64_t o_stride, float* lse_row) {
  using Mma = MmaOp<T>;
  float inv[2];
  finish_rows(m0, m1, l0, l1, row_a, row_b, t4, N, sl2, lse_row, inv);
  if (o_base != nullptr) {
#pragma unroll
    for (int db = 0; db < kDb; ++db) {
      const int col = db * 8 + 2 * t4;
      if (row_a < N)
        *reinterpret_cast<uint32_t*>(o_base + static_cast<int64_t>(row_a) * o_stride + col) =
            Mma::pack(o[db][0] * inv[0], o[db][1] * inv[0]);
      if (row_b < N)
        *reinterpret_cast<uint32_t*>(o_base + static_cast<int64_t>(row_b) * o_stride + col) =
            Mma::pack(o[db][2] * inv[1], o[db][3] * inv[1]);
    }
  }
}

// One key tile of a CTA's work list.
struct KeyTile {
  int kind;   // 0 none, 1 consecutive keys [start, start + count), 2 gathered cols[start .. start + count)
  int start;  // first key (kind 1) or first position in cols (kind 2)
  int count;  // 1..64 valid keys
  int first;  // smallest key index in the tile
  int last;   // largest key index in the tile
};

// Walks a CTA's ranges (split into kTile-key tiles) and then its gathered columns (in chunks of
// kTile). Every thread of a loader runs it with the same values, so it is uniform control flow.
template <int kTile>
struct TileCursorT {
  const int32_t* range_begin;
  const int32_t* range_end;
  const int32_t* cols;
  int range_i, range_stop, pos, cur_end;
  int col_i, col_stop;

  __device__ __forceinline__ void skip_empty_ranges() {
    while (range_i < range_stop) {
      pos = __ldg(range_begin + range_i);
      cur_end = __ldg(range_end + range_i);
      if (cur_end > pos) break;
      ++range_i;
    }
  }
  __device__ __forceinline__ KeyTile next_any() {
    KeyTile t;
    if (range_i < range_stop) {
      t.kind = 1;
      t.start = pos;
      t.count = min(kTile, cur_end - pos);
      t.first = pos;
      t.last = pos + t.count - 1;
      pos += t.count;
      if (pos >= cur_end) {
        ++range_i;
        if (range_begin != nullptr) skip_empty_ranges();
      }
    } else if (col_i < col_stop) {
      t.kind = 2;
      t.start = col_i;
      t.count = min(kTile, col_stop - col_i);
      t.first = __ldg(cols + col_i);
      t.last = __ldg(cols + col_i + t.count - 1);
      col_i += kTile;
    } else {
      t.kind = 0;
      t.start = t.count = t.first = 0;
      t.last = -1;
    }
    return t;
  }

  // Largest key of the tile not above r1 (< first when every key is above r1).
  __device__ __forceinline__ int last_causal(const KeyTile& t, int r1) const {
    if (t.last <= r1) return t.last;
    if (t.kind == 1) return r1;
    const int lo = count_at_most(cols + t.start, t.count, r1);  // cols ascending
    return lo == 0 ? t.first - 1 : __ldg(cols + t.start + lo - 1);
  }

  // The next tile with at least one (row, key) pair passing the causal and band masks of rows
  // r0..r1 (kernels/sparse/cost.h, tile_has_work): tiles without one are neither loaded nor counted.
  __device__ __forceinline__ KeyTile next(int r0, int r1, int band_sink, int band_local) {
    for (;;) {
      const KeyTile t = next_any();
      if (t.kind == 0) return t;
      const int hi = last_causal(t, r1);
      if (t.first > r1 || hi < t.first) continue;
      if (band_local <= 0 || t.first < band_sink || max(0, r0 - hi) < band_local) return t;
    }
  }
};
using TileCursor = TileCursorT<kKeyTile>;

// Copies kTileRows rows of D 16-bit elements into a shared tile in the swizzled layout above (16-byte
// chunk c of row r at chunk c ^ (r & 7)) through cp.async: row r from src + row_of(r) * stride,
// zero-filled where row_of(r) < 0. Called by all kThreads threads of the CTA.
template <int D, int kTileRows, int kThreads, typename T, class RowOf>
__device__ __forceinline__ void copy_tile_rows(uint32_t dst, const T* src, int64_t stride, int tid, RowOf row_of) {
  constexpr int kChunks = D / 8;
#pragma unroll
  for (int it = 0; it < kTileRows * kChunks / kThreads; ++it) {
    const int idx = tid + it * kThreads;
    const int r = idx / kChunks, c = idx % kChunks;
    const int row = row_of(r);
    const bool valid = row >= 0;
    cp_async_16(dst + r * D * 2 + ((c ^ (r & 7)) << 4), src + static_cast<int64_t>(valid ? row : 0) * stride + c * 8,
                valid);
  }
}

// One warp's 16 Q rows (rows row0 .. row0 + 15 of a swizzled [*, D] tile) as the A fragments of
// its D / 16 k-steps.
template <int D>
__device__ __forceinline__ void load_q_fragments(uint32_t (&q_frag)[D / 16][4], uint32_t q_src, int row0, int lane) {
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const int r = row0 + (lane & 15);
    const int c = 2 * kk + (lane >> 4);
    ldmatrix_x4(q_frag[kk], q_src + r * D * 2 + ((c ^ (r & 7)) << 4));
  }
}

// S = Q K^T for one warp's 16 rows (Q fragments) and the 64 keys of a swizzled K tile:
// s[nb][e] is row g + 8 (e >> 1), key nb * 8 + 2 t4 + (e & 1) (the m16n8 accumulator layout).
template <typename T, int D>
__device__ __forceinline__ void warp_scores(float (&s)[8][4], const uint32_t (&q_frag)[D / 16][4], uint32_t k_src,
                                            int lane) {
#pragma unroll
  for (int nb = 0; nb < 8; ++nb) s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.f;
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
    for (int nb = 0; nb < 8; nb += 2) {
      uint32_t b[4];
      const int key = nb * 8 + (lane & 7) + ((lane >> 4) << 3);
      const int c = 2 * kk + ((lane >> 3) & 1);
      ldmatrix_x4(b, k_src + key * D * 2 + ((c ^ (key & 7)) << 4));
      MmaOp<T>::run(s[nb], q_frag[kk], b[0], b[1]);
      MmaOp<T>::run(s[nb + 1], q_frag[kk], b[2], b[3]);
    }
  }
}

// The B fragments of P V for the 16 keys kk * 16 .. kk * 16 + 15 and the two 8-column blocks
// db, db + 1 of a swizzled [keys, D] V tile (b[0..1] for db, b[2..3] for db + 1).
template <int D>
__device__ __forceinline__ void load_v_fragments(uint32_t (&b)[4], uint32_t v_src, int kk, int db, int lane) {
  const int key = kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3);
  const int c = db + (lane >> 4);
  ldmatrix_x4_trans(b, v_src + key * D * 2 + ((c ^ (key & 7)) << 4));
}

// Rows per CTA: kWarps warps of 16 * kM rows each.
template <int kWarps, int kM>
constexpr int flash_rows() {
  return kWarps * 16 * kM;
}

template <int D, int kWarps, int kM>
constexpr int flash_smem_bytes() {
  return (flash_rows<kWarps, kM>() + 4 * kKeyTile) * D * 2 + 2 * kKeyTile * 4;
}

// Register budget (ptxas, nvcc 13.0): with kM = 1, d=128 keeps 64 O accumulators + 32 Q
// registers per thread and needs ~222 registers; capped at 168 it spilled 136 bytes, so it gets
// 255 (2 CTAs of 4 warps). d=64 spilled 40 bytes at 128 registers, so 4-warp CTAs get 168.
// kM = 2 (32 rows per warp, as FlashAttention-2) reads Q from shared memory and gets 255.
template <int D, int kWarps, int kM>
constexpr int flash_min_blocks() {
  return kM == 2 ? (kWarps == 4 ? 2 : 1) : (D == 64 ? (kWarps == 4 ? 3 : 2) : (kWarps == 4 ? 2 : 1));
}

// kM m16 subtiles per warp: 16 rows (kM = 1, Q fragments held in registers) or 32 rows (kM = 2,
// Q re-read from shared memory; each K/V fragment loaded feeds two MMAs, halving shared-memory
// traffic per FLOP, as FlashAttention-2 does).
template <typename T, int D, int kWarps, int kM, bool kDense, bool kProbe>
__global__ void __launch_bounds__(kWarps * 32, (flash_min_blocks<D, kWarps, kM>()))
    flash_forward_kernel(const FlashArgs a) {
  using Mma = MmaOp<T>;
  constexpr int kRows = flash_rows<kWarps, kM>();
  constexpr int kThreads = kWarps * 32;
  constexpr int kChunks = D / 8;  // 16-byte chunks per row
  constexpr int kRowBytes = D * 2;
  constexpr int kWarpRows = 16 * kM;
  constexpr float kNegInf = -__builtin_huge_valf();
  static_assert(kRows == kKeyTile || kDense, "sparse CTAs own exactly one 64-row block");

  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* sQ = smem;                                // [kRows][D]
  unsigned char* sK = sQ + kRows * kRowBytes;              // [2][64][D]
  unsigned char* sV = sK + 2 * kKeyTile * kRowBytes;       // [2][64][D]
  int* sKeys = reinterpret_cast<int*>(sV + 2 * kKeyTile * kRowBytes);  // [2][64]

  // Longest row tiles first; the heads of one row tile are adjacent, so the heads of a GQA group
  // read the same K/V tiles at about the same time and share them in L2.
  const int item = blockIdx.x;
  const int head = item % a.n_heads;
  const int row_tile = a.n_row_tiles - 1 - item / a.n_heads;
  const int r0 = row_tile * kRows;
  const int kv_head = head / a.group;
  const int N = a.n_tokens;
  const int tid = threadIdx.x;
  const int warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, t4 = lane & 3;

  const T* q_base = static_cast<const T*>(a.q) + static_cast<int64_t>(head) * D;
  const T* k_base = static_cast<const T*>(a.k) + static_cast<int64_t>(kv_head) * D;
  const T* v_base = static_cast<const T*>(a.v) + static_cast<int64_t>(kv_head) * D;

  TileCursor cursor;
  cursor.cols = a.cols;
  if constexpr (kDense) {
    cursor.range_begin = cursor.range_end = nullptr;
    cursor.range_i = 0;
    cursor.range_stop = 1;
    cursor.pos = 0;
    cursor.cur_end = min(N, r0 + kRows);
    cursor.col_i = cursor.col_stop = 0;
  } else {
    const int slot = head * a.n_row_tiles + row_tile;
    cursor.range_begin = a.range_begin;
    cursor.range_end = a.range_end;
    cursor.range_i = __ldg(a.range_offsets + slot);
    cursor.range_stop = __ldg(a.range_offsets + slot + 1);
    cursor.skip_empty_ranges();
    cursor.col_i = __ldg(a.col_offsets + slot);
    cursor.col_stop = __ldg(a.col_offsets + slot + 1);
  }
  if constexpr (!kDense) {
    const int ahead = cursor.col_i + tid * 32;
    if (tid < 2 && ahead < cursor.col_stop) prefetch_l1(a.cols + ahead);
  }
  const int r1 = min(N, r0 + kRows) - 1;  // last real row of the CTA
  int band_sink = 0, band_local = 0;       // per-row window (a_shape); band_local 0: none
  if constexpr (!kDense) {
    if (a.band_local != nullptr) band_local = __ldg(a.band_local + head);
    if (a.band_sink != nullptr && band_local > 0) band_sink = __ldg(a.band_sink + head);
  }

  auto load_tile = [&](const KeyTile& t, int stage) {
    const uint32_t k_dst = smem_addr(sK + stage * kKeyTile * kRowBytes);
    const uint32_t v_dst = smem_addr(sV + stage * kKeyTile * kRowBytes);
#pragma unroll
    for (int it = 0; it < kKeyTile * kChunks / kThreads; ++it) {
      const int idx = tid + it * kThreads;
      const int r = idx / kChunks, c = idx % kChunks;
      const bool valid = r < t.count;
      int key = 0;
      if (valid) key = t.kind == 1 ? t.start + r : __ldg(a.cols + t.start + r);
      const uint32_t off = r * kRowBytes + ((c ^ (r & 7)) << 4);
      cp_async_16(k_dst + off, k_base + static_cast<int64_t>(key) * a.k_stride + c * 8, valid);
      cp_async_16(v_dst + off, v_base + static_cast<int64_t>(key) * a.v_stride + c * 8, valid);
    }
    if (t.kind == 2) {
      for (int r = tid; r < kKeyTile; r += kThreads)
        sKeys[stage * kKeyTile + r] = r < t.count ? __ldg(a.cols + t.start + r) : -1;
      // The following chunk's column indices (256 bytes) into L1 now: the cursor and the next
      // load_tile read them one iteration later, and an L2 round trip there stalls the CTA.
      const int ahead = t.start + kKeyTile + tid * 32;
      if (tid < 2 && ahead < cursor.col_stop) prefetch_l1(a.cols + ahead);
    }
  };

  // Q tile: rows past N are zero-filled (their results are never written).
  copy_tile_rows<D, kRows, kThreads>(smem_addr(sQ), q_base, a.q_stride, tid,
                                     [&](int r) { return r0 + r < N ? r0 + r : -1; });

  const int warp_row0 = r0 + warp * kWarpRows;
  // Row of accumulator slot (mi, half): warp_row0 + 16 mi + g + 8 half; index ri = 2 mi + half.
  auto row_of = [&](int ri) { return warp_row0 + 16 * (ri >> 1) + g + 8 * (ri & 1); };
  const float sl2 = a.scale_log2;

  float probe_lse2[2 * kM];
  float probe_sum[2 * kM];
#pragma unroll
  for (int ri = 0; ri < 2 * kM; ++ri) {
    probe_lse2[ri] = 0.f;
    probe_sum[ri] = 0.f;
    if constexpr (kProbe) {
      const int row = row_of(ri);
      if (row < N) probe_lse2[ri] = __ldg(a.probe_lse + static_cast<int64_t>(head) * N + row) * kLog2e;
    }
  }
  long long probe_pairs = 0;  // counted by thread 0 only, per tile as cost.h defines

  float o_acc[kM][D / 8][4];
#pragma unroll
  for (int mi = 0; mi < kM; ++mi)
#pragma unroll
    for (int i = 0; i < D / 8; ++i) o_acc[mi][i][0] = o_acc[mi][i][1] = o_acc[mi][i][2] = o_acc[mi][i][3] = 0.f;
  float m_run[2 * kM], l_run[2 * kM];
#pragma unroll
  for (int ri = 0; ri < 2 * kM; ++ri) {
    m_run[ri] = kNegInf;
    l_run[ri] = 0.f;
  }
  // kM = 1 keeps Q in registers; kM = 2 re-reads it from shared memory (registers go to O).
  uint32_t q_frag[kM == 1 ? D / 16 : 1][4];
  const uint32_t q_src = smem_addr(sQ);
  auto q_fragment = [&](int mi, int kk, uint32_t (&dst)[4]) {
    const int r = warp * kWarpRows + mi * 16 + (lane & 15);
    const int c = 2 * kk + (lane >> 4);
    ldmatrix_x4(dst, q_src + r * kRowBytes + ((c ^ (r & 7)) << 4));
  };

  KeyTile cur = cursor.next(r0, r1, band_sink, band_local);
  if (cur.kind != 0) load_tile(cur, 0);
  cp_async_commit();

  int stage = 0;
  bool first = true;
  while (cur.kind != 0) {
    const KeyTile nxt = cursor.next(r0, r1, band_sink, band_local);
    if (nxt.kind != 0) load_tile(nxt, stage ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();

    if constexpr (kM == 1) {
      if (first) {
#pragma unroll
        for (int kk = 0; kk < D / 16; ++kk) q_fragment(0, kk, q_frag[kk]);
      }
    }
    first = false;

    // S = Q K^T for this warp's 16 kM rows x 64 keys.
    float s[kM][8][4];
#pragma unroll
    for (int mi = 0; mi < kM; ++mi)
#pragma unroll
      for (int nb = 0; nb < 8; ++nb) s[mi][nb][0] = s[mi][nb][1] = s[mi][nb][2] = s[mi][nb][3] = 0.f;
    const uint32_t k_src = smem_addr(sK + stage * kKeyTile * kRowBytes);
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
      uint32_t qa[kM][4];
      if constexpr (kM == 1) {
#pragma unroll
        for (int x = 0; x < 4; ++x) qa[0][x] = q_frag[kk][x];
      } else {
#pragma unroll
        for (int mi = 0; mi < kM; ++mi) q_fragment(mi, kk, qa[mi]);
      }
#pragma unroll
      for (int nb = 0; nb < 8; nb += 2) {
        uint32_t b[4];
        const int key = nb * 8 + (lane & 7) + ((lane >> 4) << 3);
        const int c = 2 * kk + ((lane >> 3) & 1);
        ldmatrix_x4(b, k_src + key * kRowBytes + ((c ^ (key & 7)) << 4));
#pragma unroll
        for (int mi = 0; mi < kM; ++mi) {
          Mma::run(s[mi][nb], qa[mi], b[0], b[1]);
          Mma::run(s[mi][nb + 1], qa[mi], b[2], b[3]);
        }
      }
    }

    // Masks: keys past the tile's valid count, keys after the row (causality), and keys outside
    // the band (a_shape's per-row window: keep j < sink or i - j < local).
    const bool band_mask = band_local > 0 && cur.last >= band_sink &&
                           warp_row0 + kWarpRows - 1 - cur.first >= band_local;
    if (cur.count < kKeyTile || cur.last > warp_row0 || band_mask) {
#pragma unroll
      for (int nb = 0; nb < 8; ++nb) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          const int col = nb * 8 + 2 * t4 + (e & 1);
          int key;
          bool ok;
          if (cur.kind == 1) {
            key = cur.start + col;
            ok = col < cur.count;
          } else {
            key = sKeys[stage * kKeyTile + col];
            ok = key >= 0;
          }
#pragma unroll
          for (int mi = 0; mi < kM; ++mi) {
            const int row = row_of(2 * mi + (e >> 1));
            if (!ok || key > row) s[mi][nb][e] = kNegInf;
            if (band_mask && key >= band_sink && row - key >= band_local) s[mi][nb][e] = kNegInf;
          }
        }
      }
    }

    if constexpr (kProbe) {
#pragma unroll
      for (int mi = 0; mi < kM; ++mi)
#pragma unroll
        for (int nb = 0; nb < 8; ++nb)
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int ri = 2 * mi + (e >> 1);
            if (s[mi][nb][e] != kNegInf) probe_sum[ri] += exp2f(fmaf(s[mi][nb][e], sl2, -probe_lse2[ri]));
          }
      if (tid == 0) probe_pairs += static_cast<long long>(r1 - r0 + 1) * cur.count;
    }

    // Online softmax (base 2). A fully masked tile rescales by exactly 1, so the dense and
    // index-driven paths agree bit for bit.
#pragma unroll
    for (int mi = 0; mi < kM; ++mi)
      online_softmax_step(s[mi], m_run[2 * mi], m_run[2 * mi + 1], l_run[2 * mi], l_run[2 * mi + 1], o_acc[mi], sl2);

    // O += P V: the S accumulators of two 8-key blocks form one 16-key A fragment.
    const uint32_t v_src = smem_addr(sV + stage * kKeyTile * kRowBytes);
#pragma unroll
    for (int kk = 0; kk < kKeyTile / 16; ++kk) {
      uint32_t p[kM][4];
#pragma unroll
      for (int mi = 0; mi < kM; ++mi) {
        p[mi][0] = Mma::pack(s[mi][2 * kk][0], s[mi][2 * kk][1]);
        p[mi][1] = Mma::pack(s[mi][2 * kk][2], s[mi][2 * kk][3]);
        p[mi][2] = Mma::pack(s[mi][2 * kk + 1][0], s[mi][2 * kk + 1][1]);
        p[mi][3] = Mma::pack(s[mi][2 * kk + 1][2], s[mi][2 * kk + 1][3]);
      }
#pragma unroll
      for (int db = 0; db < D / 8; db += 2) {
        uint32_t b[4];
        load_v_fragments<D>(b, v_src, kk, db, lane);
#pragma unroll
        for (int mi = 0; mi < kM; ++mi) {
          Mma::run(o_acc[mi][db], p[mi], b[0], b[1]);
          Mma::run(o_acc[mi][db + 1], p[mi], b[2], b[3]);
        }
      }
    }

    __syncthreads();  // the next iteration's loads overwrite the stage just read
    stage ^= 1;
    cur = nxt;
  }
  cp_async_wait<0>();

  // Epilogue: full row sums, normalisation, O and LSE.
  T* o_base = a.o != nullptr ? static_cast<T*>(a.o) + static_cast<int64_t>(head) * D : nullptr;
  float* lse_row = a.lse != nullptr ? a.lse + static_cast<int64_t>(head) * N : nullptr;
#pragma unroll
  for (int mi = 0; mi < kM; ++mi)
    store_rows<T>(o_acc[mi], m_run[2 * mi], m_run[2 * mi + 1], l_run[2 * mi], l_run[2 * mi + 1], row_of(2 * mi),
                  row_of(2 * mi + 1), t4, N, sl2, o_base, a.o_stride, lse_row);

  if constexpr (kProbe) {
    // Rows past N hold zero-filled queries: they are not part of any C(i).
    double sum = 0.0;
#pragma unroll
    for (int ri = 0; ri < 2 * kM; ++ri)
      if (row_of(ri) < N) sum += probe_sum[ri];
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, off);
    if (lane == 0) atomicAdd(a.probe_recall + head, sum);
    if (tid == 0) atomicAdd(a.probe_pairs + head, static_cast<unsigned long long>(probe_pairs));
  }
}

}  // namespace hc::kernels::detail

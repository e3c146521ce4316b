// The GPU grid probe's sweep kernel (grid_probe_gpu.h): one CTA per (row block, head, sweep),
// four warps of 16 rows as in the mma.sync attention kernel (kernels/attention/flash_forward.cuh,
// whose fragment helpers and shared-memory layout it reuses). Keys come in 64-key tiles,
// double-buffered through cp.async; a tile belongs to a stage (grid_probe_device.cuh, SweepPass),
// and once a stage that completes a candidate's keys is done, the accumulated sums are that
// candidate's: its output rows are compared with the dense output right there (the snapshot).
#include <cuda_bf16.h>

#include <climits>

#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/attention/flash_forward.cuh"
#include "kernels/sparse/grid_probe_device.cuh"
#include "kernels/sparse/sparse_index.h"

namespace hc::kernels::detail {
namespace {

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kRows = kWarps * 16;  // one 64-row block per CTA
static_assert(kRows == kKeyTile, "a CTA owns one row block");
// Below this kept mass a row's weights (exp(s - lse) in fp32) may have underflowed to zero: the
// candidate is reported unmeasured (the CPU reference recomputes such rows at their own maximum).
constexpr double kMinMass = 1e-30;
// Column entries whose loads one step of the column walk issues together (four per lane): their
// latencies overlap instead of adding up.
constexpr int kColumnChunks = 4;

// One tile of keys: how many (the first `count` of the warp's key list; 0 when the sweep is done)
// and the stage they belong to.
struct SweepTile {
  int count;
  int stage;
};

// Walks one CTA's stages (grid_probe_device.cuh, SweepPass) and writes each tile's keys into the
// calling warp's key list (-1 past the tile's count). a_shape: a window level's new keys, or a
// sink interval's keys outside the window; block_sparse: a level's key blocks; vertical_slash
// (kVs): a level's diagonals (keys r1 - t, packed 64 to a tile whatever their ranges), or a column
// level's columns outside the level's ranges (packed as well). Every warp runs it with the same
// values and gets the same tiles (its ballots see the same entries).
template <bool kVs>
struct SweepCursor {
  int family, r0, r1, rb, n_groups, lane;
  int n_sinks = 0;
  const int32_t* sinks = nullptr;
  const int32_t* windows = nullptr;
  const int8_t* block_level = nullptr;  // block_sparse: this row block's key blocks' levels
  int n_col_levels = 0;
  const int32_t* groups = nullptr;     // vertical_slash: the head's columns, grouped by level
  const int32_t* level_end = nullptr;  // [column levels]
  const int32_t* diags = nullptr;      // the head's diagonals, grouped by level
  const int32_t* diag_end = nullptr;   // [offset levels]
  const int32_t* col_parts = nullptr;  // [offset levels]
  const int8_t* y_row = nullptr;       // the head's diagonal levels
  int stage = 0, pos = 0, end = 0;
  int kind = 0;   // the open segment [pos, end): 1 keys (a_shape, block_sparse), 2 diagonals' entries, 3 columns' entries
  int level = 0;  // vertical_slash: the offsets' level b of the stage
  int block = 0;  // block_sparse: the next key block to look at
  bool opened = false;

  // block_sparse: the next key block of the current stage's level, as a key range; false when none
  // is left. The warp looks at 32 blocks' levels at a time.
  __device__ bool next_block() {
    while (block <= rb) {
      const int c = block + lane;
      const unsigned hit = __ballot_sync(0xffffffffu, c <= rb && __ldg(block_level + c) == stage - 1);
      if (hit == 0u) {
        block += 32;
        continue;
      }
      const int found = block + __ffs(static_cast<int>(hit)) - 1;
      block = found + 1;
      pos = found * kBlock;
      end = min(pos + kBlock, r1 + 1);
      kind = 1;
      return true;
    }
    return false;
  }
  // The current stage's first segment; false when it is empty. vertical_slash: the level's whole
  // list, whose entries past r1 the walk stops at (keys r1 - t < 0, or columns past the rows).
  __device__ bool open_stage() {
    if constexpr (kVs) {
      const VsStage st = vs_stage(stage, n_col_levels);
      level = st.level;
      if (st.part == 0) {  // the level's diagonals
        pos = level > 0 ? __ldg(diag_end + level - 1) : 0;
        end = __ldg(diag_end + level);
        kind = 2;
      } else {  // column level part - 1
        if (st.part > __ldg(col_parts + level)) return false;
        pos = st.part > 1 ? __ldg(level_end + st.part - 2) : 0;
        end = __ldg(level_end + st.part - 1);
        kind = 3;
      }
      return pos < end;
    } else {
      if (family == kSweepAShape) {
        const AShapeStageKeys k = a_shape_stage_keys(stage, n_sinks, sinks, windows, r0, r1);
        pos = k.begin;
        end = k.end;
        kind = 1;
        return pos < end;
      }
      block = 0;  // block_sparse: stage 0 is empty
      return stage > 0 && next_block();
    }
  }
  // The next segment of the current stage; false when none is left.
  __device__ bool next_segment() {
    if (!opened) {
      opened = true;
      return open_stage();
    }
    if constexpr (!kVs) {
      if (family == kSweepBlockSparse && stage > 0) return next_block();
    }
    return false;
  }
  // Up to 64 of the open column segment's entries whose keys lie outside level b's ranges
  // (y_of[r1 - j] > b), in order; a 32-entry chunk that would overflow the tile waits for the next.
  // The first column past r1 ends the segment.
  __device__ int take_columns(int* keys) {
    int fill = 0;
    bool room = true;
    while (room && pos < end) {
      int col[kColumnChunks];
      bool keep[kColumnChunks];
#pragma unroll
      for (int u = 0; u < kColumnChunks; ++u) {
        const int e = pos + 32 * u + lane;
        col[u] = e < end ? __ldg(groups + e) : INT_MAX;
      }
#pragma unroll
      for (int u = 0; u < kColumnChunks; ++u) keep[u] = col[u] <= r1 && __ldg(y_row + (r1 - col[u])) > level;
#pragma unroll
      for (int u = 0; u < kColumnChunks; ++u) {
        if (!room || pos >= end) break;
        const unsigned past = __ballot_sync(0xffffffffu, col[u] > r1);  // past r1 or past the segment
        const unsigned m = __ballot_sync(0xffffffffu, keep[u]);
        const int n = __popc(m);
        if (fill + n > kKeyTile) {
          room = false;
          break;
        }
        if (keep[u]) keys[fill + __popc(m & ((1u << lane) - 1u))] = col[u];
        fill += n;
        if (past != 0u) end = pos + __ffs(static_cast<int>(past)) - 1;
        pos = min(pos + 32, end);
      }
    }
    return fill;
  }
  // Up to 64 of the open diagonal segment's entries t <= r1 (ascending: a prefix) as keys r1 - t;
  // the first t past r1 ends the segment.
  __device__ int take_diagonals(int* keys) {
    const int t0 = pos + lane < end ? __ldg(diags + pos + lane) : INT_MAX;
    const int t1 = pos + 32 + lane < end ? __ldg(diags + pos + 32 + lane) : INT_MAX;
    keys[lane] = t0 <= r1 ? r1 - t0 : -1;
    keys[lane + 32] = t1 <= r1 ? r1 - t1 : -1;
    const int count = __popc(__ballot_sync(0xffffffffu, t0 <= r1)) + __popc(__ballot_sync(0xffffffffu, t1 <= r1));
    if (count < kKeyTile) end = pos + count;
    pos += count;
    return count;
  }
  __device__ SweepTile next(int* keys) {
    while (stage <= n_groups) {
      if (pos < end) {
        int count;
        if constexpr (kVs) {
          count = kind == 3 ? take_columns(keys) : take_diagonals(keys);
        } else {
          count = min(kKeyTile, end - pos);
          for (int r = lane; r < count; r += 32) keys[r] = pos + r;
          pos += count;
        }
        if (count > 0) {
          for (int r = count + lane; r < kKeyTile; r += 32) keys[r] = -1;
          return SweepTile{count, stage};
        }
        continue;  // the rest of the segment lay past r1 or inside the ranges
      }
      if (!next_segment()) {
        ++stage;
        opened = false;
      }
    }
    for (int r = lane; r < kKeyTile; r += 32) keys[r] = -1;
    return SweepTile{0, n_groups + 1};
  }
};

// A row's value summed over the four threads of its quad (the threads holding one fragment row).
template <typename V>
__device__ __forceinline__ V quad_sum(V v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  v += __shfl_xor_sync(0xffffffffu, v, 2);
  return v;
}

// Shared memory: the first region holds Q until its fragments are in registers, then (vertical
// slash) the saved sums S_b; then K and V double-buffered and each warp's copy of both tiles' keys.
template <int D>
__host__ __device__ constexpr int q_bytes() {
  return kRows * D * 2;
}
template <int D>
__host__ __device__ constexpr int saved_bytes() {  // per thread: its D / 2 accumulators (float4 each 4) and 2 row masses
  return kThreads * (D / 8) * 16 + kThreads * 2 * 8;
}
template <int D, bool kVs>
__host__ __device__ constexpr int first_region_bytes() {
  return kVs && saved_bytes<D>() > q_bytes<D>() ? saved_bytes<D>() : q_bytes<D>();
}
template <int D, bool kVs>
constexpr int sweep_smem_bytes() {
  return first_region_bytes<D, kVs>() + 4 * kKeyTile * D * 2 + 2 * kWarps * kKeyTile * 4;
}

// Register budget as the mma.sync attention kernel's (flash_forward.cuh): d = 128 holds 64 O
// accumulators and 32 Q registers per thread, so 2 CTAs of 4 warps; d = 64 fits 3. Shared memory
// fits as many (d = 128 with saved sums: 2 x 102 KB).
// kVs: the launch's sweeps are vertical_slash ones (else a_shape and block_sparse).
template <int D, bool kVs>
__global__ void __launch_bounds__(kThreads, D == 64 ? 3 : 2) grid_sweep_kernel(const SweepArgs a) {
  using Mma = MmaOp<__nv_bfloat16>;
  constexpr int kRowBytes = D * 2;

  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* sQ = smem;                                             // [64][D], then the saved sums
  float4* sSaved = reinterpret_cast<float4*>(smem);                     // [D / 8][kThreads]
  double* sSavedMass = reinterpret_cast<double*>(sSaved + (D / 8) * kThreads);  // [2][kThreads]
  unsigned char* sK = smem + first_region_bytes<D, kVs>();              // [2][64][D]
  unsigned char* sV = sK + 2 * kKeyTile * kRowBytes;                    // [2][64][D]
  int* sKeys = reinterpret_cast<int*>(sV + 2 * kKeyTile * kRowBytes);  // [2][warp][64] the tile's keys, -1 none
  __shared__ double s_sum[kWarps][2];
  __shared__ int s_underflow[kWarps];
  __shared__ int s_tiles;  // this CTA's tiles, counted by thread 0 (GridProberGpu::last_tiles)

  const int item = blockIdx.x;
  const int pass_i = a.first_pass + item % a.n_passes;
  const int head = (item / a.n_passes) % a.n_heads;
  const int rb = a.n_row_blocks - 1 - item / (a.n_passes * a.n_heads);  // longest row blocks first
  const SweepPass pass = a.passes[pass_i];
  const int N = a.n_tokens;
  const int r0 = rb * kRows, r1 = min(N, r0 + kRows) - 1;
  const int kv_head = head / a.group;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, t4 = lane & 3;
  if (tid == 0) s_tiles = 0;
  // The cost of these candidates' indexes is counted here: the pairs of the keys swept.
  const bool counts_pairs = kVs || pass.family == kSweepBlockSparse;

  SweepCursor<kVs> cursor;
  cursor.family = pass.family;
  cursor.r0 = r0;
  cursor.r1 = r1;
  cursor.rb = rb;
  cursor.n_groups = pass.n_groups;
  cursor.lane = lane;
  if constexpr (kVs) {
    cursor.n_col_levels = a.n_col_levels;
    cursor.groups = a.col_groups + static_cast<int64_t>(head) * a.col_stride;
    cursor.level_end = a.col_level_end;
    cursor.diags = a.diag_groups + static_cast<int64_t>(head) * N;
    cursor.diag_end = a.diag_end + static_cast<int64_t>(head) * a.n_off_levels;
    cursor.col_parts = a.col_parts;
    cursor.y_row = a.y_of + static_cast<int64_t>(head) * N;
  } else {
    cursor.n_sinks = a.n_sinks;
    cursor.sinks = a.sinks;
    cursor.windows = a.windows;
    if (pass.family == kSweepBlockSparse)
      cursor.block_level = a.block_level +
                           static_cast<int64_t>(head) * a.n_row_blocks * (a.n_row_blocks + 1) / 2 +
                           static_cast<int64_t>(rb) * (rb + 1) / 2;
  }

  const __nv_bfloat16* q_base = static_cast<const __nv_bfloat16*>(a.q) + static_cast<int64_t>(head) * D;
  const __nv_bfloat16* k_base = static_cast<const __nv_bfloat16*>(a.k) + static_cast<int64_t>(kv_head) * D;
  const __nv_bfloat16* v_base = static_cast<const __nv_bfloat16*>(a.v) + static_cast<int64_t>(kv_head) * D;

  auto keys_of = [&](int buf) { return sKeys + (buf * kWarps + warp) * kKeyTile; };
  // The tile's K and V rows by the warp's key list (written by the cursor, this warp's lanes).
  auto load_tile = [&](int buf) {
    const int* keys = keys_of(buf);
    auto key_of = [&](int r) { return keys[r]; };
    copy_tile_rows<D, kKeyTile, kThreads>(smem_addr(sK + buf * kKeyTile * kRowBytes), k_base, a.k_stride, tid, key_of);
    copy_tile_rows<D, kKeyTile, kThreads>(smem_addr(sV + buf * kKeyTile * kRowBytes), v_base, a.v_stride, tid, key_of);
  };

  // Q tile: rows past N are zero-filled (and masked below).
  copy_tile_rows<D, kRows, kThreads>(smem_addr(sQ), q_base, a.q_stride, tid,
                                     [&](int r) { return r0 + r < N ? r0 + r : -1; });

  const int warp_row0 = r0 + warp * 16;
  const int row_of[2] = {warp_row0 + g, warp_row0 + g + 8};
  const float sl2 = a.scale_log2;
  float lse2[2];
#pragma unroll
  for (int ri = 0; ri < 2; ++ri)
    lse2[ri] = row_of[ri] < N ? __ldg(a.lse + static_cast<int64_t>(head) * N + row_of[ri]) * kLog2e : 0.f;

  float o_acc[D / 8][4];
#pragma unroll
  for (int i = 0; i < D / 8; ++i) o_acc[i][0] = o_acc[i][1] = o_acc[i][2] = o_acc[i][3] = 0.f;
  double mass[2] = {0.0, 0.0};  // this thread's part of each row's kept mass
  long long keys_so_far = 0;    // keys of the candidate's index so far (its pairs follow)
  long long saved_keys = 0;     // vertical_slash: those of S_b
  uint32_t q_frag[D / 16][4];

  // The measures of candidate `group` of the pass, whose sums are complete: every thread calls it.
  auto snapshot = [&](int group) {
    if (group < 0) return;
    const int c = __ldg(a.pass_cands + pass_i * a.max_groups + group);
    if (c < 0) return;
    double err_rows = 0.0, mass_rows = 0.0;
    int underflow = 0;
#pragma unroll
    for (int ri = 0; ri < 2; ++ri) {
      const double m = quad_sum(mass[ri]);
      const int row = row_of[ri];
      const bool ok = row < N && m >= kMinMass;
      float e = 0.f;
      if (ok) {
        const float inv = static_cast<float>(1.0 / m);
        const __nv_bfloat16* ref = static_cast<const __nv_bfloat16*>(a.o_ref) +
                                   static_cast<int64_t>(row) * a.o_stride + head * D + 2 * t4;
#pragma unroll
        for (int db = 0; db < D / 8; ++db) {
          const float2 r = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(ref + db * 8));
          const float d0 = o_acc[db][2 * ri] * inv - r.x, d1 = o_acc[db][2 * ri + 1] * inv - r.y;
          e = fmaf(d0, d0, fmaf(d1, d1, e));
        }
      }
      e = quad_sum(e);
      if (t4 == 0 && row < N) {
        mass_rows += m;
        if (ok) err_rows += e;
        else ++underflow;
      }
    }
#pragma unroll
    for (int off = 4; off < 32; off <<= 1) {
      err_rows += __shfl_xor_sync(0xffffffffu, err_rows, off);
      mass_rows += __shfl_xor_sync(0xffffffffu, mass_rows, off);
      underflow += __shfl_xor_sync(0xffffffffu, underflow, off);
    }
    if (lane == 0) {
      s_sum[warp][0] = mass_rows;
      s_sum[warp][1] = err_rows;
      s_underflow[warp] = underflow;
    }
    __syncthreads();
    if (tid == 0) {
      double m = 0.0, e = 0.0;
      int u = 0;
      for (int w = 0; w < kWarps; ++w) {
        m += s_sum[w][0];
        e += s_sum[w][1];
        u += s_underflow[w];
      }
      const int64_t at = static_cast<int64_t>(c) * a.out_heads + a.head_base + head;
      atomicAdd(a.recall + at, m);
      atomicAdd(a.err + at, e);
      if (u > 0) atomicAdd(a.underflow + at, u);
      if (counts_pairs) atomicAdd(a.pairs + at, static_cast<unsigned long long>(keys_so_far * (r1 - r0 + 1)));
    }
    __syncthreads();
  };
  // What completing a stage does: a snapshot, and for vertical_slash saving S_b after its ranges and
  // restoring it after its columns. Each thread saves and restores its own values only.
  auto end_stage = [&](int stage_done) {
    if constexpr (kVs) {
      const VsStageEnd e = vs_stage_end(stage_done, a.n_col_levels);
      if (e.save) {
#pragma unroll
        for (int db = 0; db < D / 8; ++db)
          sSaved[db * kThreads + tid] = make_float4(o_acc[db][0], o_acc[db][1], o_acc[db][2], o_acc[db][3]);
        sSavedMass[tid] = mass[0];
        sSavedMass[kThreads + tid] = mass[1];
        saved_keys = keys_so_far;
      }
      snapshot(e.group);
      if (e.restore) {
#pragma unroll
        for (int db = 0; db < D / 8; ++db) {
          const float4 v = sSaved[db * kThreads + tid];
          o_acc[db][0] = v.x;
          o_acc[db][1] = v.y;
          o_acc[db][2] = v.z;
          o_acc[db][3] = v.w;
        }
        mass[0] = sSavedMass[tid];
        mass[1] = sSavedMass[kThreads + tid];
        keys_so_far = saved_keys;
      }
    } else {
      snapshot(pass.family == kSweepAShape ? a_shape_snapshot_group(stage_done, a.n_sinks) : stage_done - 1);
    }
  };

  int buf = 0;
  SweepTile cur = cursor.next(keys_of(0));
  __syncwarp();
  if (cur.count > 0) load_tile(0);
  cp_async_commit();
  int completed = 0;  // stages before this one are complete
  bool first = true;
  while (cur.count > 0) {
    const SweepTile nxt = cursor.next(keys_of(buf ^ 1));
    __syncwarp();
    if (nxt.count > 0) load_tile(buf ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (first) {
      load_q_fragments<D>(q_frag, smem_addr(sQ), warp * 16, lane);
      first = false;
      __syncthreads();  // Q's region is free for the saved sums
    }
    for (; completed < cur.stage; ++completed) end_stage(completed);

    const int* keys = keys_of(buf);
    if (tid == 0) ++s_tiles;
    if (counts_pairs) keys_so_far += cur.count;
    // a_shape: the stage keeps i - j in [w_lo, w_hi), and a subtracting stage negates its weights.
    int w_lo = 0, w_hi = INT_MAX;
    float sign = 1.f;
    if (!kVs && pass.family == kSweepAShape) {
      const AShapeStageKeys k = a_shape_stage_keys(cur.stage, a.n_sinks, a.sinks, a.windows, r0, r1);
      w_lo = k.w_lo;
      w_hi = k.w_hi;
      if (k.subtract) sign = -1.f;
    }
    // Whether every (row, key) pair of this warp's part of the tile is kept: all 64 keys present,
    // the largest causal for the warp's first row, every row real, and the distances i - j within
    // [w_lo, w_hi). Then no mask is computed.
    bool unmasked = false;
    if (cur.count == kKeyTile) {
      const int k0 = keys[lane], k1 = keys[lane + 32];
      const int kmax = __reduce_max_sync(0xffffffffu, max(k0, k1));
      const int kmin = __reduce_min_sync(0xffffffffu, min(k0, k1));
      unmasked = kmax <= warp_row0 && warp_row0 + 15 < N && warp_row0 - kmax >= w_lo && warp_row0 + 15 - kmin < w_hi;
    }

    // S = Q K^T for this warp's 16 rows x 64 keys.
    float s[8][4];
    warp_scores<__nv_bfloat16, D>(s, q_frag, smem_addr(sK + buf * kKeyTile * kRowBytes), lane);

    // P = exp(s - lse) on the keys of this stage: causal, the tile's keys, distances in
    // [w_lo, w_hi); times the stage's sign.
    float tile_mass[2] = {0.f, 0.f};
#pragma unroll
    for (int nb = 0; nb < 8; ++nb) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int ri = e >> 1;
        bool keep = true;
        if (!unmasked) {
          const int key = keys[nb * 8 + 2 * t4 + (e & 1)], row = row_of[ri];
          keep = key >= 0 && key <= row && row < N && row - key >= w_lo && row - key < w_hi;
        }
        const float p = keep ? sign * exp2_ftz(fmaf(s[nb][e], sl2, -lse2[ri])) : 0.f;
        s[nb][e] = p;
        tile_mass[ri] += p;
      }
    }
    mass[0] += tile_mass[0];
    mass[1] += tile_mass[1];

    // O += P V with P = hi + lo, two bf16 terms (one bf16 P alone would carry 2^-9 errors).
    const uint32_t v_src = smem_addr(sV + buf * kKeyTile * kRowBytes);
#pragma unroll
    for (int kk = 0; kk < kKeyTile / 16; ++kk) {
      uint32_t hi[4], lo[4];
#pragma unroll
      for (int x = 0; x < 4; ++x) {
        const float* pr = s[2 * kk + (x >> 1)] + 2 * (x & 1);
        const __nv_bfloat162 h2 = __floats2bfloat162_rn(pr[0], pr[1]);
        const float2 hf = __bfloat1622float2(h2);
        hi[x] = *reinterpret_cast<const uint32_t*>(&h2);
        lo[x] = Mma::pack(pr[0] - hf.x, pr[1] - hf.y);
      }
#pragma unroll
      for (int db = 0; db < D / 8; db += 2) {
        uint32_t b[4];
        load_v_fragments<D>(b, v_src, kk, db, lane);
        Mma::run(o_acc[db], hi, b[0], b[1]);
        Mma::run(o_acc[db + 1], hi, b[2], b[3]);
        Mma::run(o_acc[db], lo, b[0], b[1]);
        Mma::run(o_acc[db + 1], lo, b[2], b[3]);
      }
    }

    __syncthreads();  // the next iteration's loads overwrite the stage just read
    buf ^= 1;
    cur = nxt;
  }
  cp_async_wait<0>();
  __syncthreads();  // every thread's copies landed: Q's region is free for saved sums even with no tile
  for (; completed <= cursor.n_groups; ++completed) end_stage(completed);
  if (tid == 0 && a.tiles != nullptr) atomicAdd(a.tiles + pass.family, static_cast<unsigned long long>(s_tiles));
}

template <int D, bool kVs>
void launch_for(const SweepArgs& args, cudaStream_t stream) {
  constexpr int smem = sweep_smem_bytes<D, kVs>();
  HC_CHECK_CUDA(cudaFuncSetAttribute(grid_sweep_kernel<D, kVs>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  const int64_t ctas = static_cast<int64_t>(args.n_row_blocks) * args.n_heads * args.n_passes;
  if (ctas > 0x7fffffff) throw InputError("grid probe", "too many row blocks x heads x sweeps for one launch");
  grid_sweep_kernel<D, kVs><<<static_cast<unsigned>(ctas), kThreads, smem, stream>>>(args);
  HC_CHECK_LAUNCH();
}

}  // namespace

void launch_grid_sweep(const SweepArgs& args, int head_dim, bool vertical_slash, cudaStream_t stream) {
  if (args.n_passes == 0) return;
  if (head_dim == 64) {
    if (vertical_slash) launch_for<64, true>(args, stream);
    else launch_for<64, false>(args, stream);
  } else if (head_dim == 128) {
    if (vertical_slash) launch_for<128, true>(args, stream);
    else launch_for<128, false>(args, stream);
  } else {
    throw InputError("grid probe", "head_dim must be 64 or 128");
  }
}

}  // namespace hc::kernels::detail

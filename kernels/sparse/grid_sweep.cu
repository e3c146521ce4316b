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
// Dropped order: below this share of the row's total the kept sums (F minus the dropped ones,
// both fp32 to ~1e-6) would carry errors above 1e-4 of their size; such a row leaves the
// candidate unmeasured too.
constexpr double kMinKeptShare = 1e-2;

struct SweepTile {
  int kind;   // 0 none, 1 consecutive keys [start, start + count), 2 list entries [start, start + count)
  int start;
  int count;  // 1..64
  int stage;  // 0: keys with y <= b; s >= 1: group s - 1; n_groups + 1 for the end
};

// Walks one CTA's stages (grid_probe_device.cuh, SweepPass). a_shape: a window level's new keys,
// or a sink interval's keys outside the window. Stage 0: the full sweep every key; vertical_slash
// in kept order the runs of level b's offsets as key ranges, in dropped order the gaps between
// them. Group stages: vertical_slash the head's columns of one level, up to r1. Uniform control
// flow: every thread runs it with the same values.
struct SweepCursor {
  int family, r0, r1, rb, n_groups, n_col_levels, n_sinks;
  bool dropped;
  const int32_t* sinks;
  const int32_t* windows;
  const int32_t* groups;     // the head's grouped columns
  const int32_t* level_end;  // [column levels]
  const int32_t* off;        // the head's offsets of level b
  const int32_t* run_start;
  const int8_t* block_level;  // block_sparse: this row block's key blocks' levels
  int n_runs, n_off;
  int stage = 0, run = 0, pos = 0, end = 0, kind = 0;
  int block = 0;  // block_sparse: the next key block to look at
  int gap_end = 0;  // dropped order: the upper end (exclusive) of the next gap
  bool opened = false;

  // The next run of offsets that reaches the row block, as a key range [lo, hi); false when none
  // is left.
  __device__ bool next_run(int* lo, int* hi) {
    if (run >= n_runs) return false;
    const int s = __ldg(run_start + run);
    const int e = (run + 1 < n_runs ? __ldg(run_start + run + 1) : n_off) - 1;
    ++run;
    const int t_lo = __ldg(off + s);
    if (t_lo > r1) {  // runs ascend: no later one reaches either
      run = n_runs;
      return false;
    }
    *lo = max(0, r1 - __ldg(off + e) - (kBlock - 1));
    *hi = r1 - t_lo + 1;
    return true;
  }
  // Stage 0's next segment: a run (kept order) or the gap above it (dropped order, runs descend
  // in keys); false when none is left.
  __device__ bool next_base() {
    int lo = 0, hi = 0;
    kind = 1;
    if (!dropped) {
      if (!next_run(&lo, &hi)) return false;
      pos = lo;
      end = hi;
      return true;
    }
    while (gap_end > 0) {
      if (!next_run(&lo, &hi)) lo = hi = 0;
      pos = hi;
      end = gap_end;
      gap_end = lo;
      if (pos < end) return true;
    }
    return false;
  }
  // block_sparse: the next key block of the current stage's level, as a key range; false when none
  // is left.
  __device__ bool next_block() {
    while (block <= rb) {
      const int c = block++;
      if (block_level[c] == stage - 1) {
        pos = c * kBlock;
        end = min(pos + kBlock, r1 + 1);
        kind = 1;
        return true;
      }
    }
    return false;
  }
  // The current stage's first segment; false when it is empty.
  __device__ bool open_stage() {
    if (family == kSweepAShape) {
      const AShapeStageKeys k = a_shape_stage_keys(stage, n_sinks, sinks, windows, r0, r1);
      pos = k.begin;
      end = k.end;
      kind = 1;
      return pos < end;
    }
    if (family == kSweepBlockSparse) {
      block = 0;
      return stage > 0 && next_block();
    }
    if (stage == 0) {
      if (family == kSweepVerticalSlash) {
        gap_end = r1 + 1;
        return next_base();
      }
      pos = 0;  // the full sweep
      end = r1 + 1;
      kind = 1;
      return true;
    }
    const int a = dropped ? n_col_levels - stage : stage - 1;
    const int lo = a > 0 ? __ldg(level_end + a - 1) : 0, hi = __ldg(level_end + a);
    pos = lo;
    end = lo + count_at_most(groups + lo, hi - lo, r1);
    kind = 2;
    return pos < end;
  }
  __device__ void next_segment() {
    while (stage <= n_groups) {
      if (!opened) {
        opened = true;
        if (open_stage()) return;
      } else if (stage == 0 && family == kSweepVerticalSlash && next_base()) {
        return;
      } else if (stage > 0 && family == kSweepBlockSparse && next_block()) {
        return;
      }
      ++stage;
      opened = false;
    }
    kind = 0;
  }
  __device__ SweepTile next() {
    if (kind == 0 || pos >= end) next_segment();
    SweepTile t;
    if (stage > n_groups) {
      t.kind = 0;
      t.start = t.count = 0;
      t.stage = n_groups + 1;
      return t;
    }
    t.kind = kind;
    t.start = pos;
    t.count = min(kKeyTile, end - pos);
    t.stage = stage;
    pos += t.count;
    return t;
  }
};

// A row's value summed over the four threads of its quad (the threads holding one fragment row).
template <typename V>
__device__ __forceinline__ V quad_sum(V v) {
  v += __shfl_xor_sync(0xffffffffu, v, 1);
  v += __shfl_xor_sync(0xffffffffu, v, 2);
  return v;
}

template <int D>
constexpr int sweep_smem_bytes() {
  return (kRows + 4 * kKeyTile) * D * 2 + 2 * kKeyTile * 4;
}

// Register budget as the mma.sync attention kernel's (flash_forward.cuh): d = 128 holds 64 O
// accumulators and 32 Q registers per thread, so 2 CTAs of 4 warps; d = 64 fits 3.
template <int D>
__global__ void __launch_bounds__(kThreads, D == 64 ? 3 : 2) grid_sweep_kernel(const SweepArgs a) {
  using Mma = MmaOp<__nv_bfloat16>;
  constexpr int kRowBytes = D * 2;

  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* sQ = smem;                                            // [64][D]
  unsigned char* sK = sQ + kRows * kRowBytes;                          // [2][64][D]
  unsigned char* sV = sK + 2 * kKeyTile * kRowBytes;                   // [2][64][D]
  int* sKeys = reinterpret_cast<int*>(sV + 2 * kKeyTile * kRowBytes);  // [2][64] gathered keys, -1 masked
  __shared__ double s_sum[kWarps][2];
  __shared__ int s_underflow[kWarps];

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
  const bool vs = pass.family == kSweepVerticalSlash;
  const bool dropped = vs && a.dropped[pass.level * a.n_heads + head] != 0;
  if (pass.family == kSweepFull) {  // F is read only by the head's dropped-order sweeps
    bool needed = false;
    for (int b = 0; b < a.n_off_levels; ++b) needed = needed || a.dropped[b * a.n_heads + head] != 0;
    if (!needed) return;
  }
  // The cost of these candidates' indexes is counted here: the pairs of the keys swept.
  const bool counts_pairs = vs || pass.family == kSweepBlockSparse;

  SweepCursor cursor;
  cursor.family = pass.family;
  cursor.r0 = r0;
  cursor.r1 = r1;
  cursor.rb = rb;
  cursor.block_level = pass.family == kSweepBlockSparse
                           ? a.block_level + static_cast<int64_t>(head) * a.n_row_blocks * (a.n_row_blocks + 1) / 2 +
                                 static_cast<int64_t>(rb) * (rb + 1) / 2
                           : nullptr;
  cursor.n_groups = dropped ? pass.n_groups_dropped : pass.n_groups;
  cursor.n_col_levels = a.n_col_levels;
  cursor.n_sinks = a.n_sinks;
  cursor.dropped = dropped;
  cursor.sinks = a.sinks;
  cursor.windows = a.windows;
  cursor.groups = vs ? a.col_groups + static_cast<int64_t>(head) * a.col_stride : nullptr;
  cursor.level_end = a.col_level_end;
  const int64_t off_row = (static_cast<int64_t>(pass.level) * a.n_heads + head) * a.off_stride;
  cursor.off = vs ? a.off_lists + off_row : nullptr;
  cursor.run_start = vs ? a.run_starts + off_row : nullptr;
  cursor.n_runs = vs ? __ldg(a.n_runs + pass.level * a.n_heads + head) : 0;
  cursor.n_off = vs ? __ldg(a.off_count + pass.level) : 0;
  const int8_t* y_row = vs ? a.y_of + static_cast<int64_t>(head) * N : nullptr;
  const int8_t* x_row = vs ? a.x_of + static_cast<int64_t>(head) * N : nullptr;

  const __nv_bfloat16* q_base = static_cast<const __nv_bfloat16*>(a.q) + static_cast<int64_t>(head) * D;
  const __nv_bfloat16* k_base = static_cast<const __nv_bfloat16*>(a.k) + static_cast<int64_t>(kv_head) * D;
  const __nv_bfloat16* v_base = static_cast<const __nv_bfloat16*>(a.v) + static_cast<int64_t>(kv_head) * D;

  // Key r of a tile, or -1 where it is not the stage's: a gathered column joins only outside
  // level b's ranges (else stage 0 has it); dropped order's stage 0 holds the keys of no column level.
  auto tile_key = [&](const SweepTile& t, int r) {
    if (r >= t.count) return -1;
    if (t.kind == 1) {
      const int key = t.start + r;
      return dropped && t.stage == 0 && x_row[key] != a.n_col_levels ? -1 : key;
    }
    const int key = __ldg(cursor.groups + t.start + r);
    return y_row[r1 - key] > pass.level ? key : -1;
  };
  auto load_tile = [&](const SweepTile& t, int stage) {
    auto key_of = [&](int r) { return tile_key(t, r); };
    copy_tile_rows<D, kKeyTile, kThreads>(smem_addr(sK + stage * kKeyTile * kRowBytes), k_base, a.k_stride, tid, key_of);
    copy_tile_rows<D, kKeyTile, kThreads>(smem_addr(sV + stage * kKeyTile * kRowBytes), v_base, a.v_stride, tid, key_of);
    for (int r = tid; r < kKeyTile; r += kThreads) sKeys[stage * kKeyTile + r] = tile_key(t, r);
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
  long long keys_so_far = 0;    // keys of the sweep so far (vertical_slash: its index's pairs follow)
  uint32_t q_frag[D / 16][4];

  // The measures of the candidate whose sums are complete after `stage`: every thread calls it.
  auto snapshot = [&](int stage_done) {
    const int group = pass.family == kSweepAShape ? a_shape_snapshot_group(stage_done, a.n_sinks)
                      : dropped                    ? a.n_col_levels - 1 - stage_done
                                                   : stage_done - 1;
    if (group < 0) return;
    const int c = __ldg(a.pass_cands + pass_i * a.max_groups + group);
    if (c < 0) return;
    double err_rows = 0.0, mass_rows = 0.0;
    int underflow = 0;
#pragma unroll
    for (int ri = 0; ri < 2; ++ri) {
      double m = quad_sum(mass[ri]);
      const int row = row_of[ri];
      // Dropped order: the kept mass is the row's total minus the dropped one; where it is a
      // small share of the total the difference has lost digits, as a tiny mass has.
      double total = 0.0;
      if (dropped && row < N) {
        total = a.l_total[static_cast<int64_t>(head) * N + row];
        m = total - m;
      }
      const bool ok = row < N && m >= kMinMass && (!dropped || m >= kMinKeptShare * total);
      float e = 0.f;
      if (ok) {
        const float inv = static_cast<float>(1.0 / m);
        const __nv_bfloat16* ref = static_cast<const __nv_bfloat16*>(a.o_ref) +
                                   static_cast<int64_t>(row) * a.o_stride + head * D + 2 * t4;
        const float* f = dropped ? a.f_sum + (static_cast<int64_t>(head) * N + row) * D + 2 * t4 : nullptr;
#pragma unroll
        for (int db = 0; db < D / 8; ++db) {
          const float2 r = __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(ref + db * 8));
          float k0 = o_acc[db][2 * ri], k1 = o_acc[db][2 * ri + 1];
          if (dropped) {
            const float2 fv = *reinterpret_cast<const float2*>(f + db * 8);
            k0 = fv.x - k0;
            k1 = fv.y - k1;
          }
          const float d0 = k0 * inv - r.x, d1 = k1 * inv - r.y;
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
      // The candidate's index holds every key up to r1 but the dropped ones.
      const long long kept_keys = dropped ? (r1 + 1) - keys_so_far : keys_so_far;
      if (counts_pairs) atomicAdd(a.pairs + at, static_cast<unsigned long long>(kept_keys * (r1 - r0 + 1)));
    }
    __syncthreads();
  };

  SweepTile cur = cursor.next();
  if (cur.kind != 0) load_tile(cur, 0);
  cp_async_commit();
  int completed = 0;  // stages before this one are complete
  int stage = 0;
  bool first = true;
  while (cur.kind != 0) {
    const SweepTile nxt = cursor.next();
    if (nxt.kind != 0) load_tile(nxt, stage ^ 1);
    cp_async_commit();
    cp_async_wait<1>();
    __syncthreads();
    if (first) {
      load_q_fragments<D>(q_frag, smem_addr(sQ), warp * 16, lane);
      first = false;
    }
    for (; completed < cur.stage; ++completed) snapshot(completed);

    const int* keys = sKeys + stage * kKeyTile;
    const unsigned present_lo = __ballot_sync(0xffffffffu, keys[lane] >= 0);
    const unsigned present_hi = __ballot_sync(0xffffffffu, keys[lane + 32] >= 0);
    if (counts_pairs) keys_so_far += __popc(present_lo) + __popc(present_hi);
    // a_shape: the stage keeps i - j in [w_lo, w_hi), and a subtracting stage negates its weights.
    int w_lo = 0, w_hi = INT_MAX;
    float sign = 1.f;
    if (pass.family == kSweepAShape) {
      const AShapeStageKeys k = a_shape_stage_keys(cur.stage, a.n_sinks, a.sinks, a.windows, r0, r1);
      w_lo = k.w_lo;
      w_hi = k.w_hi;
      if (k.subtract) sign = -1.f;
    }
    // Whether every (row, key) pair of this warp's part of the tile is kept: all 64 keys present
    // and, as keys and rows ascend, the largest key causal for the first row, every row real, and
    // the tile's distances i - j within [w_lo, w_hi). Then no mask is computed.
    const bool unmasked = present_lo == 0xffffffffu && present_hi == 0xffffffffu && keys[kKeyTile - 1] <= warp_row0 &&
                          warp_row0 + 15 < N && warp_row0 - keys[kKeyTile - 1] >= w_lo &&
                          warp_row0 + 15 - keys[0] < w_hi;

    // S = Q K^T for this warp's 16 rows x 64 keys.
    float s[8][4];
    warp_scores<__nv_bfloat16, D>(s, q_frag, smem_addr(sK + stage * kKeyTile * kRowBytes), lane);

    // P = exp(s - lse) on the keys of this stage: causal, the tile's valid keys, distances in
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
    const uint32_t v_src = smem_addr(sV + stage * kKeyTile * kRowBytes);
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
    stage ^= 1;
    cur = nxt;
  }
  cp_async_wait<0>();
  for (; completed <= cursor.n_groups; ++completed) snapshot(completed);

  if (pass.family == kSweepFull) {  // F and the row masses, for the dropped-order sweeps
#pragma unroll
    for (int ri = 0; ri < 2; ++ri) {
      const double m = quad_sum(mass[ri]);
      const int row = row_of[ri];
      if (row >= N) continue;
      if (t4 == 0) a.l_total[static_cast<int64_t>(head) * N + row] = m;
      float* f = a.f_sum + (static_cast<int64_t>(head) * N + row) * D + 2 * t4;
#pragma unroll
      for (int db = 0; db < D / 8; ++db)
        *reinterpret_cast<float2*>(f + db * 8) = make_float2(o_acc[db][2 * ri], o_acc[db][2 * ri + 1]);
    }
  }
}

template <int D>
void launch_for(const SweepArgs& args, cudaStream_t stream) {
  constexpr int smem = sweep_smem_bytes<D>();
  HC_CHECK_CUDA(cudaFuncSetAttribute(grid_sweep_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  const int64_t ctas = static_cast<int64_t>(args.n_row_blocks) * args.n_heads * args.n_passes;
  if (ctas > 0x7fffffff) throw InputError("grid probe", "too many row blocks x heads x sweeps for one launch");
  grid_sweep_kernel<D><<<static_cast<unsigned>(ctas), kThreads, smem, stream>>>(args);
  HC_CHECK_LAUNCH();
}

}  // namespace

void launch_grid_sweep(const SweepArgs& args, int head_dim, cudaStream_t stream) {
  if (args.n_passes == 0) return;
  if (head_dim == 64) launch_for<64>(args, stream);
  else if (head_dim == 128) launch_for<128>(args, stream);
  else throw InputError("grid probe", "head_dim must be 64 or 128");
}

}  // namespace hc::kernels::detail

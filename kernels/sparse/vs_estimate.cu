// The vertical-slash estimate on the GPU (index_device.cuh, launch_vs_scores): per query head, the
// column and diagonal sums of the last queries' attention, the scores the top-k selection ranks.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "common/cuda_check.h"
#include "kernels/chained_launch.h"
#include "kernels/attention/wgmma_ops.cuh"
#include "kernels/hopper_primitives.cuh"  // wgmma sequencing, descriptors, panel layout
#include "kernels/sparse/device_pool.h"
#include "kernels/sparse/index_device.cuh"

namespace hc::kernels::detail {
namespace {

// The estimator works on tiles of 64 keys x the last L <= 64 queries, never storing the scores
// (an [H, 64, N] fp32 buffer was written once and read twice: 1 GB at 128K tokens, H = 32, and
// 2.35 ms of a 3.6 ms vertical-slash build on H100, ncu). Pass 1 gives each row's LSE from
// per-tile partials; pass 2 recomputes the tile and sums A = exp(S - LSE) per column (whole in
// the tile) and per diagonal (a diagonal crosses at most two tiles: each tile's part is added to
// the zeroed score atomically, and a sum of two parts does not depend on their order). The sums
// are reproducible, and so is the index. (The parts written out and added by a third launch cost
// 3.0 us per layer at 8K tokens, H = 9, d = 64; ncu on H200.)

// A CTA (one warpgroup) takes one head and a run of consecutive 64-key tiles: the head's last
// queries stay in shared memory, the key tiles stream through a ring of cp.async stages, so the
// next tiles load while this one is computed, and each tile's scores are one wgmma sequence.
// Against one CTA per (head, tile), loading the queries and its tile and then computing with
// nothing in flight (160 + 267 us for the two passes at 32K tokens, H = 32, d = 128), the ring
// alone measured 167 + 243 us; what made the passes faster then was leaving the masks out of the
// tiles that need none (below; the two builds at 32K, d = 128: 0.54-0.65 -> 0.40-0.47 ms with the
// selection changes). The wgmma scores (est_score_tile) took the passes from 88 + 149 to 74 + 129
// us at 32K and from 337 + 578 to 284 + 486 us at 128K (d = 128, ncu on H100, clocks unlocked;
// d = 64 unchanged). Grouping a KV group's heads in one CTA, each K tile loaded once for all of
// them, did not pay: 4 heads per CTA (mma.sync) gave 0.97-0.99x the builds at d = 128 and
// 1.05-1.09x at d = 64, where only 12 warps fit per SM.
// Ring stages: 3 at d = 64; 2 at d = 128, which leaves shared memory for three CTAs per SM in
// pass 2 instead of two (4 stages at both head dims: builds at 32K and 128K, d = 128, 6-12%
// slower, at 8K unchanged; H100 A/B).
template <int D>
constexpr int est_stages() {
  return D == 128 ? 2 : 3;
}
constexpr int kEstThreads = 128;
constexpr int kEstARow = 65;  // A tile [64][65] fp32: padded so that the diagonal reads avoid bank conflicts
// Pass 2's reductions: column partials per warp [4][64], diagonal partials per half [2][128].
constexpr int kEstReduceFloats = 4 * 64 + 2 * 128;

template <int D>
constexpr int est_smem_bytes(int pass) {  // +1024: the tiles' alignment (128-byte swizzle atoms)
  return (1 + est_stages<D>()) * 64 * D * 2 + (pass == 2 ? (64 * kEstARow + kEstReduceFloats) * 4 : 0) + 1024;
}

// 64 rows [64][D] (bf16/fp16) into a shared tile in the wgmma operand layout (64-column panels of
// [64][128 bytes], 128-byte swizzle: detail::panel_offset), rows >= valid_rows zero-filled.
template <typename T, int D>
__device__ __forceinline__ void est_load_rows(uint32_t dst, const T* src, int64_t stride, int valid_rows) {
  constexpr int kChunks = D / 8;
  for (int idx = threadIdx.x; idx < 64 * kChunks; idx += kEstThreads) {
    const int r = idx / kChunks, c = idx % kChunks;
    const bool ok = r < valid_rows;
    detail::cp_async_16(dst + detail::panel_offset<64>(r, c), src + (ok ? r : 0) * stride + c * 8, ok);
  }
}

// S tile s[nb][e] = q_{i_r} . k_j (unscaled) for r = 16 warp + g + 8 (e >> 1),
// j = j0 + 8 nb + 2 t4 + (e & 1), by the CTA's four warps as one warpgroup: m64n64k16 wgmmas with
// the queries and the key tile from shared memory (q_desc, k_desc: descriptor low words). Per
// warp mma.sync fragments read the whole key tile into every warp (ldmatrix) and made the passes
// bound by shared-memory traffic (L1 81% busy, a third of the warps' stalls on its queue in pass
// 2 at 128K tokens, d = 128; ncu on H100).
template <typename T, int D>
__device__ __forceinline__ void est_score_tile(uint32_t q_desc, uint32_t k_desc, float (&s)[8][4]) {
  using namespace detail;
  wgmma_fence();  // the first wgmma overwrites s (scale_d = 0), as the attention kernel's QK^T
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const uint32_t off = (kk >> 2) * (64 * 128) + (kk & 3) * 32;  // panel, then 16 columns = 32 bytes
    Wgmma<T, 64>::ss(s, smem_desc_at(q_desc, off), smem_desc_at(k_desc, off), kk > 0 ? 1 : 0);
  }
  wgmma_commit();
  wgmma_wait<0>();
  fence_accumulators<8>(s);
}

// Pass 1 (kPass == 1): per (tile, row) the max and the sum of exp(S - max) over the row's keys
// j <= i_r in the tile: partial [H, 64, n_tiles, 2]; every CTA also zeroes its share of
// diag_score [H, N]. Pass 2: A = exp(S * scale - lse) on the tile;
// col_score[h][j] = sum_r A[r][j] for the tile's keys, and the tile's part of each diagonal,
// sum over the tile's entries (r, j0 + jj) of A, added into diag_score[h][o], o = first_row - j0
// + r - jj (127 diagonals): a diagonal crosses at most two tiles, and two floats added to zero
// give the same sum in either order, so the atomic adds are reproducible. Grid (H, chunks): CTA
// (h, c) takes tiles [c * per_cta, (c + 1) * per_cta), at least one; the heads of a KV group read
// a K tile at about the same time.
template <typename T, int D, int kPass>
__global__ void __launch_bounds__(kEstThreads) vs_estimate_kernel(const T* q, const T* k, int64_t q_stride,
                                                                  int64_t k_stride, int n, int n_last, int group,
                                                                  float scale, int n_tiles, int per_cta,
                                                                  float* partial, const float* lse,
                                                                  float* col_score, float* diag_score) {
  detail::chained_kernel_begins();
  using namespace detail;
  constexpr int kTileBytes = 64 * D * 2;
  constexpr int kEstStages = est_stages<D>();
  extern __shared__ __align__(128) unsigned char est_smem_raw[];
  unsigned char* est_smem = align_smem_1024(est_smem_raw);
  const uint32_t sQ = smem_addr(est_smem);  // [64][D], then K stages [kEstStages][64][D], then A
  auto stage_addr = [&](int st) { return sQ + (1 + st) * kTileBytes; };
  const uint32_t q_desc = smem_desc_low(sQ, 16);
  float(*sA)[kEstARow] = reinterpret_cast<float(*)[kEstARow]>(est_smem + (1 + kEstStages) * kTileBytes);
  float(*s_col)[64] = reinterpret_cast<float(*)[64]>(&sA[64][0]);  // [4 warps][64 keys]
  float(*s_diag)[128] = reinterpret_cast<float(*)[128]>(&s_col[4][0]);  // [2 halves of the rows][128]
  const int head = blockIdx.x, kv_head = head / group;
  const int t_begin = blockIdx.y * per_cta, t_end = min(n_tiles, t_begin + per_cta);  // non-empty (launcher)
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  if constexpr (kPass == 1) {
    const int slice = (n + gridDim.y - 1) / gridDim.y;
    const int o_end = min(n, (static_cast<int>(blockIdx.y) + 1) * slice);
    for (int o = blockIdx.y * slice + tid; o < o_end; o += kEstThreads)
      diag_score[static_cast<int64_t>(head) * n + o] = 0.f;
  }
  const int first_row = n - n_last;
  const T* k_head = k + kv_head * D;
  auto load_tile = [&](int t, int st) {
    est_load_rows<T, D>(stage_addr(st), k_head + static_cast<int64_t>(t) * 64 * k_stride, k_stride, n - t * 64);
  };
  est_load_rows<T, D>(sQ, q + static_cast<int64_t>(first_row) * q_stride + head * D, q_stride, n_last);
#pragma unroll
  for (int st = 0; st < kEstStages - 1; ++st) {
    if (t_begin + st < t_end) load_tile(t_begin + st, st);
    cp_async_commit();  // one group per stage, empty or not, so the waits below count uniformly
  }
  float l[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = warp * 16 + g + 8 * h;
    l[h] = kPass == 2 && r < n_last ? lse[head * 64 + r] : 0.f;
  }
  for (int t = t_begin, i = 0; t < t_end; ++t, ++i) {
    cp_async_wait<kEstStages - 2>();  // tile t (and the queries) landed for this thread
    fence_proxy_async();              // cp.async writes, read by wgmma next
    __syncthreads();                  // ... for every thread; all are done with tile t - 1's stage
    if (t + kEstStages - 1 < t_end) load_tile(t + kEstStages - 1, (i + kEstStages - 1) % kEstStages);
    cp_async_commit();
    float s[8][4];
    est_score_tile<T, D>(q_desc, smem_desc_low(stage_addr(i % kEstStages), 16), s);
    const int j0 = t * 64;
    // Tiles wholly before the first query row, with all 64 query rows present, need no mask
    // (all but the last one or two of a head): ncu had the masks' index arithmetic and branches at
    // several times the tensor instructions (H100, 32K tokens, d = 128).
    const bool unmasked = n_last == 64 && j0 + 63 < first_row;
    auto keep = [&](int r, int j, auto masked) {
      if constexpr (decltype(masked)::value) return r < n_last && j <= first_row + r && j < n;
      else return true;
    };
    // exp(x * scale - m) as exp2(x * scale log2(e) - m log2(e)): one FFMA and the EX2 unit.
    const float scale_log2 = scale * kLog2e;
    if constexpr (kPass == 1) {
      auto row_stats = [&](auto masked) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = warp * 16 + g + 8 * h;
          float mx = -__builtin_huge_valf();
#pragma unroll
          for (int nb = 0; nb < 8; ++nb)
#pragma unroll
            for (int e = 0; e < 2; ++e)
              if (keep(r, j0 + nb * 8 + 2 * t4 + e, masked)) mx = fmaxf(mx, s[nb][2 * h + e]);
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          const float m_log2 = mx * scale_log2;
          float sum = 0.f;
#pragma unroll
          for (int nb = 0; nb < 8; ++nb)
#pragma unroll
            for (int e = 0; e < 2; ++e)
              if (keep(r, j0 + nb * 8 + 2 * t4 + e, masked)) sum += exp2f(fmaf(s[nb][2 * h + e], scale_log2, -m_log2));
          sum += __shfl_xor_sync(0xffffffffu, sum, 1);
          sum += __shfl_xor_sync(0xffffffffu, sum, 2);
          if (t4 == 0 && r < n_last) {
            float* out = partial + ((static_cast<int64_t>(head) * 64 + r) * n_tiles + t) * 2;
            out[0] = mx * scale;
            out[1] = sum;
          }
        }
      };
      if (unmasked) row_stats(std::false_type{});
      else row_stats(std::true_type{});
    } else {
      // A into shared memory for the diagonals; the columns' sums over this warp's 16 rows from
      // registers (over the two rows of a thread, then across g by shuffles).
      auto a_tile = [&](auto masked) {
        const float l_log2[2] = {l[0] * kLog2e, l[1] * kLog2e};
#pragma unroll
        for (int nb = 0; nb < 8; ++nb)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float col = 0.f;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              const int r = warp * 16 + g + 8 * h;
              const int jj = nb * 8 + 2 * t4 + e;
              const float x = keep(r, j0 + jj, masked) ? exp2f(fmaf(s[nb][2 * h + e], scale_log2, -l_log2[h])) : 0.f;
              sA[r][jj] = x;
              col += x;
            }
#pragma unroll
            for (int off = 4; off < 32; off <<= 1) col += __shfl_xor_sync(0xffffffffu, col, off);
            if (g == 0) s_col[warp][nb * 8 + 2 * t4 + e] = col;
          }
      };
      if (unmasked) a_tile(std::false_type{});
      else a_tile(std::true_type{});
      __syncthreads();  // A and the column partials complete (the next tile's first barrier guards their reuse)
      // Diagonal x = 63 + r - jj. Thread p < 64 of a half takes diagonals p (rows 0 .. p) and
      // p + 64 (rows p + 1 .. 63): one walk over the rows, each half of the CTA over half of them.
      // Four partial sums of each (rows r mod 4), added in a fixed order, instead of one chain of
      // 32 dependent adds per tile, where most of the pass's FADD samples were: pass 484-493 ->
      // 470-472 us at 128K tokens, d = 128 (ncu on H100).
      {
        const int p = tid & 63, half = tid >> 6;
        float dlo[4] = {0.f, 0.f, 0.f, 0.f}, dhi[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
        for (int i = 0; i < 32; ++i) {
          const int r = 32 * half + i;
          const float x = sA[r][(r - p + 63) & 63];  // (r - p - 1) mod 64: the same column for r > p
          if (r <= p) dlo[i & 3] += x;
          else dhi[i & 3] += x;
        }
        s_diag[half][p] = (dlo[0] + dlo[1]) + (dlo[2] + dlo[3]);
        s_diag[half][p + 64] = (dhi[0] + dhi[1]) + (dhi[2] + dhi[3]);
      }
      __syncthreads();
      if (tid < 64 && j0 + tid < n)
        col_score[static_cast<int64_t>(head) * n + j0 + tid] =
            ((s_col[0][tid] + s_col[1][tid]) + s_col[2][tid]) + s_col[3][tid];
      const int o = tid - 63 + first_row - j0;
      if (tid < 127 && o >= 0 && o < n)
        atomicAdd(diag_score + static_cast<int64_t>(head) * n + o, s_diag[0][tid] + s_diag[1][tid]);
    }
  }
  cp_async_wait<0>();  // nothing in flight when the CTA leaves
}

// lse[h][r] = log sum_{j <= i_r} exp(S[h][r][j]), from the tiles' partials.
__global__ void vs_row_lse_kernel(const float* partial, int n_tiles, float* lse) {
  detail::chained_kernel_begins();
  constexpr int kThreads = 256;
  __shared__ float s_red[kThreads / 32];
  const int head = blockIdx.y, r = blockIdx.x;
  const float* row = partial + (static_cast<int64_t>(head) * 64 + r) * n_tiles * 2;
  auto block_reduce = [&](float v, bool is_max) {
    for (int off = 16; off > 0; off >>= 1) {
      const float y = __shfl_xor_sync(0xffffffffu, v, off);
      v = is_max ? fmaxf(v, y) : v + y;
    }
    if ((threadIdx.x & 31) == 0) s_red[threadIdx.x >> 5] = v;
    __syncthreads();
    v = s_red[0];
    for (int w = 1; w < kThreads / 32; ++w) v = is_max ? fmaxf(v, s_red[w]) : v + s_red[w];
    __syncthreads();
    return v;
  };
  float mx = -__builtin_huge_valf();
  for (int t = threadIdx.x; t < n_tiles; t += kThreads) mx = fmaxf(mx, row[2 * t]);
  mx = block_reduce(mx, true);  // finite: key 0 is in every row
  float sum = 0.f;
  for (int t = threadIdx.x; t < n_tiles; t += kThreads)
    if (row[2 * t + 1] > 0.f) sum += row[2 * t + 1] * expf(row[2 * t] - mx);
  sum = block_reduce(sum, false);
  if (threadIdx.x == 0) lse[head * 64 + r] = mx + logf(sum);
}

template <typename T, int D>
void launch_vs_estimate(const GpuQK& qk, int n_last, float* col_score, float* diag_score, float* scratch,
                        cudaStream_t stream) {
  const int64_t qs = qk.q_row_stride ? qk.q_row_stride : int64_t(qk.n_heads) * D;
  const int64_t ks = qk.k_row_stride ? qk.k_row_stride : int64_t(qk.n_kv_heads) * D;
  const int n = qk.n_tokens, n_tiles = (n + 63) / 64, group = qk.n_heads / qk.n_kv_heads;
  const float scale = 1.f / std::sqrt(float(D));
  const T* q = static_cast<const T*>(qk.q);
  const T* k = static_cast<const T*>(qk.k);
  float* partial = scratch;                                          // [H, 64, tiles, 2]
  float* lse = partial + int64_t(qk.n_heads) * 64 * n_tiles * 2;     // [H, 64]
  // One wave: enough CTAs to fill every SM once at the kernel's occupancy (more, shorter runs
  // of tiles would give each CTA less to overlap, fewer would leave SMs idle; not tuned further).
  const int sms = sm_count();
  auto launch_pass = [&](auto kernel, int pass) {
    const int smem = est_smem_bytes<D>(pass);
    HC_CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    int per_sm = 0;
    HC_CHECK_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kEstThreads, smem));
    const int64_t ctas_per_head =
        std::min<int64_t>(n_tiles, std::max<int64_t>(1, int64_t(std::max(per_sm, 1)) * sms / qk.n_heads));
    const int per_cta = static_cast<int>((n_tiles + ctas_per_head - 1) / ctas_per_head);
    const dim3 grid(qk.n_heads, (n_tiles + per_cta - 1) / per_cta);
    launch_chained(kernel, grid, kEstThreads, smem, stream, 0, q, k, qs, ks, n, n_last, group, scale, n_tiles,
                   per_cta, partial, lse, col_score, diag_score);
  };
  launch_pass(vs_estimate_kernel<T, D, 1>, 1);  // also zeroes diag_score
  launch_chained(vs_row_lse_kernel, dim3(n_last, qk.n_heads), 256, 0, stream, 0, partial, n_tiles, lse);
  launch_pass(vs_estimate_kernel<T, D, 2>, 2);
}

}  // namespace

int64_t vs_scratch_floats(int64_t n_heads, int64_t n_tokens) {
  const int64_t n_tiles = (n_tokens + 63) / 64;
  return n_heads * 64 * n_tiles * 2 + n_heads * 64;  // partials, LSEs
}

void launch_vs_scores(const GpuQK& qk, int last_q, float* col_score, float* diag_score, float* scratch,
                      cudaStream_t stream) {
  const int n_last = std::min({last_q, qk.n_tokens, 64});
  const bool bf16 = qk.dtype == AttnDType::kBF16;
  if (qk.head_dim == 64) {
    if (bf16) launch_vs_estimate<__nv_bfloat16, 64>(qk, n_last, col_score, diag_score, scratch, stream);
    else launch_vs_estimate<__half, 64>(qk, n_last, col_score, diag_score, scratch, stream);
  } else {
    if (bf16) launch_vs_estimate<__nv_bfloat16, 128>(qk, n_last, col_score, diag_score, scratch, stream);
    else launch_vs_estimate<__half, 128>(qk, n_last, col_score, diag_score, scratch, stream);
  }
}

}  // namespace hc::kernels::detail

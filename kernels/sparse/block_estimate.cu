// The block-sparse estimate on the GPU (index_device.cuh): mean-pooled Q and K per 64-row block,
// then per (head, row block) the top-k key blocks by pooled score, key blocks 0 and the diagonal
// forced.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cmath>
#include <string>

#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/chained_launch.h"
#include "kernels/sparse/index_device.cuh"
#include "kernels/sparse/topk_select.cuh"

namespace hc::kernels::detail {
namespace {

// The mean over the rows of block b of the queries' and the keys' heads (fp32), grid (nb, H + Hkv):
// y < H pools query head y into pooled_q[y][b][x], the others key head y - H into
// pooled_k[y - H][x][b] (key-major: the selection reads keys across a warp).
template <typename T>
__global__ void pool_blocks_kernel(const T* q, int64_t q_stride, const T* k, int64_t k_stride, int n, int d,
                                   int n_heads, float* pooled_q, float* pooled_k) {
  detail::chained_kernel_begins();
  const int b = blockIdx.x, x = threadIdx.x, nb = gridDim.x;
  if (x >= d) return;
  const bool is_q = static_cast<int>(blockIdx.y) < n_heads;
  const int h = is_q ? blockIdx.y : blockIdx.y - n_heads;
  const T* src = is_q ? q : k;
  const int64_t row_stride = is_q ? q_stride : k_stride;
  const int r0 = b * kBlock, r1 = min(r0 + kBlock, n);
  float acc = 0.f;
  for (int i = r0; i < r1; ++i) acc += static_cast<float>(src[i * row_stride + h * d + x]);
  const float mean = acc / static_cast<float>(r1 - r0);
  if (is_q) pooled_q[(static_cast<int64_t>(h) * nb + b) * d + x] = mean;
  else pooled_k[(static_cast<int64_t>(h) * d + x) * nb + b] = mean;
}


// Block-sparse selection. A CTA takes kRows consecutive row blocks of one head (fewer in the
// last one), longest first: their block scores against every causal key block go to shared
// memory, each pooled key row read once for all of them, then each warp selects the top-k of its
// rows (key blocks 0 and R forced). One CTA per row block, reading the head's pooled K once per
// row block and selecting with the whole CTA, took 322 us at 32K tokens and most of a 4.4 ms
// build at 128K (H = 32, d = 128; ncu on H100). kept [H, nb, cap], kept_count [H * nb].
constexpr int kSelectMaxRows = 16;
constexpr int kSelectThreads = 256;
inline size_t block_select_smem(int nb, int d, int rows) {
  return (size_t(rows) * d + size_t(rows) * nb + (kSelectThreads / 32) * 258) * sizeof(float);
}
template <int D, int kRows>
__global__ void __launch_bounds__(kSelectThreads, 2) block_select_kernel(const float* pooled_q, const float* pooled_k,
                                                                      int nb, int group, float scale, HeadValue k_blocks,
                                                                      int cap, int32_t* kept, int32_t* kept_count) {
  detail::chained_kernel_begins();
  extern __shared__ float smem[];
  float* s_q = smem;                                     // [kRows][D], rows past the last one zero
  float* s_score = s_q + kRows * D;                      // [kRows][nb]
  int* s_warp = reinterpret_cast<int*>(s_score + static_cast<size_t>(kRows) * nb);  // [warps][258]
  const int head = blockIdx.y, kv_head = head / group;
  const int k_head = k_blocks.at(head);
  if (k_head < 0) return;  // not a block-sparse head
  const int R0 = (gridDim.x - 1 - blockIdx.x) * kRows;  // the longest rows go first
  const int rows = min(kRows, nb - R0);
  const int n_keys = R0 + rows;  // key blocks 0 .. R0 + rows - 1
  for (int i = threadIdx.x; i < kRows * D; i += kSelectThreads)
    s_q[i] = i < rows * D ? pooled_q[(static_cast<int64_t>(head) * nb + R0) * D + i] : 0.f;
  __syncthreads();
  // A thread per key block against every row's pooled query. The pooled keys are key-major
  // ([Hkv][d][nb]): a warp's load of one element of 32 consecutive keys is one 128-byte line
  // (stored [nb][d], each load touched 32 lines and ncu had the FMAs waiting on them).
  for (int c = threadIdx.x; c < n_keys; c += kSelectThreads) {
    const float* pk = pooled_k + static_cast<int64_t>(kv_head) * D * nb + c;  // element x at pk[x * nb]
    float acc[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[r] = 0.f;
    // The key's elements kLoads at a time, all loads issued before their FMAs: four loads per
    // step of four elements took 1.88 ms at 128K tokens, H = 32, d = 128, batches of 16 1.57
    // (ncu on H100; the selection phase is 0.34 of it). The rows are a compile-time count, so
    // that the FMAs of different rows interleave (with the row count a runtime bound, each row's
    // chain of four dependent FMAs was its own branch, and ncu had 42% of the warps' stalls on
    // their fixed latency), and the next 16 elements load during this step's FMAs; two CTAs per
    // SM (launch bounds) leave 128 registers for that: kernel 1.58 -> 1.45-1.47 ms, build 2.24 ->
    // 2.13 ms (128K, d = 128). Without the bound ptxas took 48 registers and put the loads back
    // between the FMAs: build 2.39 ms. Each score's FMAs still run over x in order.
    // (Four keys per thread, each query element read once for four FMAs, took 1.73 ms at 128K
    // and doubled the time at 32K: fewer threads with work.)
    constexpr int kLoads = 16;
    float kv[kLoads], kv_next[kLoads];
#pragma unroll
    for (int u = 0; u < kLoads; ++u) kv[u] = __ldg(pk + u * nb);
#pragma unroll
    for (int x0 = 0; x0 < D; x0 += kLoads) {
      if (x0 + kLoads < D) {  // the next elements' loads go out before this step's FMAs
#pragma unroll
        for (int u = 0; u < kLoads; ++u) kv_next[u] = __ldg(pk + (x0 + kLoads + u) * nb);
      }
#pragma unroll
      for (int u = 0; u < kLoads; u += 4) {
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          const float4 qv = reinterpret_cast<const float4*>(s_q + r * D + x0 + u)[0];
          acc[r] = fmaf(qv.x, kv[u + 0], acc[r]);
          acc[r] = fmaf(qv.y, kv[u + 1], acc[r]);
          acc[r] = fmaf(qv.z, kv[u + 2], acc[r]);
          acc[r] = fmaf(qv.w, kv[u + 3], acc[r]);
        }
      }
#pragma unroll
      for (int u = 0; u < kLoads; ++u) kv[u] = kv_next[u];
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r)
      if (r < rows && c <= R0 + r) s_score[r * nb + c] = acc[r] * scale;
  }
  __syncthreads();
  const int warp = threadIdx.x >> 5;
  int* s_hist = s_warp + warp * 258;
  for (int r = warp; r < rows; r += kSelectThreads / 32) {
    const int R = R0 + r, len = R + 1;
    const int n_forced = R == 0 ? 1 : 2;
    const int k_eff = min(len, max(k_head, n_forced));
    const int64_t slot = static_cast<int64_t>(head) * nb + R;
    const float* score = s_score + r * nb;
    warp_select_top(len, k_eff, [&](int x) { return (x == 0 || x == R) ? 0xffffffffu : order_key(score[x]); },
                    s_hist, s_hist + 256, kept + slot * cap);
    if ((threadIdx.x & 31) == 0) kept_count[slot] = k_eff;
  }
}

// Launches block_select_kernel with the most rows per CTA (of the compiled counts) whose shared
// memory lets two CTAs share an SM (their scores take 4 nb bytes per row: 16 rows up to about
// 100K tokens, 12 at 128K, fewer beyond, at least one). Eight rows with the pooled keys staged
// through shared memory in tiles were slower (select 3.28 ms at 128K, d = 128, against 2.48; ncu).
template <int D, int kRows>
void launch_block_select(const float* pooled_q, const float* pooled_k, int nb, int heads, int group, float scale,
                         HeadValue k_blocks, int cap, int32_t* kept, int32_t* kept_count, cudaStream_t stream) {
  constexpr int kNext = kRows > 12 ? 12 : kRows > 8 ? 8 : kRows > 4 ? 4 : 1;
  const size_t smem = block_select_smem(nb, D, kRows);
  if constexpr (kRows > 1) {
    if (smem > 113 * 1024) {
      launch_block_select<D, kNext>(pooled_q, pooled_k, nb, heads, group, scale, k_blocks, cap, kept, kept_count,
                                    stream);
      return;
    }
  }
  HC_CHECK_CUDA(cudaFuncSetAttribute(block_select_kernel<D, kRows>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     int(smem)));
  launch_chained(block_select_kernel<D, kRows>, dim3((nb + kRows - 1) / kRows, heads), kSelectThreads, smem, stream,
                 0, pooled_q, pooled_k, nb, group, scale, k_blocks, cap, kept, kept_count);
}

// Both pools in one launch.
template <typename T>
void launch_pool(const GpuQK& qk, float* pooled_q, float* pooled_k, cudaStream_t stream) {
  const int d = static_cast<int>(qk.head_dim);
  const int nb = static_cast<int>(num_row_blocks(qk.n_tokens));
  const int64_t qs = qk.q_row_stride ? qk.q_row_stride : int64_t(qk.n_heads) * d;
  const int64_t ks = qk.k_row_stride ? qk.k_row_stride : int64_t(qk.n_kv_heads) * d;
  launch_chained(pool_blocks_kernel<T>, dim3(nb, qk.n_heads + qk.n_kv_heads), d, 0, stream, 0,
                 static_cast<const T*>(qk.q), qs, static_cast<const T*>(qk.k), ks, static_cast<int>(qk.n_tokens), d,
                 static_cast<int>(qk.n_heads), pooled_q, pooled_k);
}

}  // namespace

void check_block_select_tokens(int64_t n_tokens, int64_t head_dim) {
  // The selection keeps a row block's scores against every key block in shared memory.
  if (block_select_smem(static_cast<int>(num_row_blocks(n_tokens)), static_cast<int>(head_dim), 1) > 227 * 1024)
    throw InputError(kIndexWhat, "block_sparse on the GPU supports up to 3M tokens, got " + std::to_string(n_tokens));
}

void launch_block_pool(const GpuQK& qk, float* pooled_q, float* pooled_k, cudaStream_t stream) {
  if (qk.dtype == AttnDType::kBF16) launch_pool<__nv_bfloat16>(qk, pooled_q, pooled_k, stream);
  else launch_pool<__half>(qk, pooled_q, pooled_k, stream);
}

void launch_block_select(const GpuQK& qk, const float* pooled_q, const float* pooled_k, HeadValue k_blocks, int cap,
                         int32_t* kept, int32_t* kept_count, cudaStream_t stream) {
  const int nb = static_cast<int>(num_row_blocks(qk.n_tokens));
  const float scale = 1.f / std::sqrt(float(qk.head_dim));
  const int group = qk.n_heads / qk.n_kv_heads;
  if (qk.head_dim == 64)
    launch_block_select<64, kSelectMaxRows>(pooled_q, pooled_k, nb, qk.n_heads, group, scale, k_blocks, cap, kept,
                                            kept_count, stream);
  else
    launch_block_select<128, kSelectMaxRows>(pooled_q, pooled_k, nb, qk.n_heads, group, scale, k_blocks, cap, kept,
                                             kept_count, stream);
}

}  // namespace hc::kernels::detail

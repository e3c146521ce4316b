// Embedding, RMSNorm, bias + RoPE, SwiGLU of the CUDA prefill engine, and the per-row next-token
// comparison of compare_next_token. These are memory-bound passes over [N, width] buffers; the
// GEMMs (cuBLAS) and attention dominate the layer time.
#include <cuda_bf16.h>
#include <math_constants.h>

#include <cstdint>

#include "calib/cuda_kernels.h"
#include "common/cuda_check.h"

namespace hc::cuda {
namespace {

constexpr int kRowThreads = 256;

template <typename T>
__device__ inline T block_sum(T v, T* scratch) {
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = v;
  __syncthreads();
  T total = 0;
  for (int w = 0; w < static_cast<int>(blockDim.x / 32); ++w) total += scratch[w];
  __syncthreads();
  return total;
}

__device__ inline void store(bf16* p, float v) { *p = __float2bfloat16(v); }
__device__ inline void store(float* p, float v) { *p = v; }
__device__ inline float load(const bf16* p) { return __bfloat162float(*p); }
__device__ inline float load(const float* p) { return *p; }

// rsqrt(mean(src^2) + eps) of one row, summed in fp32 by the whole block.
template <typename In>
__device__ inline float row_inv_rms(const In* src, int64_t hidden, float eps, float* scratch) {
  float ss = 0.f;
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) {
    const float v = load(src + c);
    ss += v * v;
  }
  return rsqrtf(block_sum(ss, scratch) / static_cast<float>(hidden) + eps);
}

__global__ void embedding_kernel(const int32_t* tokens, const bf16* embed, float* x, int64_t hidden) {
  const int64_t t = blockIdx.x;
  const bf16* src = embed + static_cast<int64_t>(tokens[t]) * hidden;
  float* dst = x + t * hidden;
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) dst[c] = __bfloat162float(src[c]);
}

template <typename Out>
__global__ void rmsnorm_kernel(const float* x, const int64_t* rows, const float* weight, Out* out, int64_t hidden,
                               float eps) {
  __shared__ float scratch[kRowThreads / 32];
  const int64_t r = blockIdx.x;
  const float* src = x + (rows ? rows[r] : r) * hidden;
  const float inv = row_inv_rms(src, hidden, eps, scratch);
  Out* dst = out + r * hidden;
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) store(dst + c, src[c] * inv * weight[c]);
}

// One thread per rotated pair (t, t + half) of a head; dimensions from 2 * half on are left as they are.
// Pair t of a head is (i, j) = (t, t + half), or (2t, 2t + 1) when interleaved.
__global__ void bias_rope_kernel(bf16* x, const float* bias, const float* cos_t, const float* sin_t, int64_t n,
                                 int heads, int head_dim, int half, bool interleaved, int64_t row_stride) {
  const int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;  // (token, head, pair)
  const int64_t total = n * heads * half;
  if (idx >= total) return;
  const int t = static_cast<int>(idx % half);
  const int h = static_cast<int>((idx / half) % heads);
  const int64_t tok = idx / (static_cast<int64_t>(half) * heads);
  const int i = interleaved ? 2 * t : t, j = interleaved ? 2 * t + 1 : t + half;
  bf16* v = x + tok * row_stride + static_cast<int64_t>(h) * head_dim;  // [head_dim]
  float a = __bfloat162float(v[i]), b = __bfloat162float(v[j]);
  if (bias) {
    a += bias[h * head_dim + i];
    b += bias[h * head_dim + j];
  }
  const float c = cos_t[tok * half + t], s = sin_t[tok * half + t];
  v[i] = __float2bfloat16(a * c - b * s);
  v[j] = __float2bfloat16(b * c + a * s);
}

// x[r, :] += y[r, :] * rsqrt(mean(y[r]^2) + eps) * weight: one block per row, the sum in fp32.
__global__ void rmsnorm_add_kernel(const bf16* y, const float* weight, float* x, int64_t hidden, float eps) {
  __shared__ float scratch[kRowThreads / 32];
  const int64_t r = blockIdx.x;
  const bf16* src = y + r * hidden;  // [hidden]
  const float inv = row_inv_rms(src, hidden, eps, scratch);
  float* dst = x + r * hidden;  // [hidden]
  for (int64_t c = threadIdx.x; c < hidden; c += blockDim.x) dst[c] += __bfloat162float(src[c]) * inv * weight[c];
}

// One warp per row: head_dim is at most a few hundred, so a warp's shuffle sum suffices.
__global__ void head_rmsnorm_kernel(bf16* x, const float* weight, int64_t n_rows, int64_t head_dim, float eps) {
  const int64_t r = static_cast<int64_t>(blockIdx.x) * (blockDim.x / 32) + threadIdx.x / 32;
  if (r >= n_rows) return;  // whole warps leave together
  const int lane = threadIdx.x % 32;
  bf16* row = x + r * head_dim;  // [head_dim]
  float ss = 0.f;
  for (int64_t c = lane; c < head_dim; c += 32) {
    const float v = __bfloat162float(row[c]);
    ss += v * v;
  }
  for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
  const float inv = rsqrtf(ss / static_cast<float>(head_dim) + eps);
  for (int64_t c = lane; c < head_dim; c += 32) row[c] = __float2bfloat16(__bfloat162float(row[c]) * inv * weight[c]);
}

__global__ void add_bias_kernel(bf16* x, const float* bias, int64_t total, int64_t width) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < total) x[i] = __float2bfloat16(__bfloat162float(x[i]) + bias[i % width]);
}

template <typename T>
__global__ void repack_heads_kernel(const T* src, T* dst, int64_t total, int64_t heads, int64_t src_d, int64_t dst_d,
                                    int64_t inner, float scale) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= total) return;
  const int64_t in = i % inner, j = (i / inner) % dst_d, head_row = i / (inner * dst_d);  // outer * heads + head
  store(dst + i, j < src_d ? scale * load(src + (head_row * src_d + j) * inner + in) : 0.f);
}

__global__ void silu_mul_kernel(bf16* gate, const bf16* up, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = __bfloat162float(gate[i]);
  gate[i] = __float2bfloat16(g / (1.f + __expf(-g)) * __bfloat162float(up[i]));
}

__global__ void to_bf16_kernel(const float* src, bf16* dst, int64_t n) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i < n) dst[i] = __float2bfloat16(src[i]);
}

// A running argmax: the largest value, ties to the lowest index (compare_logit_rows' rule).
struct ArgMax {
  float value;
  int64_t index;
};

__device__ inline bool beats(float value, int64_t index, const ArgMax& m) {
  return value > m.value || (value == m.value && index < m.index);
}

__device__ inline ArgMax block_argmax(ArgMax m, ArgMax* scratch) {
  for (int off = 16; off > 0; off >>= 1) {
    const float v = __shfl_xor_sync(0xffffffffu, m.value, off);
    const int64_t i = __shfl_xor_sync(0xffffffffu, m.index, off);
    if (beats(v, i, m)) m = {v, i};
  }
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  if (lane == 0) scratch[warp] = m;
  __syncthreads();
  ArgMax best = scratch[0];
  for (int w = 1; w < static_cast<int>(blockDim.x / 32); ++w)
    if (beats(scratch[w].value, scratch[w].index, best)) best = scratch[w];
  __syncthreads();
  return best;
}

// One block per row: the argmax of each side, then the softmax sums and the KL in double.
__global__ void next_token_rows_kernel(const float* logits_a, const float* logits_b, int64_t vocab, double* kl,
                                       uint8_t* agree, float* confidence) {
  __shared__ ArgMax arg_scratch[kRowThreads / 32];
  __shared__ double sum_scratch[kRowThreads / 32];
  const int64_t r = blockIdx.x;
  const float* a = logits_a + r * vocab;  // [vocab]
  const float* b = logits_b + r * vocab;  // [vocab]
  // Index `vocab` marks "nothing seen yet": any value, -inf included, beats it on the index.
  ArgMax best_a{-CUDART_INF_F, vocab}, best_b{-CUDART_INF_F, vocab};
  for (int64_t t = threadIdx.x; t < vocab; t += blockDim.x) {
    if (beats(a[t], t, best_a)) best_a = {a[t], t};
    if (beats(b[t], t, best_b)) best_b = {b[t], t};
  }
  best_a = block_argmax(best_a, arg_scratch);
  best_b = block_argmax(best_b, arg_scratch);
  if (best_a.index >= vocab) best_a = {a[0], 0};  // every value NaN: the CPU keeps index 0 too
  if (best_b.index >= vocab) best_b = {b[0], 0};
  const double max_a = best_a.value, max_b = best_b.value;
  double sum_a = 0, sum_b = 0, weighted = 0;
  for (int64_t t = threadIdx.x; t < vocab; t += blockDim.x) {
    const double va = a[t], vb = b[t];
    const double ea = exp(va - max_a);
    sum_a += ea;
    sum_b += exp(vb - max_b);
    weighted += ea * (va - vb);
  }
  sum_a = block_sum(sum_a, sum_scratch);
  sum_b = block_sum(sum_b, sum_scratch);
  weighted = block_sum(weighted, sum_scratch);
  if (threadIdx.x == 0) {
    // KL = sum_t p_a(t) * ((a_t - lse_a) - (b_t - lse_b)), clamped at 0 against rounding.
    const double lse_a = max_a + log(sum_a), lse_b = max_b + log(sum_b);
    kl[r] = fmax(0.0, weighted / sum_a - (lse_a - lse_b));
    agree[r] = best_a.index == best_b.index;
    confidence[r] = static_cast<float>(1.0 / sum_a);  // exp(max_a - max_a) / sum_a
  }
}

unsigned blocks_for(int64_t total, int threads) {
  return static_cast<unsigned>((total + threads - 1) / threads);
}

}  // namespace

void embedding(const int32_t* tokens, const bf16* embed, float* x, int64_t n, int64_t hidden, cudaStream_t stream) {
  if (n == 0) return;
  embedding_kernel<<<static_cast<unsigned>(n), kRowThreads, 0, stream>>>(tokens, embed, x, hidden);
  HC_CHECK_LAUNCH();
}

void rmsnorm(const float* x, const int64_t* rows, const float* weight, bf16* out, int64_t n_rows, int64_t hidden,
             float eps, cudaStream_t stream) {
  if (n_rows == 0) return;
  rmsnorm_kernel<bf16><<<static_cast<unsigned>(n_rows), kRowThreads, 0, stream>>>(x, rows, weight, out, hidden, eps);
  HC_CHECK_LAUNCH();
}

void rmsnorm(const float* x, const int64_t* rows, const float* weight, float* out, int64_t n_rows, int64_t hidden,
             float eps, cudaStream_t stream) {
  if (n_rows == 0) return;
  rmsnorm_kernel<float><<<static_cast<unsigned>(n_rows), kRowThreads, 0, stream>>>(x, rows, weight, out, hidden, eps);
  HC_CHECK_LAUNCH();
}

void head_rmsnorm(bf16* x, const float* weight, int64_t n_rows, int64_t head_dim, float eps, cudaStream_t stream) {
  if (n_rows == 0) return;
  constexpr int kWarps = 8;
  head_rmsnorm_kernel<<<static_cast<unsigned>((n_rows + kWarps - 1) / kWarps), kWarps * 32, 0, stream>>>(
      x, weight, n_rows, head_dim, eps);
  HC_CHECK_LAUNCH();
}

void bias_rope(bf16* x, const float* bias, const float* cos, const float* sin, int64_t n, int64_t heads,
               int64_t head_dim, int64_t rotary_dim, bool interleaved, int64_t row_stride, cudaStream_t stream) {
  HC_ASSERT(rotary_dim > 0 && rotary_dim % 2 == 0 && rotary_dim <= head_dim, "rotary_dim is even and within a head");
  HC_ASSERT(bias == nullptr || rotary_dim == head_dim, "a bias with partial rotary is added by add_bias");
  const int64_t total = n * heads * (rotary_dim / 2);
  if (total == 0) return;
  bias_rope_kernel<<<blocks_for(total, 256), 256, 0, stream>>>(x, bias, cos, sin, n, static_cast<int>(heads),
                                                               static_cast<int>(head_dim),
                                                               static_cast<int>(rotary_dim / 2), interleaved,
                                                               row_stride);
  HC_CHECK_LAUNCH();
}

void rmsnorm_add(const bf16* y, const float* weight, float* x, int64_t n_rows, int64_t hidden, float eps,
                 cudaStream_t stream) {
  if (n_rows == 0) return;
  rmsnorm_add_kernel<<<static_cast<unsigned>(n_rows), kRowThreads, 0, stream>>>(y, weight, x, hidden, eps);
  HC_CHECK_LAUNCH();
}

void add_bias(bf16* x, const float* bias, int64_t n, int64_t width, cudaStream_t stream) {
  const int64_t total = n * width;
  if (total == 0) return;
  add_bias_kernel<<<blocks_for(total, 256), 256, 0, stream>>>(x, bias, total, width);
  HC_CHECK_LAUNCH();
}

template <typename T>
void launch_repack_heads(const T* src, T* dst, int64_t outer, int64_t heads, int64_t src_d, int64_t dst_d,
                         int64_t inner, float scale, cudaStream_t stream) {
  const int64_t total = outer * heads * dst_d * inner;
  if (total == 0) return;
  repack_heads_kernel<<<blocks_for(total, 256), 256, 0, stream>>>(src, dst, total, heads, src_d, dst_d, inner, scale);
  HC_CHECK_LAUNCH();
}

void repack_heads(const bf16* src, bf16* dst, int64_t outer, int64_t heads, int64_t src_d, int64_t dst_d,
                  int64_t inner, float scale, cudaStream_t stream) {
  launch_repack_heads(src, dst, outer, heads, src_d, dst_d, inner, scale, stream);
}

void repack_heads(const float* src, float* dst, int64_t outer, int64_t heads, int64_t src_d, int64_t dst_d,
                  int64_t inner, float scale, cudaStream_t stream) {
  launch_repack_heads(src, dst, outer, heads, src_d, dst_d, inner, scale, stream);
}

void silu_mul(bf16* gate, const bf16* up, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  silu_mul_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(gate, up, n);
  HC_CHECK_LAUNCH();
}

void to_bf16(const float* src, bf16* dst, int64_t n, cudaStream_t stream) {
  if (n == 0) return;
  to_bf16_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(src, dst, n);
  HC_CHECK_LAUNCH();
}

void next_token_rows(const float* logits_a, const float* logits_b, int64_t rows, int64_t vocab, double* kl,
                     uint8_t* agree, float* confidence, cudaStream_t stream) {
  if (rows == 0) return;
  next_token_rows_kernel<<<static_cast<unsigned>(rows), kRowThreads, 0, stream>>>(logits_a, logits_b, vocab, kl,
                                                                                  agree, confidence);
  HC_CHECK_LAUNCH();
}

}  // namespace hc::cuda

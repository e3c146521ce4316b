// Per-head squared output error on the device (grid_probe_gpu.h, head_squared_errors_gpu).
#include <cuda_bf16.h>

#include "common/cuda_check.h"
#include "kernels/sparse/grid_probe_gpu.h"

namespace hc::kernels {

namespace {

// 32 rows per block keeps ~N/32 x H blocks in flight at 8K tokens, enough to fill the GPU; the
// reduction is a negligible share of a probe either way.
constexpr int kRowsPerBlock = 32;
constexpr int kThreads = 128;

// grid (ceil(N / kRowsPerBlock), H); partials go to double atomics.
__global__ void head_squared_errors_kernel(const __nv_bfloat16* __restrict__ ref,  // [N, H, d]
                                           const __nv_bfloat16* __restrict__ out,  // [N, H, d]
                                           int n_tokens, int n_heads, int head_dim,
                                           double* __restrict__ diff_sq,  // [H]
                                           double* __restrict__ ref_sq) {  // [H]
  const int head = blockIdx.y;
  const int row0 = blockIdx.x * kRowsPerBlock;
  const int64_t row_stride = int64_t(n_heads) * head_dim;
  float diff = 0.f, sum_ref = 0.f;
  for (int r = row0; r < min(row0 + kRowsPerBlock, n_tokens); ++r) {
    const __nv_bfloat16* pr = ref + r * row_stride + int64_t(head) * head_dim;
    const __nv_bfloat16* po = out + r * row_stride + int64_t(head) * head_dim;
    for (int x = threadIdx.x; x < head_dim; x += blockDim.x) {
      const float a = __bfloat162float(pr[x]), b = __bfloat162float(po[x]);
      diff += (b - a) * (b - a);
      sum_ref += a * a;
    }
  }
  __shared__ float s_diff[kThreads], s_ref[kThreads];
  s_diff[threadIdx.x] = diff;
  s_ref[threadIdx.x] = sum_ref;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) {
      s_diff[threadIdx.x] += s_diff[threadIdx.x + stride];
      s_ref[threadIdx.x] += s_ref[threadIdx.x + stride];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    atomicAdd(&diff_sq[head], double(s_diff[0]));
    atomicAdd(&ref_sq[head], double(s_ref[0]));
  }
}

}  // namespace

void head_squared_errors_gpu(const void* ref_bf16, const void* out_bf16, int64_t n_tokens, int64_t n_heads,
                             int64_t head_dim, double* diff_sq, double* ref_sq, cudaStream_t stream) {
  HC_CHECK_CUDA(cudaMemsetAsync(diff_sq, 0, size_t(n_heads) * sizeof(double), stream));
  HC_CHECK_CUDA(cudaMemsetAsync(ref_sq, 0, size_t(n_heads) * sizeof(double), stream));
  const dim3 grid(static_cast<unsigned>((n_tokens + kRowsPerBlock - 1) / kRowsPerBlock), static_cast<unsigned>(n_heads));
  head_squared_errors_kernel<<<grid, kThreads, 0, stream>>>(
      static_cast<const __nv_bfloat16*>(ref_bf16), static_cast<const __nv_bfloat16*>(out_bf16),
      static_cast<int>(n_tokens), static_cast<int>(n_heads), static_cast<int>(head_dim), diff_sq, ref_sq);
  HC_CHECK_LAUNCH();
}

}  // namespace hc::kernels

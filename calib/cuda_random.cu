// Fills device buffers with RandomModel's weights (calib/random_model.h): the same counter-based
// generator as the host, so an 8B-shaped model is made in place in well under a second instead of
// 32 GB of host floats.
#include <cuda_bf16.h>

#include <cstdint>

#include "calib/cuda_kernels.h"
#include "calib/random_model.h"
#include "common/cuda_check.h"

namespace hc::cuda {
namespace {

__device__ inline void put(bf16* p, float v) { *p = __float2bfloat16(v); }
__device__ inline void put(float* p, float v) { *p = v; }

template <typename T>
__global__ void fill_random_kernel(T* dst, int64_t n, uint64_t stream_id, float half_range) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    put(dst + i, random_weights::value(stream_id, static_cast<uint64_t>(i), half_range));
}

template <typename T>
__global__ void fill_constant_kernel(T* dst, int64_t n, float value) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    put(dst + i, value);
}

unsigned grid_for(int64_t n) {
  const int64_t blocks = (n + 255) / 256;
  return static_cast<unsigned>(blocks < 65536 ? blocks : 65536);  // grid-stride beyond that
}

}  // namespace

void fill_random(bf16* dst, int64_t n, uint64_t stream_id, float half_range, cudaStream_t stream) {
  if (n == 0) return;
  fill_random_kernel<<<grid_for(n), 256, 0, stream>>>(dst, n, stream_id, half_range);
  HC_CHECK_LAUNCH();
}

void fill_random(float* dst, int64_t n, uint64_t stream_id, float half_range, cudaStream_t stream) {
  if (n == 0) return;
  fill_random_kernel<<<grid_for(n), 256, 0, stream>>>(dst, n, stream_id, half_range);
  HC_CHECK_LAUNCH();
}

void fill_constant(bf16* dst, int64_t n, float value, cudaStream_t stream) {
  if (n == 0) return;
  fill_constant_kernel<<<grid_for(n), 256, 0, stream>>>(dst, n, value);
  HC_CHECK_LAUNCH();
}

void fill_constant(float* dst, int64_t n, float value, cudaStream_t stream) {
  if (n == 0) return;
  fill_constant_kernel<<<grid_for(n), 256, 0, stream>>>(dst, n, value);
  HC_CHECK_LAUNCH();
}

}  // namespace hc::cuda

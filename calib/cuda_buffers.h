#pragma once
// Small CUDA helpers shared by calib's .cu files (prober, validator): an owning device buffer and
// the per-head output-error reduction. Include only from .cu files (needs the CUDA runtime).
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "common/cuda_check.h"

namespace hc {

// Owning device array of n elements (at least one allocated, so empty shapes stay valid pointers).
template <typename T>
struct DeviceBuffer {
  T* ptr = nullptr;
  explicit DeviceBuffer(size_t n) { HC_CHECK_CUDA(cudaMalloc(&ptr, std::max<size_t>(n, 1) * sizeof(T))); }
  ~DeviceBuffer() { cudaFree(ptr); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
};

// Per head h over packed bf16 [N, H, d] tensors: diff_sq[h] = sum (out - ref)^2 and
// ref_sq[h] = sum ref^2 (both [H] device doubles, zeroed here first), enqueued on `stream`.
// The relative output error of a head is sqrt(diff_sq / ref_sq).
void head_squared_errors_gpu(const void* ref_bf16, const void* out_bf16, int64_t n_tokens, int64_t n_heads,
                             int64_t head_dim, double* diff_sq, double* ref_sq, cudaStream_t stream);

}  // namespace hc

#pragma once
// Small CUDA helpers shared by calib's .cu files (prober, validator, prefill timing): an owning
// device buffer, the timing events of one layer's attention and the per-head output-error reduction. Include only from .cu files (needs the CUDA runtime).
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

// The events that time one layer's attention on a stream: begin, a mark between two parts (a
// plan and its run), end. Times are read once the events have completed (seconds() waits).
struct AttentionEvents {
  cudaEvent_t begin = nullptr, mark = nullptr, end = nullptr;
  AttentionEvents() {
    HC_CHECK_CUDA(cudaEventCreate(&begin));
    HC_CHECK_CUDA(cudaEventCreate(&mark));
    HC_CHECK_CUDA(cudaEventCreate(&end));
  }
  ~AttentionEvents() {
    cudaEventDestroy(begin);
    cudaEventDestroy(mark);
    cudaEventDestroy(end);
  }
  AttentionEvents(const AttentionEvents&) = delete;
  AttentionEvents& operator=(const AttentionEvents&) = delete;
  static double seconds(cudaEvent_t from, cudaEvent_t to) {
    HC_CHECK_CUDA(cudaEventSynchronize(to));
    float ms = 0.f;
    HC_CHECK_CUDA(cudaEventElapsedTime(&ms, from, to));
    return ms * 1e-3;
  }
  double total_s() const { return seconds(begin, end); }
  double until_mark_s() const { return seconds(begin, mark); }  // a recorded mark only
};

}  // namespace hc

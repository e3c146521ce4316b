#pragma once
// Stream-ordered device memory for the index builders and the attention launcher's scratch, and
// the current device's SM count their grids are sized by (internal to headcal::kernels; CUDA
// builds only).
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/cuda_check.h"
#include "common/error.h"

namespace hc::kernels::detail {

// headcal's own stream-ordered memory pool, one per device. It keeps up to 4 GiB of freed memory
// for the next build instead of handing it back to the driver at every synchronisation (the
// default pool's behaviour): at 128K tokens and H = 32 a vertical-slash build allocates ~2 GB
// (scores and columns), and re-mapping it made up ~4 ms of a 8.9 ms build (H100; the kernels
// themselves 4.6 ms by ncu). A pool of our own leaves the process's default pool as the caller
// configured it.
inline cudaMemPool_t kernels_pool() {
  static std::mutex mutex;
  static std::vector<cudaMemPool_t> pools;
  int device = 0;
  HC_CHECK_CUDA(cudaGetDevice(&device));
  std::lock_guard<std::mutex> lock(mutex);
  if (pools.size() <= static_cast<size_t>(device)) pools.resize(device + 1, nullptr);
  if (pools[device] == nullptr) {
    cudaMemPoolProps props{};
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = device;
    cudaMemPool_t pool = nullptr;
    HC_CHECK_CUDA(cudaMemPoolCreate(&pool, &props));
    uint64_t keep = uint64_t(4) << 30;
    HC_CHECK_CUDA(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
    pools[device] = pool;
  }
  return pools[device];
}

// A bump allocator over one device allocation (256-byte aligned pieces); with a null base it
// only sizes (used = the bytes the same sequence of takes needs).
struct WorkspaceCarver {
  char* base = nullptr;
  int64_t used = 0;
  template <typename T>
  T* take(int64_t count) {
    used = (used + 255) / 256 * 256;
    T* p = base != nullptr ? reinterpret_cast<T*>(base + used) : nullptr;
    used += std::max<int64_t>(count, 1) * static_cast<int64_t>(sizeof(T));
    return p;
  }
};

// cudaMalloc of a workspace sized for max_tokens; a DeviceError naming `what`, the bytes needed
// and those free when it does not fit.
inline void* allocate_workspace(int64_t bytes, int max_tokens, const char* what) {
  void* memory = nullptr;
  if (cudaMalloc(&memory, static_cast<size_t>(bytes)) == cudaSuccess) return memory;
  cudaGetLastError();  // clear the allocation failure
  size_t free_bytes = 0, total_bytes = 0;
  cudaMemGetInfo(&free_bytes, &total_bytes);
  char text[160];
  std::snprintf(text, sizeof text, "the workspace for %d tokens needs %.2f GiB, %.2f GiB of the device are free",
                max_tokens, double(bytes) / double(1 << 30), double(free_bytes) / double(1 << 30));
  throw DeviceError(std::string(what) + ": " + text);
}

// Streaming multiprocessors of the current device.
inline int sm_count() {
  int device = 0, count = 0;
  HC_CHECK_CUDA(cudaGetDevice(&device));
  HC_CHECK_CUDA(cudaDeviceGetAttribute(&count, cudaDevAttrMultiProcessorCount, device));
  return count;
}

// n elements from kernels_pool(), allocated in `stream` order. free_on_stream: freed in that
// stream's order (scratch whose stream outlives it); otherwise on the legacy default stream,
// which is ordered after every blocking stream (an index may outlive the stream that built it).
template <typename T>
std::shared_ptr<T> device_alloc(size_t n, cudaStream_t stream, bool free_on_stream = false) {
  void* p = nullptr;
  HC_CHECK_CUDA(cudaMallocFromPoolAsync(&p, std::max<size_t>(1, n) * sizeof(T), kernels_pool(), stream));
  cudaStream_t free_stream = free_on_stream ? stream : nullptr;
  return std::shared_ptr<T>(static_cast<T*>(p), [free_stream](T* q) { cudaFreeAsync(q, free_stream); });
}

}  // namespace hc::kernels::detail

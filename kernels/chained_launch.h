#pragma once
// Host side of programmatic dependent launch (sm_90), internal to headcal::kernels: a layer's plan
// is a chain of small kernels, each a few microseconds, so the launch latency and the ramp-up
// between two of them are a visible part of the chain. A kernel launched by launch_chained may be
// scheduled while the kernel before it on the stream is still running; it must begin with
// chained_kernel_begins() (kernels/device_primitives.cuh), which waits for that kernel's
// completion before any memory access. A kernel launched without the attribute keeps the plain
// stream order whatever it calls.
#include <cuda_runtime.h>

#include <utility>

#include "common/cuda_check.h"

namespace hc::kernels::detail {

// kernel<<<grid, block, smem, stream>>>(args...) with programmatic stream serialization allowed;
// cluster_x > 0 also sets a (cluster_x, 1, 1) thread-block cluster.
template <typename... Params, typename... Args>
void launch_chained(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                    unsigned cluster_x, Args&&... args) {
  cudaLaunchConfig_t config{};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  cudaLaunchAttribute attributes[2]{};
  attributes[0].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attributes[0].val.programmaticStreamSerializationAllowed = 1;
  unsigned count = 1;
  if (cluster_x > 0) {
    attributes[1].id = cudaLaunchAttributeClusterDimension;
    attributes[1].val.clusterDim.x = cluster_x;
    attributes[1].val.clusterDim.y = attributes[1].val.clusterDim.z = 1;
    count = 2;
  }
  config.attrs = attributes;
  config.numAttrs = count;
  HC_CHECK_CUDA(cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...));
}

}  // namespace hc::kernels::detail

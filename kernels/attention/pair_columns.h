#pragma once
// GPU pass of the pair-column merge (semantics and layout: pair_columns_ref.h). Run by
// sparse_attention_forward before the Hopper index-driven kernel; public for its tests.
#include <cuda_runtime_api.h>

#include <memory>

#include "kernels/attention/pair_columns_ref.h"

namespace hc::kernels {

struct PairColumnsDevice {
  std::shared_ptr<int32_t> entries;  // [total_cols]
  std::shared_ptr<int32_t> counts;   // [n_heads * pairs per head]
};

// `index` in device memory, total_cols = its number of columns (> 0). The buffers come from
// headcal's stream-ordered pool and are freed in `stream` order when dropped.
PairColumnsDevice merge_pair_columns_gpu(const SparseIndexView& index, int64_t total_cols, cudaStream_t stream);

}  // namespace hc::kernels

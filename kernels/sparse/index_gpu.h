#pragma once
// GPU index builders: the SparseIndex of kernels/sparse/sparse_index.h built on the device, with
// the semantics of the CPU builders in index_ref.h (same ranges, columns and bands; top-k ties
// toward the lower index). Estimator arithmetic is fp32 here (double on the CPU), so the two can
// differ only where two candidate scores agree to ~1e-6.
//
// Plain C++ over raw device pointers (no headcal engine types), part of headcal::kernels.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/attention/attention.h"
#include "kernels/sparse/pattern.h"
#include "kernels/sparse/sparse_index.h"

namespace hc::kernels {

// Device Q and K the estimators read: q [N, H, d], k [N, Hkv, d] (row strides in elements,
// 0 = packed), bf16 or fp16, d = 64 or 128. Query head h reads kv head h / (H / Hkv).
struct GpuQK {
  const void* q = nullptr;
  const void* k = nullptr;
  AttnDType dtype = AttnDType::kBF16;
  int n_tokens = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t q_row_stride = 0;
  int64_t k_row_stride = 0;
};

// An index whose arrays live in device memory (freed with the object).
class DeviceSparseIndex {
 public:
  DeviceSparseIndex() = default;
  int64_t n_heads() const { return n_heads_; }
  int64_t n_tokens() const { return n_tokens_; }
  // The counts of ranges and columns. A build that sized its arrays from a bound leaves them on
  // the device; the first call then reads them back (stream: the build's; a synchronisation).
  int64_t total_ranges(cudaStream_t stream = nullptr) const;
  int64_t total_cols(cudaStream_t stream = nullptr) const;
  bool row_blocks_share_tiles() const { return row_blocks_share_tiles_; }  // SparseIndexView's hint
  // Device pointers, for sparse_attention_forward.
  SparseIndexView view() const;
  // Copy to the host (synchronises the stream).
  SparseIndex to_host(cudaStream_t stream = nullptr) const;

 private:
  friend struct DeviceIndexAccess;
  int64_t n_heads_ = 0, n_tokens_ = 0;
  mutable int64_t total_ranges_ = 0, total_cols_ = 0;  // -1: on the device only (total_ranges())
  int64_t col_capacity_ = 0;                           // the cols array's size: total_cols or more
  bool row_blocks_share_tiles_ = false;
  std::shared_ptr<int32_t> range_offsets_, range_begin_, range_end_, col_offsets_, cols_;
  std::shared_ptr<int32_t> band_sink_, band_local_;  // null when no head has a band
};

// One range [0, r1 + 1) per slot.
DeviceSparseIndex build_dense_index_gpu(int64_t n_tokens, int64_t n_heads, cudaStream_t stream = nullptr);

// Sink range and local range per slot, merged; band (sink, local) on every head.
DeviceSparseIndex build_a_shape_index_gpu(int64_t n_tokens, int64_t n_heads, int sink, int local,
                                          cudaStream_t stream = nullptr);

// Vertical-slash from the last min(last_q, N) queries (settings: last_q, v_sink, s_local).
DeviceSparseIndex build_vertical_slash_index_gpu(const GpuQK& qk, int v, int s,
                                                 const EstimatorSettings& settings = {},
                                                 cudaStream_t stream = nullptr);

// Block-sparse top-k_blocks from mean-pooled Q and K.
DeviceSparseIndex build_block_sparse_index_gpu(const GpuQK& qk, int k_blocks,
                                               cudaStream_t stream = nullptr);

// ---- building blocks: one estimate, many candidate indexes ----

// col_score and diag_score of every query head (index_ref.h, vertical_slash_scores), fp32,
// each [H, N] device memory provided by the caller. Temporary device memory 4 H N floats (the
// scores are recomputed per 64-key tile, never stored).
void vertical_slash_scores_gpu(const GpuQK& qk, int last_q, float* col_score, float* diag_score,
                               cudaStream_t stream = nullptr);

// The vertical-slash index of every head from its scores ([H, N] device, fp32).
DeviceSparseIndex vertical_slash_index_from_scores_gpu(const float* col_score, const float* diag_score,
                                                       int64_t n_heads, int64_t n_tokens, int v, int s,
                                                       int v_sink = 30, int s_local = 100,
                                                       cudaStream_t stream = nullptr);

}  // namespace hc::kernels

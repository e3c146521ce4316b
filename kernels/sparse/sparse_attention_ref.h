#pragma once
// Sparse attention on the CPU over a SparseIndex: for every query row i of an indexed head,
// softmax over exactly C(i) (coverage.h) of s_ij = q_i . k_j / sqrt(d). Same layouts and LSE
// convention as dense_attention_ref (attention_ref.h); with a dense index it computes the same
// O and LSE. Scores are fp32 dot products (16 lanes); softmax, P.V and the probe sums are
// double, over 64-key tiles with an online softmax; outputs are float.
//
// Probe mode (dense_lse given): per indexed head also
//   recall       = (1/N) sum_i sum_{j in C(i)} exp(s_ij - dense_lse[h][i])
//   kernel_pairs = kernel_pair_count (cost.h), the pairs the CUDA kernel reports
//   covered_pairs = sum_i |C(i)|
// A row with empty C(i) gets o = 0 and lse = -inf (and adds 0 to the recall).
// Work: O(sum |C(i)| * d), split over (head, row block) slots across std::threads; memory
// O(N) per thread.
#include <cstdint>
#include <vector>

#include "kernels/attention/attention_ref.h"
#include "kernels/sparse/sparse_index.h"

namespace hc::kernels {

struct SparseProbe {
  std::vector<double> recall;          // [index.n_heads]
  std::vector<int64_t> kernel_pairs;   // [index.n_heads]
  std::vector<int64_t> covered_pairs;  // [index.n_heads]
};

struct SparseRefOptions {
  // Index head h computes query head first_head + h, so a one-head index can probe any head
  // (first_head + index.n_heads <= dims.n_heads).
  int64_t first_head = 0;
  // [dims.n_heads, N], natural log: enables probe mode (probe must then be non-null).
  const float* dense_lse = nullptr;
  int n_threads = 0;  // <= 0: hardware_concurrency()
};

// q [N, H, d], k, v [N, Hkv, d] (host). o [N, H, d] and lse [H, N] may each be null; only the
// indexed heads' entries are written. Throws hc::InputError on inconsistent dims/index.
void sparse_attention_ref(const AttentionDims& dims, const float* q, const float* k,
                          const float* v, const SparseIndexView& index, float* o, float* lse,
                          const SparseRefOptions& options = {}, SparseProbe* probe = nullptr);

}  // namespace hc::kernels

#pragma once
// Dense causal attention on the CPU, float32: the reference every other attention path
// (CUDA dense kernel, sparse kernels with a dense index, the CPU engine) is checked against.
// No CUDA types here, so it builds and links everywhere.
#include <cstdint>

namespace hc::kernels {

struct AttentionDims {
  int64_t n_tokens = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
};

// Layouts (row-major, token-major as the projections produce them):
//   q   [n_tokens, n_heads,    head_dim]
//   k,v [n_tokens, n_kv_heads, head_dim]
//   o   [n_tokens, n_heads,    head_dim]
//   lse [n_heads, n_tokens]  (may be null)
// Query row i attends to keys j <= i with scores s_ij = scale * q_i . k_j, scale = 1/sqrt(head_dim);
// lse[h][i] = natural log of sum_{j<=i} exp(s_ij).
// GQA: query head h reads kv head h / (n_heads / n_kv_heads); K/V are never repeated.
// Memory is O(n_tokens) per worker (a score row), never N x N. Work is split over
// (head, row block) pairs across std::threads; `n_threads` <= 0 means hardware_concurrency().
// Throws hc::InputError when the dims are inconsistent (n_heads % n_kv_heads != 0, non-positive sizes).
void dense_attention_ref(const AttentionDims& dims, const float* q, const float* k, const float* v,
                         float* o, float* lse, int n_threads = 0);

}  // namespace hc::kernels

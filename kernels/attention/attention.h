#pragma once
// Public launchers of headcal's attention kernels: plain C++ over raw device pointers, so an
// inference engine can link headcal::kernels without any of headcal's engine types.
//
// One kernel family: a FlashAttention-style tiled causal forward (online softmax, fp32
// accumulation, bf16 or fp16 inputs, head_dim 64 or 128). Dense, A-shape, vertical-slash and
// block-sparse differ only in the SparseIndex they are given (kernels/sparse/sparse_index.h).
// Built for sm_90a (H100/H200): wgmma tensor cores fed by TMA (hopper_forward.cuh); probe mode
// runs the mma.sync variant (flash_forward.cuh). k and v must be 16-byte aligned.
// GQA: query head h reads K/V head h / (n_heads / n_kv_heads); K/V are never repeated.
//
// Layouts (row-major, "row" = token):
//   q   [n_tokens, n_heads,    head_dim]  (row stride q_row_stride elements, default n_heads*head_dim)
//   k,v [n_tokens, n_kv_heads, head_dim]  (row stride k_row_stride / v_row_stride, default n_kv_heads*head_dim)
//   o   [n_tokens, n_heads,    head_dim]  same dtype as q
//   lse [n_heads, n_tokens]  fp32, natural log of the softmax denominator of the scaled scores
// A row that computes no key (possible only with a sparse index that omits its diagonal) gets
// lse = -inf and o = 0.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "kernels/sparse/sparse_index.h"

namespace hc::kernels {

enum class AttnDType : int { kBF16 = 0, kFP16 = 1 };

struct AttentionParams {
  const void* q = nullptr;  // [n_tokens, n_heads, head_dim]
  const void* k = nullptr;  // [n_tokens, n_kv_heads, head_dim]
  const void* v = nullptr;  // [n_tokens, n_kv_heads, head_dim]
  void* o = nullptr;        // [n_tokens, n_heads, head_dim]; may be null in probe mode
  float* lse = nullptr;     // [n_heads, n_tokens]; may be null

  int n_tokens = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;  // 64 or 128
  AttnDType dtype = AttnDType::kBF16;
  float softmax_scale = 0.f;  // 0: 1/sqrt(head_dim)

  // Row strides in elements; 0 means densely packed (heads * head_dim). Must be multiples of 8.
  int64_t q_row_stride = 0;
  int64_t k_row_stride = 0;
  int64_t v_row_stride = 0;
  int64_t o_row_stride = 0;

  // Probe mode (sparse launcher only), on when probe_lse is set. Given the dense LSE, the kernel
  // also accumulates per query head
  //   probe_recall[h] = (1/N) * sum_i sum_{j in C(i)} exp(s_ij - dense_lse[h][i])   (the recall)
  //   probe_pairs[h]  = number of (i, j) pairs computed, as kernels/sparse/cost.h counts them
  // Both outputs are overwritten (zeroed by the launcher first).
  const float* probe_lse = nullptr;  // [n_heads, n_tokens], natural log (the dense kernel's lse)
  double* probe_recall = nullptr;    // [n_heads]
  long long* probe_pairs = nullptr;  // [n_heads]
};

// Dense causal attention (fast path: key range clipped at the diagonal, 128-row x 128-key tiles).
// Throws hc::InputError for unsupported shapes, hc::DeviceError on CUDA failures.
void dense_attention_forward(const AttentionParams& params, cudaStream_t stream = nullptr);

// Index-driven attention: per (head, 64-row block), the key ranges then the gathered columns of
// `device_index` (all pointers device memory, n_heads and n_tokens matching params). With a dense
// index it gives the same O and LSE as dense_attention_forward.
void sparse_attention_forward(const AttentionParams& params, const SparseIndexView& device_index,
                              cudaStream_t stream = nullptr);

}  // namespace hc::kernels

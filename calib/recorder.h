#pragma once
// The attention recorder: per layer and query head, what the dense attention really attends to,
// from q and k (after RoPE) and the dense LSE, in a streaming pass that never holds N x N.
//
// With P[i][j] = exp(scale * q_i . k_j - lse[h][i]) for j <= i (scale = 1/sqrt(head_dim)):
//   colmass[h][j]  = sum_i P[i][j]                      column mass, j in [0, N)
//   diagmass[h][o] = sum_i P[i][i - o]                  diagonal mass by offset o = i - j, o in [0, N)
//   map[h][a][b]   = sum of P[i][j] over i in cell a, j in cell b
// Pooled map cells: M = map_cells(N, map_size) = min(map_size, N) cells per side (for N < map_size
// the map is N x N, one token per cell, so no cell is ever empty by construction), and token t
// lies in cell map_cell(t, N, M) = floor(t * M / N). Cells therefore hold floor(N/M) or
// ceil(N/M) tokens.
// Invariants (exact arithmetic): each head's colmass, diagmass and map each sum to N, since every
// softmax row sums to 1.
//
// CPU: record_attention_cpu (multi-threaded, double accumulation). CUDA: CudaRecorder (tensor-core
// QK^T tiles of 64 x 64, shared-memory partial sums, float atomics; cost about one extra QK^T).
#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels/attention/attention_ref.h"

namespace hc {

constexpr int kDefaultMapSize = 128;

inline int64_t map_cells(int64_t n_tokens, int64_t map_size) {
  return n_tokens < map_size ? n_tokens : map_size;
}
inline int64_t map_cell(int64_t token, int64_t n_tokens, int64_t cells) { return token * cells / n_tokens; }

// One layer's statistics, host side.
struct LayerStats {
  int64_t n_heads = 0;
  int64_t n_tokens = 0;
  int64_t map_size = 0;         // M: cells per side of `map`
  std::vector<float> colmass;   // [n_heads, n_tokens]
  std::vector<float> diagmass;  // [n_heads, n_tokens]
  std::vector<float> map;       // [n_heads, M, M]
};

struct RecorderOptions {
  int map_size = kDefaultMapSize;  // requested cells per side; the map has min(map_size, N)
  int n_threads = 0;               // CPU only; <= 0: hardware_concurrency()
};

// CPU reference. q [N, n_heads, head_dim], k [N, n_kv_heads, head_dim] (float, after RoPE),
// lse [n_heads, N]. Throws InputError for inconsistent dims or map_size < 1.
LayerStats record_attention_cpu(const kernels::AttentionDims& dims, const float* q, const float* k,
                                const float* lse, const RecorderOptions& options = {});

// Sum of one head's slice (for the invariants; double accumulation).
double sum_head(const std::vector<float>& values, int64_t head, int64_t per_head);

// Device bytes the CUDA recorder allocates for this shape (counted in the engine's memory check).
size_t cuda_recorder_device_bytes(int64_t n_heads, int64_t n_tokens, int map_size);

#if defined(HEADCAL_HAVE_CUDA)
// Streaming recorder on the GPU. Device inputs are bf16: q [N, n_heads, head_dim] with row stride
// q_row_stride elements (0: n_heads*head_dim), k likewise with n_kv_heads; lse [n_heads, N] fp32.
// head_dim 64 or 128. Owns its device output buffers (resized on demand, reused across layers).
class CudaRecorder {
 public:
  explicit CudaRecorder(int map_size = kDefaultMapSize);
  ~CudaRecorder();
  CudaRecorder(const CudaRecorder&) = delete;
  CudaRecorder& operator=(const CudaRecorder&) = delete;

  // Enqueues the pass on `stream` (a cudaStream_t; void* keeps this header CUDA-free).
  void record(const kernels::AttentionDims& dims, const void* q_bf16, int64_t q_row_stride,
              const void* k_bf16, int64_t k_row_stride, const float* lse, void* stream);
  // Waits for the stream and copies the last record() results to the host.
  LayerStats download(void* stream);

  // Device pointers of the last record(): colmass/diagmass [H, N], map [H, M, M].
  const float* device_colmass() const { return colmass_; }
  const float* device_diagmass() const { return diagmass_; }
  const float* device_map() const { return map_; }

 private:
  void reserve(size_t token_elems, size_t map_elems);

  int map_size_;
  int64_t n_heads_ = 0, n_tokens_ = 0, cells_ = 0;
  float* colmass_ = nullptr;   // [H, N]
  float* diagmass_ = nullptr;  // [H, N]
  float* map_ = nullptr;       // [H, M, M]
  size_t capacity_tokens_ = 0, capacity_map_ = 0;
};
#endif

}  // namespace hc

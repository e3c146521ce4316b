#pragma once
// The grid probe on the GPU: every a_shape, vertical_slash and block_sparse candidate of a grid
// measured on all heads of a layer by a few sweeps over the layer's attention, instead of one
// probe-mode sparse attention per candidate. Same definitions as the CPU reference
// (grid_probe_ref.h):
//   recall  = (1/N) sum_i sum_{j in C_c(i)} exp(s_ij - lse_i)
//   out_err = ||O_c - O_ref||_F / ||O_ref||_F per head
// with O_c(i) = sum_{j in C_c(i)} p_ij v_j / sum_{j in C_c(i)} p_ij, p_ij = exp(s_ij - lse_i) from
// the dense LSE, and C_c the index the layer planner builds for candidate c (same estimates, same
// top-k rule).
//
// Why a sweep measures many candidates: within a pattern the candidates are nested along each
// parameter (grid_probe_ref.h), so a candidate (a, b) keeps the keys of level x <= a or y <= b.
// vertical_slash has one sweep along the offsets' levels b: it adds the keys with y == b (so its
// sums hold every key with y <= b, which it saves), then the columns with y > b level by level
// along the first parameter (columns in selection order), and after each level a its sums are
// exactly candidate (a, b)'s: its output rows are compared with O_ref there and then; then the
// saved sums come back for level b + 1. Every key of the ranges is computed once for the family,
// the columns once per level b. a_shape has one sweep outward from the diagonal: at each window
// it adds the sink keys outside the window level by level (a snapshot after each), then
// subtracts them again before the window grows, so the largest window is computed once.
// block_sparse has one parameter and one sweep: each row block's key blocks level by level in
// selection order.
// P V runs on the tensor cores with P split into two bf16 terms (hi + lo, relative error ~2^-17),
// accumulation in fp32, row masses in double.
//
// A row whose kept softmax mass is below 1e-30 (its weights underflow fp32) is not measured here:
// its candidate is reported unmeasured and must be probed on its own kernel run.
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/sparse/layer_plan.h"
#include "kernels/sparse/pattern.h"

namespace hc::kernels {

// One layer's attention on the device, as the CUDA engine records it.
struct GridProbeLayer {
  const void* q = nullptr;  // bf16 [N, H, d], row stride q_row_stride
  const void* k = nullptr;  // bf16 [N, Hkv, d], row stride k_row_stride
  const void* v = nullptr;  // bf16 [N, Hkv, d], row stride v_row_stride
  int64_t q_row_stride = 0, k_row_stride = 0, v_row_stride = 0;  // elements; 0 = packed
  const void* o_ref = nullptr;  // bf16 [N, H, d] packed: the dense output
  const float* lse = nullptr;   // [H, N] natural log: the dense LSE
  int n_tokens = 0;
};

// One candidate on one head.
struct GridProbeMeasure {
  double recall = 0;
  double out_err = 0;
  double cost = 0;        // FLOPs as kernels/sparse/cost.h counts them (estimator included)
  bool measured = false;  // false: not this prober's pattern, or a row's kept mass underflowed
};

// Per head h over packed bf16 [N, H, d] tensors: diff_sq[h] = sum (out - ref)^2 and
// ref_sq[h] = sum ref^2 (both [H] device doubles, zeroed here first), enqueued on `stream`.
// A head's out_err is output_error(diff_sq, ref_sq) (cost.h).
void head_squared_errors_gpu(const void* ref_bf16, const void* out_bf16, int64_t n_tokens, int64_t n_heads,
                             int64_t head_dim, double* diff_sq, double* ref_sq, cudaStream_t stream = nullptr);

class GridProberGpu {
 public:
  // The workspace's default ceiling. Its per-head buffers grow as N^2 / 64^2 (the block-sparse
  // selections and levels): Llama-3-8B's attention under the default grid needs ~0.017 GiB per
  // head at 128K, ~0.68 GiB at 1M. Past the ceiling the heads are measured in groups, one after
  // the other through the same buffers; 8 GiB keeps a whole layer in one group up to 256K tokens
  // on that shape (1.7 GiB), and at 1M measures 8 heads at a time (5.5 GiB instead of 21.9; still
  // 128K CTAs per sweep).
  static constexpr int64_t kDefaultWorkspaceCap = int64_t(8) << 30;

  // candidates: the grid (any patterns; those this prober does not measure come back unmeasured).
  // workspace_cap: the heads are measured in groups of whole KV groups, as many per group as keep
  // the workspace within it (one KV group at least, whatever it needs).
  // Throws hc::InputError on bad configs or shapes, hc::DeviceError when the workspace does not fit.
  GridProberGpu(const std::vector<PatternConfig>& candidates, const LayerShape& shape,
                const EstimatorSettings& settings = {}, int64_t workspace_cap = kDefaultWorkspaceCap);
  ~GridProberGpu();
  GridProberGpu(GridProberGpu&&) noexcept;
  GridProberGpu& operator=(GridProberGpu&&) noexcept;

  // Whether candidate c (its position in the grid) is one this prober measures.
  bool covers(size_t c) const;
  // The same for every candidate of a grid, before any device work: the a_shape, vertical_slash
  // and block_sparse ones.
  static std::vector<bool> coverage(const std::vector<PatternConfig>& candidates);
  // Device bytes of the workspace for this grid and shape.
  static int64_t workspace_bytes(const std::vector<PatternConfig>& candidates, const LayerShape& shape,
                                 const EstimatorSettings& settings = {},
                                 int64_t workspace_cap = kDefaultWorkspaceCap);
  // The query heads measured together (the whole layer, or a group of whole KV groups).
  int heads_per_pass() const;

  // The 64-key tiles the last probe's sweeps computed, per family, and the layer's dense causal
  // tiles (every head's row blocks times the key blocks up to each): the sweeps' work in dense
  // equivalents, beside their time.
  struct SweepTiles {
    unsigned long long a_shape = 0, vertical_slash = 0, block_sparse = 0, dense = 0;
  };
  SweepTiles last_tiles() const;

  // Measures the layer (n_tokens <= shape.max_tokens) on `stream` and waits for it:
  // [candidate * H + head].
  std::vector<GridProbeMeasure> probe(const GridProbeLayer& layer, cudaStream_t stream = nullptr);

  struct Impl;  // grid_probe_gpu.cu

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hc::kernels

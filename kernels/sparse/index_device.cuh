#pragma once
// Internal to headcal::kernels (CUDA builds): what the GPU index builders' translation units share.
// An index is built in stages, each a launcher here:
//   estimate   vs_estimate.cu     vertical-slash column and diagonal scores from the last queries
//              block_estimate.cu  mean-pooled Q and K, and the block-sparse top-k per row block
//   select     index_select.cu    vertical-slash top-k columns and offsets, the offsets' runs (one launch)
//   slots      index_slots.cu     per (head, row block) slot: count, scan, fill (the CSR index)
// Every stage takes its parameters per head (HeadValue), so one launch serves a layer whose heads
// follow different patterns (layer_plan.h) as well as the one-pattern builders (index_gpu.h).
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>

#include "kernels/sparse/index_gpu.h"
#include "kernels/sparse/pattern.h"

namespace hc::kernels {

struct DeviceIndexAccess {
  static DeviceSparseIndex& self(DeviceSparseIndex& x) { return x; }
  static int64_t& n_heads(DeviceSparseIndex& x) { return x.n_heads_; }
  static int64_t& n_tokens(DeviceSparseIndex& x) { return x.n_tokens_; }
  static int64_t& total_ranges(DeviceSparseIndex& x) { return x.total_ranges_; }
  static int64_t& total_cols(DeviceSparseIndex& x) { return x.total_cols_; }
  static int64_t& col_capacity(DeviceSparseIndex& x) { return x.col_capacity_; }
  static bool& row_blocks_share_tiles(DeviceSparseIndex& x) { return x.row_blocks_share_tiles_; }
  static std::shared_ptr<int32_t>& range_offsets(DeviceSparseIndex& x) { return x.range_offsets_; }
  static std::shared_ptr<int32_t>& range_begin(DeviceSparseIndex& x) { return x.range_begin_; }
  static std::shared_ptr<int32_t>& range_end(DeviceSparseIndex& x) { return x.range_end_; }
  static std::shared_ptr<int32_t>& col_offsets(DeviceSparseIndex& x) { return x.col_offsets_; }
  static std::shared_ptr<int32_t>& cols(DeviceSparseIndex& x) { return x.cols_; }
  static std::shared_ptr<int32_t>& band_sink(DeviceSparseIndex& x) { return x.band_sink_; }
  static std::shared_ptr<int32_t>& band_local(DeviceSparseIndex& x) { return x.band_local_; }
};


namespace detail {

constexpr const char* kIndexWhat = "sparse index (GPU)";

// Row block rb holds rows rb * 64 .. last_row(rb, n).
__host__ __device__ __forceinline__ int last_row(int rb, int n) {
  return rb * kBlock + kBlock - 1 < n - 1 ? rb * kBlock + kBlock - 1 : n - 1;
}

// A per-head integer: per_head[h] (device memory) when given, else `uniform`.
struct HeadValue {
  const int32_t* per_head = nullptr;
  int uniform = 0;
  __device__ __forceinline__ int at(int h) const { return per_head != nullptr ? per_head[h] : uniform; }
};

// |V| or |S| of a vertical-slash head (index_ref.h): min(N, max(k, min(forced, N))); a head with
// k < 0 is not a vertical-slash head and keeps none.
__host__ __device__ __forceinline__ int vs_kept(int k, int forced, int n) {
  if (k < 0) return 0;
  const int f = forced < n ? forced : n;
  const int m = k > f ? k : f;
  return m < n ? m : n;
}
struct VsCount {
  HeadValue k;  // v or s per head, < 0 for heads of other patterns
  int forced = 0;
  int n = 0;
  __device__ __forceinline__ int at(int h) const { return vs_kept(k.at(h), forced, n); }
};

void check_tokens_heads(int64_t n_tokens, int64_t n_heads);
void check_qk(const GpuQK& qk);

// ---- vertical-slash estimate (vs_estimate.cu) ----

// Scratch floats launch_vs_scores needs: per-tile row partials, row LSEs.
int64_t vs_scratch_floats(int64_t n_heads, int64_t n_tokens);
// col_score and diag_score [H, N] of every query head (vertical_slash_scores_gpu's semantics),
// in three launches; last_q already checked (1 .. 64 or N).
void launch_vs_scores(const GpuQK& qk, int last_q, float* col_score, float* diag_score, float* scratch,
                      cudaStream_t stream);

// ---- top-k selection (index_select.cu) ----

// Per head h: the count.at(h) largest of score[h][0 .. n) (entries < n_forced first), ascending
// into out + h * out_stride; ties toward the lower index.
struct SelectJob {
  const float* score = nullptr;  // [H, n]
  int n_forced = 0;
  VsCount count;
  int out_stride = 0;
  int32_t* out = nullptr;  // [H, out_stride]
};
// The runs of the second job's selection (its offsets): run_start [H, second.out_stride], the
// indices x of head h's selected offsets that start a run (x == 0 or offsets[x] - offsets[x - 1]
// > 64), ascending; n_runs [H] their count. Null run_start: no runs.
struct RunsJob {
  int32_t* run_start = nullptr;
  int32_t* n_runs = nullptr;
};
// Both jobs (columns and offsets) and the offsets' runs in one launch.
void launch_select_pair(const SelectJob& first, const SelectJob& second, const RunsJob& runs, int n_heads, int n,
                        cudaStream_t stream);

// ---- block-sparse estimate (block_estimate.cu) ----

// Throws InputError when the selection's shared memory cannot hold a row of n tokens' blocks.
void check_block_select_tokens(int64_t n_tokens, int64_t head_dim);
// pooled_q [H, nb, d] and pooled_k [Hkv, d, nb]: the mean of each 64-row block.
void launch_block_pool(const GpuQK& qk, float* pooled_q, float* pooled_k, cudaStream_t stream);
// kept [H, nb, cap] (ascending per slot) and kept_count [H * nb]: per row block the top
// max(k_blocks.at(h), forced) key blocks; heads with k_blocks.at(h) < 0 are skipped.
void launch_block_select(const GpuQK& qk, const float* pooled_q, const float* pooled_k, HeadValue k_blocks, int cap,
                         int32_t* kept, int32_t* kept_count, cudaStream_t stream);

// ---- slots: count, scan, fill (index_slots.cu) ----

// What a slot of head h computes, by the head's pattern:
//   dense, a_shape   closed form from sink and local (dense: sink 0, local >= N)
//   vertical_slash   the head's runs of selected offsets and its selected columns
//   block_sparse     the head's kept key blocks of the slot
struct SlotRule {
  int n = 0, nb = 0;
  HeadValue pattern;      // Pattern as int
  HeadValue sink, local;  // dense and a_shape heads
  const int32_t* columns = nullptr;  // [H, col_stride] ascending
  int col_stride = 0;
  VsCount n_columns;
  const int32_t* offsets = nullptr;  // [H, off_stride] ascending
  int off_stride = 0;
  VsCount n_offsets;
  const int32_t* run_start = nullptr;  // [H, off_stride]
  const int32_t* n_runs = nullptr;     // [H]
  const int32_t* kept = nullptr;       // [H, nb, cap]
  const int32_t* kept_count = nullptr;  // [H * nb]
  int cap = 0;
};
// Pass 1 and the scans: counts [2][n_slots] (ranges, then columns) per slot, then range_offsets
// and col_offsets [n_slots + 1] their exclusive scans (two launches). A total past 2^31 - 1 is
// written as offsets[n_slots] = -1.
void launch_slot_offsets(const SlotRule& rule, int n_slots, int32_t* counts, int32_t* range_offsets,
                         int32_t* col_offsets, cudaStream_t stream);
// Pass 2: every slot's ranges and columns at those offsets, and each head's band (a_shape: sink,
// local; others 0) when band_sink and band_local are given.
void launch_slot_fill(const SlotRule& rule, int n_slots, const int32_t* range_offsets, const int32_t* col_offsets,
                      int32_t* range_begin, int32_t* range_end, int32_t* cols, int32_t* band_sink,
                      int32_t* band_local, cudaStream_t stream);

// Both passes and the scans in one launch, for arrays sized by bounds (the layer planner's): each
// CTA counts its slots, finds its offsets by decoupled look-back over the CTAs before it, then
// writes them, its ranges and columns, and the band (band_sink may be null). The same index as
// launch_slot_offsets + launch_slot_fill. lookback: status [slot_lookback_words(H, nb)] and one
// ticket int, all zero before the launch (the launch leaves them non-zero).
struct SlotLookback {
  unsigned long long* status = nullptr;
  int* ticket = nullptr;
};
int64_t slot_lookback_words(int64_t n_heads, int64_t n_row_blocks);
void launch_slot_one_pass(const SlotRule& rule, int n_slots, const SlotLookback& lookback, int32_t* range_offsets,
                          int32_t* col_offsets, int32_t* range_begin, int32_t* range_end, int32_t* cols,
                          int32_t* band_sink, int32_t* band_local, cudaStream_t stream);

// Bounds on one head's ranges and columns over all its slots at n tokens, from its pattern's
// parameters alone (what an index's arrays are sized by when its totals stay on the device).
struct HeadBounds {
  int64_t ranges = 0, cols = 0;
};
HeadBounds head_bounds(const PatternConfig& config, int64_t n_tokens, const EstimatorSettings& settings);

}  // namespace detail
}  // namespace hc::kernels

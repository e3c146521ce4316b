#pragma once
// Internal to the GPU grid probe (grid_probe_gpu.h): the sweep kernel's arguments and the level
// builders' launchers, shared by grid_probe_gpu.cu, grid_sweep.cu and grid_levels.cu.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace hc::kernels::detail {

// The patterns a sweep can measure, and the full sweep (every key: the dense sums F and row
// masses the vertical-slash sweeps that count dropped keys subtract from).
enum SweepFamily : int { kSweepAShape = 0, kSweepVerticalSlash = 1, kSweepFull = 2, kSweepBlockSparse = 3 };

// One sweep: a family and, for vertical_slash, one value b of its second parameter.
// block_sparse has one parameter: its one sweep's stage s >= 1 holds the key blocks of level
// s - 1 (kept by k = the (s - 1)-th grid value, not by the one before), and after it the sums are
// candidate s - 1's.
// a_shape has one sweep for every (sink, window) candidate, outward from the diagonal: per window
// level b (ascending), stage W_b adds the keys with windows[b - 1] <= i - j < windows[b], then
// stages +S_a (a = 0 .. n_sinks - 1) add the keys of sink interval a outside window b (i - j >=
// windows[b]), after each of which the sums are candidate (a, b)'s, then (except after the last
// window) stages -S_a subtract those sink keys again, leaving window b's sums for W_{b+1}. So a
// row block computes its largest window once, not every window, and its few sink tiles twice
// per window. Stage s is level b = s / (2 n_sinks + 1), part k = s % (2 n_sinks + 1): 0 the
// window, 1 .. n_sinks adding sink k - 1, above that subtracting sink k - n_sinks - 1.
// Vertical_slash, kept order (where level b's offsets cover at most half the pairs): stage 0
// holds the keys with y <= b, stage s >= 1 the keys of first-parameter level s - 1 (and y > b);
// after stage s >= 1 the sums are candidate (s - 1, b)'s kept sums.
// Dropped order (vertical_slash where they cover more): stage 0 holds the keys with y > b and no
// column level, stage s >= 1 the columns of level n_col_levels - s with y > b; after stage s the
// sums are what candidate (n_col_levels - 1 - s, b) drops, its kept sums F minus them.
struct SweepPass {
  int family = kSweepAShape;
  int level = 0;             // vertical_slash: b, the offsets' level (off_lists[b])
  int n_groups = 0;          // the last stage in kept order (a_shape: of the whole sweep)
  int n_groups_dropped = 0;  // the last stage in dropped order (vertical_slash)
};

// a_shape's stage s as (window level b, part k), parts per level 2 n_sinks + 1. Host and device
// share these, so the stage walk is checked on the CPU (test_grid_probe_gpu).
struct AShapeStage {
  int level, part;
};
__host__ __device__ inline AShapeStage a_shape_stage(int stage, int n_sinks) {
  const int per_level = 2 * n_sinks + 1;
  return AShapeStage{stage / per_level, stage % per_level};
}
// The sweep's last stage: every level's parts, the last level without its subtracting ones.
__host__ __device__ inline int a_shape_last_stage(int n_sinks, int n_windows) {
  return n_windows * (2 * n_sinks + 1) - n_sinks - 1;
}
// The candidate (window level b, sink a) as b * n_sinks + a whose sums are complete after
// `stage`, or -1 where that stage completes none.
__host__ __device__ inline int a_shape_snapshot_group(int stage, int n_sinks) {
  const AShapeStage st = a_shape_stage(stage, n_sinks);
  return st.part >= 1 && st.part <= n_sinks ? st.level * n_sinks + st.part - 1 : -1;
}
// What stage s adds for the row block [r0, r1]: keys [begin, end) (empty when begin >= end), each
// pair (i, j) with w_lo <= i - j < w_hi, negated where `subtract`.
struct AShapeStageKeys {
  int begin, end, w_lo, w_hi;
  bool subtract;
};
__host__ __device__ inline AShapeStageKeys a_shape_stage_keys(int stage, int n_sinks, const int32_t* sinks,
                                                              const int32_t* windows, int r0, int r1) {
  const AShapeStage st = a_shape_stage(stage, n_sinks);
  const int window = windows[st.level], below = st.level > 0 ? windows[st.level - 1] : 0;
  AShapeStageKeys k;
  if (st.part == 0) {  // the window's new distances
    k.begin = r0 - window + 1 > 0 ? r0 - window + 1 : 0;
    k.end = r1 - below + 1;
    k.w_lo = below;
    k.w_hi = window;
    k.subtract = st.part > n_sinks;
  } else {  // sink interval a, outside the window
    const int a = st.part <= n_sinks ? st.part - 1 : st.part - n_sinks - 1;
    k.begin = a > 0 ? sinks[a - 1] : 0;
    k.end = sinks[a] < r1 - window + 1 ? sinks[a] : r1 - window + 1;
    k.w_lo = window;
    k.w_hi = INT32_MAX;
    k.subtract = st.part > n_sinks;
  }
  return k;
}

struct SweepArgs {
  const void* q = nullptr;  // bf16 [N, H, D], row stride q_stride
  const void* k = nullptr;  // bf16 [N, Hkv, D]
  const void* v = nullptr;  // bf16 [N, Hkv, D]
  int64_t q_stride = 0, k_stride = 0, v_stride = 0;
  const void* o_ref = nullptr;  // bf16 [N, H, D], row stride o_stride
  int64_t o_stride = 0;
  const float* lse = nullptr;   // [H, N] natural log
  // This launch's heads: q, k, v, o_ref and lse start at its first, and the per-head buffers below
  // hold n_heads; the outputs hold every head of the layer (out_heads), this group's from head_base.
  int n_tokens = 0, n_heads = 0, group = 1, n_row_blocks = 0;
  int out_heads = 0, head_base = 0;
  float scale_log2 = 0;  // softmax scale * log2(e)

  const SweepPass* passes = nullptr;  // [first_pass + n_passes]: this launch runs the last n_passes
  int first_pass = 0, n_passes = 0;
  // [n_passes][max_groups]: candidate after group a (a_shape: at b * n_sinks + a), or -1
  const int32_t* pass_cands = nullptr;
  int max_groups = 0;

  // a_shape: sink interval a holds keys [sinks[a - 1], sinks[a]) (sinks[-1] = 0); windows ascending.
  const int32_t* sinks = nullptr;    // [n_sinks]
  const int32_t* windows = nullptr;  // [n_windows]
  int n_sinks = 0, n_windows = 0;

  // vertical_slash: group a holds head h's columns col_groups[h][col_level_end[a - 1] ..
  // col_level_end[a]) (ascending keys), those of selection level a; a key j joins the sweep of
  // level b in its group only where y_of[h][r1 - j] > b (outside that level's ranges).
  const int32_t* col_groups = nullptr;     // [H][col_stride]
  const int32_t* col_level_end = nullptr;  // [column levels]
  int col_stride = 0;
  // Level b's selected offsets (ascending) and the indices x that start a run of them (off[x] -
  // off[x - 1] > 64): run [off[s], off[e]] covers keys [r1 - off[e] - 63, r1 - off[s]] of row block R.
  const int32_t* off_lists = nullptr;   // [offset levels][H][off_stride]
  const int32_t* run_starts = nullptr;  // [offset levels][H][off_stride]
  const int32_t* n_runs = nullptr;      // [offset levels][H]
  const int32_t* off_count = nullptr;   // [offset levels] offsets kept at level b
  int off_stride = 0;
  const int8_t* y_of = nullptr;  // [H][N]: level of the best offset covering t = r1 - j (levels: none)
  const int8_t* x_of = nullptr;  // [H][N]: column level of key j (n_col_levels: none)
  int n_col_levels = 0;
  const int8_t* dropped = nullptr;  // [offset levels][H]: 1 where the sweep of level b runs in dropped order
  int n_off_levels = 0;

  // block_sparse: the level of key block c in row block R, at [h][R (R + 1) / 2 + c].
  const int8_t* block_level = nullptr;

  // The full sweep's outputs, read by the dropped-order sweeps of a later launch.
  float* f_sum = nullptr;     // [H][N][D] sum_j p_ij v_j over every key j <= i
  double* l_total = nullptr;  // [H][N] sum_j p_ij
  // Outputs [candidates][out_heads], zeroed before the launch.
  double* recall = nullptr;            // sum over rows of the kept mass
  double* err = nullptr;               // sum over rows of ||O_c(i) - O_ref(i)||^2
  unsigned long long* pairs = nullptr;  // vertical_slash: pairs the index-driven kernel computes
  int* underflow = nullptr;            // rows whose kept mass is below the measurable minimum
};

// The sweep kernel over grid (row blocks, heads, passes); head_dim 64 or 128.
void launch_grid_sweep(const SweepArgs& args, int head_dim, cudaStream_t stream);

// Level builders (grid_levels.cu), per head over [H, N]:
// level_of[h][x] = the smallest level whose selection (lists + (level * H + h) * list_stride,
// count[level] entries; count in device memory) holds x; n_levels where none does. Lists are
// ascending and nested (level a's selection is a prefix of the selection order, so it holds
// level a - 1's).
void launch_selection_levels(const int32_t* lists, const int32_t* count, int n_levels, int n_heads, int n,
                             int list_stride, int8_t* level_of, cudaStream_t stream);
// groups[h][count[a - 1] .. count[a]): the entries of level a's list whose level is a, ascending.
void launch_level_groups(const int32_t* lists, const int32_t* count, int n_levels, int n_heads, int list_stride,
                         const int8_t* level_of, int n, int32_t* groups, cudaStream_t stream);
// y_of[h][t] = min over o in [max(0, t - 63), t] of offset_level[h][o].
void launch_window_levels(const int8_t* offset_level, int n_heads, int n, int8_t* y_of, cudaStream_t stream);
// block_level[h][R (R + 1) / 2 + c] = level for every block c kept in slot (h, R) (kept [H, nb,
// cap], kept_count [H * nb]: a block-sparse selection); run from the last level down, the smallest
// level keeping a block writes last.
void launch_block_levels(const int32_t* kept, const int32_t* kept_count, int cap, int n_heads, int nb, int level,
                         int8_t* block_level, cudaStream_t stream);
// dropped[b][h] = 1 where level b's ranges (y_of <= b) hold more than half of head h's causal
// pairs, each diagonal t weighted by the rows it reaches (N - t).
void launch_sweep_orders(const int8_t* y_of, int n_heads, int n, int n_levels, int8_t* dropped, cudaStream_t stream);

}  // namespace hc::kernels::detail

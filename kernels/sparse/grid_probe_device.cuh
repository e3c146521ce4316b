#pragma once
// Internal to the GPU grid probe (grid_probe_gpu.h): the sweep kernel's arguments and the level
// builders' launchers, shared by grid_probe_gpu.cu, grid_sweep.cu and grid_levels.cu.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace hc::kernels::detail {

// The patterns a sweep can measure.
enum SweepFamily : int { kSweepAShape = 0, kSweepVerticalSlash = 1, kSweepBlockSparse = 2 };

// One sweep: a family, and its last stage (the stages between are the family's, below).
// block_sparse: stage s >= 1 holds the key blocks of level s - 1 (kept by k = the (s - 1)-th grid
// value, not by the one before), and after it the sums are candidate s - 1's.
// a_shape: one sweep for every (sink, window) candidate, outward from the diagonal: per window
// level b (ascending), stage W_b adds the keys with windows[b - 1] <= i - j < windows[b], then
// stages +S_a (a = 0 .. n_sinks - 1) add the keys of sink interval a outside window b (i - j >=
// windows[b]), after each of which the sums are candidate (a, b)'s, then (except after the last
// window) stages -S_a subtract those sink keys again, leaving window b's sums for W_{b+1}. So a
// row block computes its largest window once, not every window, and its few sink tiles twice
// per window. Stage s is level b = s / (2 n_sinks + 1), part k = s % (2 n_sinks + 1): 0 the
// window, 1 .. n_sinks adding sink k - 1, above that subtracting sink k - n_sinks - 1.
// vertical_slash: one sweep for every (v, s) candidate, along the offsets' levels b (ascending).
// A key j of row block R has a column level x (of column j) and a diagonal level y (of t = r1 - j,
// the best offset whose range in R covers j); candidate (a, b) keeps it iff y <= b or x <= a.
// Per level b: part 0 adds the keys with y == b, so the sums hold every key with y <= b (S_b),
// and are saved; parts p = 1 .. n_col_levels then add the columns of level p - 1 with y > b,
// after each of which the sums are candidate (p - 1, b)'s; after the last part the saved S_b
// comes back for level b + 1. So every key of a range is computed once for the whole family, and
// the columns once per level b (those the level's ranges cover skipped).
struct SweepPass {
  int family = kSweepAShape;
  int n_groups = 0;  // the sweep's last stage
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

// vertical_slash's stage s as (offset level b, part p), parts per level n_col_levels + 1. Host and
// device share these, so the walk is checked on the CPU (test_grid_probe_gpu).
struct VsStage {
  int level, part;
};
__host__ __device__ inline VsStage vs_stage(int stage, int n_col_levels) {
  return VsStage{stage / (n_col_levels + 1), stage % (n_col_levels + 1)};
}
__host__ __device__ inline int vs_last_stage(int n_col_levels, int n_off_levels) {
  return n_off_levels * (n_col_levels + 1) - 1;
}
// What completing `stage` does: save the sums (they are S_b), snapshot candidate `group` (its
// (a, b) as b * n_col_levels + a; -1 none), then restore the saved S_b.
struct VsStageEnd {
  bool save;
  int group;
  bool restore;
};
__host__ __device__ inline VsStageEnd vs_stage_end(int stage, int n_col_levels) {
  const VsStage st = vs_stage(stage, n_col_levels);
  return VsStageEnd{st.part == 0, st.part >= 1 ? st.level * n_col_levels + st.part - 1 : -1,
                    st.part == n_col_levels};
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
  // [n_passes][max_groups]: candidate after group a (a_shape: at b * n_sinks + a, vertical_slash:
  // at b * n_col_levels + a), or -1
  const int32_t* pass_cands = nullptr;
  int max_groups = 0;

  // a_shape: sink interval a holds keys [sinks[a - 1], sinks[a]) (sinks[-1] = 0); windows ascending.
  const int32_t* sinks = nullptr;    // [n_sinks]
  const int32_t* windows = nullptr;  // [n_windows]
  int n_sinks = 0, n_windows = 0;

  // vertical_slash. Column level a holds head h's columns col_groups[h][col_level_end[a - 1] ..
  // col_level_end[a]) (ascending keys); level b's diagonals t (y_of == b) are
  // diag_groups[h][diag_end[h][b - 1] .. diag_end[h][b]) (ascending t: keys r1 - t descend).
  // Level b walks the columns of its first col_parts[b] levels (the largest a of its candidates
  // plus one), each joining only where y_of[h][r1 - j] > b.
  const int32_t* col_groups = nullptr;     // [H][col_stride]
  const int32_t* col_level_end = nullptr;  // [column levels]
  int col_stride = 0;
  const int32_t* diag_groups = nullptr;  // [H][N]
  const int32_t* diag_end = nullptr;     // [H][offset levels]
  const int32_t* col_parts = nullptr;    // [offset levels]
  const int8_t* y_of = nullptr;          // [H][N]: level of the best offset covering t = r1 - j (levels: none)
  int n_col_levels = 0, n_off_levels = 0;

  // block_sparse: the level of key block c in row block R, at [h][R (R + 1) / 2 + c].
  const int8_t* block_level = nullptr;

  // Outputs [candidates][out_heads], zeroed before the launch.
  double* recall = nullptr;            // sum over rows of the kept mass
  double* err = nullptr;               // sum over rows of ||O_c(i) - O_ref(i)||^2
  unsigned long long* pairs = nullptr;  // vertical_slash: pairs the index-driven kernel computes
  int* underflow = nullptr;            // rows whose kept mass is below the measurable minimum
  unsigned long long* tiles = nullptr;  // [3] by SweepFamily: the 64-key tiles swept (added to)
};

// The sweep kernel over grid (row blocks, heads, passes); head_dim 64 or 128. vertical_slash:
// the launch's passes are vertical_slash ones, else a_shape and block_sparse ones.
void launch_grid_sweep(const SweepArgs& args, int head_dim, bool vertical_slash, cudaStream_t stream);

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
// The diagonals grouped by level: groups[h][end[h][b - 1] .. end[h][b]) = the t with
// y_of[h][t] == b, ascending (levels n_levels and above: in no group).
void launch_level_lists(const int8_t* y_of, int n_levels, int n_heads, int n, int32_t* groups, int32_t* end,
                        cudaStream_t stream);

}  // namespace hc::kernels::detail

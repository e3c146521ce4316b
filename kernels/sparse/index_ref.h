#pragma once
// CPU index builders: the executable definition of the pattern semantics of DESIGN.md
// ("Pattern semantics"); the CUDA builders must produce the same SparseIndex.
//
// Conventions every builder follows (the GPU builders must too):
//  - Row block R holds rows r0 = 64R .. r1 = min(64R + 63, N - 1).
//  - Ranges of a slot are sorted, and merged when they overlap or touch (next.begin <= cur.end),
//    every range lies in [0, r1 + 1). Gathered columns are <= r1, ascending, outside the ranges.
//  - Top-k selection (vertical-slash columns and offsets, block-sparse key blocks): the forced
//    entries are always kept and count toward k; the remaining k - |forced| (if positive) are the
//    highest-scoring others, ties broken toward the LOWER index. k larger than the candidates
//    keeps them all.
//  - Estimator arithmetic is double precision over the float inputs, scale = 1/sqrt(head_dim).
// Inputs: q [N, H, d], k [N, Hkv, d] (row-major, token-major; query head h reads kv head
// h / (H / Hkv)). Bad parameters throw hc::InputError.
#include <cstdint>
#include <vector>

#include "kernels/attention/attention_ref.h"
#include "kernels/sparse/pattern.h"
#include "kernels/sparse/sparse_index.h"

namespace hc::kernels {

// ---- whole-index builders (all heads) ----

// C(i) = {j <= i}: one range [0, r1 + 1) per slot.
SparseIndex build_dense_index(int64_t n_tokens, int64_t n_heads);

// C(i) = {j <= i : j < sink or i - j < local}, local >= 1, sink >= 0. Per slot: the sink range
// [0, min(sink, r1 + 1)) and the local range [max(0, r0 - local + 1), r1 + 1), merged; the per-row
// window is exact through the index band (band_sink = sink, band_local = local).
SparseIndex build_a_shape_index(int64_t n_tokens, int64_t n_heads, int sink, int local);

// Vertical-slash from the last min(last_q, N) queries (see vertical_slash_scores), v >= 0, s >= 0.
SparseIndex build_vertical_slash_index(const float* q, const float* k, const AttentionDims& dims,
                                       int v, int s, int last_q = 64, int v_sink = 30,
                                       int s_local = 100, int n_threads = 0);

// Block-sparse top-k_blocks (k_blocks >= 1) from mean-pooled Q and K (see block_scores).
SparseIndex build_block_sparse_index(const float* q, const float* k, const AttentionDims& dims,
                                     int k_blocks, int n_threads = 0);

// One config per query head (per_head.size() == dims.n_heads); heads may mix patterns.
SparseIndex build_index(const float* q, const float* k, const AttentionDims& dims,
                        const std::vector<PatternConfig>& per_head,
                        const EstimatorSettings& settings = {}, int n_threads = 0);

// ---- single-head building blocks (a recorder builds many candidates from one estimate) ----

// For query head `head`: the rows i_r = N - L + r, r < L = min(last_q, N); A_last[r][j] =
// softmax over j <= i_r of q_{i_r} . k_j / sqrt(d).
//   col_score[j]  = sum_r A_last[r][j]          [N]
//   diag_score[o] = sum_r A_last[r][i_r - o]    [N] (o = i - j; terms with i_r - o < 0 absent)
// Memory O(N): one score row at a time.
struct VerticalSlashScores {
  int64_t n_tokens = 0;
  std::vector<double> col_score;   // [N]
  std::vector<double> diag_score;  // [N]
};
VerticalSlashScores vertical_slash_scores(const float* q, const float* k, const AttentionDims& dims,
                                          int64_t head, int last_q = 64);

// The kept columns V (top v, columns < v_sink forced) and offsets S (top s, offsets < s_local
// forced), both ascending. |V| = min(N, max(v, min(v_sink, N))), likewise |S|.
struct VerticalSlashSelection {
  std::vector<int32_t> columns;  // [|V|] ascending
  std::vector<int32_t> offsets;  // [|S|] ascending
};
VerticalSlashSelection select_vertical_slash(const VerticalSlashScores& scores, int v, int s,
                                             int v_sink = 30, int s_local = 100);

// One-head index from a selection: for row block R, offset o <= r1 covers [max(0, r1 - o - 63),
// r1 - o] (inclusive); ranges merged; columns c <= r1 outside them gathered.
SparseIndex vertical_slash_head_index(int64_t n_tokens, const VerticalSlashSelection& selection);

// Block scores of query head `head`: pooled_q[R] = mean of q_i over the rows of block R (the last
// block over its actual rows), pooled_k[c] likewise over the keys; score[R][c] =
// pooled_q[R] . pooled_k[c] / sqrt(d) for c <= R. Stored lower-triangular: row R at R*(R+1)/2.
struct BlockScores {
  int64_t n_blocks = 0;
  std::vector<double> score;  // [n_blocks * (n_blocks + 1) / 2]
  double at(int64_t row_block, int64_t key_block) const {
    return score[row_block * (row_block + 1) / 2 + key_block];
  }
};
BlockScores block_scores(const float* q, const float* k, const AttentionDims& dims, int64_t head);

// Kept key blocks per row block (ascending): block 0 and block R forced, plus the top others up
// to k_blocks in all.
std::vector<std::vector<int32_t>> select_block_sparse(const BlockScores& scores, int k_blocks);

// Selection order, for measuring every k of a grid at once: rank 0 for a forced entry, else the
// number of forced entries plus the entry's place among the others in the selection order. A
// selection of k keeps the forced entries and the others with rank < k (select_* keep prefixes).
struct SelectionRanks {
  std::vector<int32_t> column;  // [N] vertical-slash columns
  std::vector<int32_t> offset;  // [N] vertical-slash offsets
  int32_t forced_columns = 0;   // min(v_sink, N)
  int32_t forced_offsets = 0;   // min(s_local, N)
};
SelectionRanks vertical_slash_ranks(const VerticalSlashScores& scores, int v_sink = 30, int s_local = 100);
// Per row block R, the ranks of key blocks 0..R (blocks 0 and R forced), lower-triangular as
// BlockScores.
std::vector<int32_t> block_sparse_ranks(const BlockScores& scores);

// One-head index from kept blocks: block c covers [64c, min(64c + 64, N)); ranges merged.
SparseIndex block_sparse_head_index(int64_t n_tokens,
                                    const std::vector<std::vector<int32_t>>& kept_blocks);

// One-head index for any pattern, its estimate computed from q and k (q/k may be null for dense
// and a_shape).
SparseIndex build_head_index(const float* q, const float* k, const AttentionDims& dims,
                             int64_t head, const PatternConfig& config,
                             const EstimatorSettings& settings = {});
// The same from the head's precomputed estimates (vs for vertical_slash, bs for block_sparse; the
// other may be null): a grid's candidates on one head share one estimate of each kind.
SparseIndex head_index_from_estimates(int64_t n_tokens, const PatternConfig& config, const VerticalSlashScores* vs,
                                     const BlockScores* bs, const EstimatorSettings& settings = {});

// ---- index plumbing ----

// Concatenates one-head (or multi-head) indexes of the same n_tokens into one, heads in order.
// The band is kept per head (empty in the result when no part has one).
SparseIndex stack_heads(const std::vector<SparseIndex>& parts);
// The one-head index of head `head`.
SparseIndex head_slice(const SparseIndex& index, int64_t head);

}  // namespace hc::kernels

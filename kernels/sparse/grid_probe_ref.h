#pragma once
// Every candidate of a grid measured on one head in one pass over the head's attention (CPU
// reference). For each candidate c the result equals what sparse_attention_ref in probe mode
// gives over c's index:
//   recall  = (1/N) sum_i sum_{j in C_c(i)} exp(s_ij - lse_i)
//   out_err = ||O_c - O_ref||_F / ||O_ref||_F over the head (output_error, cost.h)
// where lse_i is the dense LSE of row i and O_c row i's softmax-weighted V over C_c(i).
//
// Why one pass is exact: with p_ij = exp(s_ij - lse_i) (a dense softmax weight), O_c(i) =
// sum_{j in C_c(i)} p_ij v_j / sum_{j in C_c(i)} p_ij, sums over disjoint key groups add. The
// candidates of one pattern are nested along each parameter (a larger window, more columns,
// more offsets or blocks only add keys, since selections are prefixes of one ranking), so every
// key of row i has a level per parameter: the index of the smallest grid value that keeps it.
// Candidate (a, b) keeps a key of levels (x, y) iff x <= a or y <= b (one-parameter patterns:
// x <= a). Row i sums p and p v into one bucket per (x, y), then every candidate's sums come from
// 2-D prefix sums of the buckets. Work per row: the dense score row once, p v once per pattern
// present in the grid, then O(buckets * d) — instead of once per candidate.
//
// Levels, per pattern (definitions: index_ref.h):
//   a_shape        x: smallest sink > j;           y: smallest local > i - j
//   vertical_slash x: smallest v > rank(column j);  y: smallest s > min rank of the offsets
//                  o in [max(0, r1 - j - 63), r1 - j] (the offsets whose range in row block R
//                  covers j); forced columns and offsets have level 0
//   block_sparse   x: smallest k > rank(key block j / 64) in row block R; forced blocks level 0
//   dense          every key j <= i
#include <cstdint>
#include <vector>

#include "kernels/attention/attention_ref.h"
#include "kernels/sparse/index_ref.h"
#include "kernels/sparse/pattern.h"

namespace hc::kernels {

struct CandidateMeasure {
  double recall = 0;
  double out_err = 0;
};

struct GridProbeInputs {
  AttentionDims dims;
  const float* q = nullptr;      // [N, H, d]
  const float* k = nullptr;      // [N, Hkv, d]
  const float* v = nullptr;      // [N, Hkv, d]
  const float* o_ref = nullptr;  // [N, H, d] the dense output out_err is measured against
  // The head's estimates (index_ref.h), required when the grid has vertical_slash or
  // block_sparse candidates: the same ones the candidates' indexes are built from.
  const VerticalSlashScores* vs_scores = nullptr;
  const BlockScores* block_scores = nullptr;
};

// One measure per candidate, in order. Scores as sparse_attention_ref (fp32 dot products), the
// dense LSE, softmax and sums in double. Throws hc::InputError on bad dims, configs
// (check_config) or a missing estimate.
std::vector<CandidateMeasure> probe_grid_ref(const GridProbeInputs& in, int64_t head,
                                             const std::vector<PatternConfig>& candidates,
                                             const EstimatorSettings& settings = {}, int n_threads = 0);

}  // namespace hc::kernels

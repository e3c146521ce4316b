#pragma once
// Cost accounting (DESIGN.md): cost of a head = pairs computed at the kernel's block granularity
// x 4*d FLOPs (QK^T and PV, 2 FLOPs per multiply-add each) + the estimator's FLOPs.
// Density = cost / dense_cost_flops(N, d).
//
// Kernel block granularity (what a FlashAttention-style kernel with 64-row and 64-key tiles
// computes; the CUDA kernels' probe_pairs count exactly this): for every slot (head, row block R)
// with rows r0 = 64R .. r1 = min(64R + 63, N - 1), rows = r1 - r0 + 1,
//  - each range [b, e) is processed in key tiles [b, b+64), [b+64, b+128), ... the last one cut
//    at e; a tile contributes rows x (keys in the tile);
//  - the gathered columns are processed in chunks of 64 consecutive entries of the slot's column
//    list (the last chunk shorter); a chunk contributes rows x (columns in the chunk);
//  - a tile or chunk is skipped (contributes 0) when no (row, key) pair in it passes the per-row
//    mask, i.e. tile_has_work() below is false. For indexes from the builders (ranges clipped at
//    r1 + 1, columns <= r1, band only on a_shape heads) no tile or chunk is ever skipped.
// Masked-out pairs inside a computed tile (above the diagonal, outside the band) are counted:
// the kernel computes them.
#include <algorithm>
#include <cmath>
#include <limits>
#include <cstdint>

#include "kernels/sparse/pattern.h"
#include "kernels/sparse/sparse_index.h"

namespace hc::kernels {

// Whether a tile of keys whose smallest key is key_lo and whose largest key not above r1 is
// key_hi_causal (key_hi_causal < key_lo: every key is above r1) has any pair passing the mask of
// rows r0..r1 (causal, and the band when band_local > 0). The nearest row to a key c <= r1 is
// max(r0, c), at distance max(0, r0 - c); the smallest distance in the tile is at key_hi_causal.
inline bool tile_has_work(int64_t r0, int64_t r1, int64_t key_lo, int64_t key_hi_causal,
                          int64_t band_sink, int64_t band_local) {
  if (key_lo > r1 || key_hi_causal < key_lo) return false;
  if (band_local <= 0) return true;
  if (key_lo < band_sink) return true;
  const int64_t nearest = r0 - key_hi_causal > 0 ? r0 - key_hi_causal : 0;
  return nearest < band_local;
}

// The consecutive-key tiles of slot (head, row_block) of a host index as the kernel walks them:
// each range cut into [b, b + 64), [b + 64, b + 128), ... (the last one cut at the range's end),
// tiles without work (tile_has_work, with the head's band) left out; fn(key_lo, key_end) per
// tile, in the slot's order. kernel_pair_count and the Hopper kernel's stage walk
// (kernels/attention/stage_walk.h) both count over it.
template <class Fn>
void for_each_range_tile(const SparseIndexView& index, int64_t head, int64_t row_block, Fn&& fn) {
  const int64_t band_sink = (index.band_local && index.band_sink) ? index.band_sink[head] : 0;
  const int64_t band_local = index.band_local ? index.band_local[head] : 0;
  const int64_t slot = head * num_row_blocks(index.n_tokens) + row_block;
  const int64_t r0 = row_block * kBlock, r1 = std::min<int64_t>(r0 + kBlock - 1, index.n_tokens - 1);
  for (int32_t r = index.range_offsets[slot]; r < index.range_offsets[slot + 1]; ++r) {
    const int64_t end = index.range_end[r];
    for (int64_t tile = index.range_begin[r]; tile < end; tile += kBlock) {
      const int64_t tile_end = std::min<int64_t>(tile + kBlock, end);
      if (tile_has_work(r0, r1, tile, std::min<int64_t>(tile_end - 1, r1), band_sink, band_local))
        fn(tile, tile_end);
    }
  }
}

// Pairs one head computes at kernel block granularity (host index).
int64_t kernel_pair_count(const SparseIndexView& index, int64_t head);
inline int64_t kernel_pair_count(const SparseIndex& index, int64_t head) {
  return kernel_pair_count(index.view(), head);
}

// Pairs of the dense index at kernel granularity: sum_R rows_R * (r1_R + 1).
int64_t dense_pair_count(int64_t n_tokens);

// Estimator FLOPs for one head:
//   dense, a_shape: 0.
//   vertical_slash: L * N * (2d + 6), L = min(last_q, N): QK^T of the last L queries (2d per
//     pair), softmax (4 per pair: scale, max-subtract, exp, normalise), column and diagonal sums
//     (2 per pair). Top-k selection is not counted (no FLOPs).
//   block_sparse: 2 * N * d (pooling Q and K: one add per element) + 2 * nb^2 * d (all block
//     scores, nb = ceil(N / 64)).
double estimator_flops(const PatternConfig& config, int64_t n_tokens, int64_t head_dim,
                       const EstimatorSettings& settings = {});

// kernel_pair_count(index, head) * 4 * d + estimator_flops(config, N, d).
double head_cost_flops(const SparseIndexView& index, int64_t head, const PatternConfig& config,
                       int64_t head_dim, const EstimatorSettings& settings = {});
inline double head_cost_flops(const SparseIndex& index, int64_t head, const PatternConfig& config,
                              int64_t head_dim, const EstimatorSettings& settings = {}) {
  return head_cost_flops(index.view(), head, config, head_dim, settings);
}

// dense_pair_count(N) * 4 * d.
double dense_cost_flops(int64_t n_tokens, int64_t head_dim);

// cost / dense_cost_flops(N, d).
double density(double cost_flops, int64_t n_tokens, int64_t head_dim);

// A head's output error ||O_sparse - O_dense||_F / ||O_dense||_F from its two squared sums: 0 when
// both are zero, infinity when only the reference is (DESIGN.md, "out_err").
inline double output_error(double diff_sq, double ref_sq) {
  if (ref_sq > 0) return std::sqrt(diff_sq / ref_sq);
  return diff_sq > 0 ? std::numeric_limits<double>::infinity() : 0.0;
}

}  // namespace hc::kernels

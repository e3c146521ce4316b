#include "kernels/sparse/cost.h"

#include <algorithm>
#include <string>

#include "common/error.h"

namespace hc::kernels {

int64_t kernel_pair_count(const SparseIndexView& index, int64_t head) {
  if (head < 0 || head >= index.n_heads) throw InputError("sparse index", "head out of range");
  const int64_t nb = num_row_blocks(index.n_tokens);
  const int64_t band_sink = (index.band_local && index.band_sink) ? index.band_sink[head] : 0;
  const int64_t band_local = index.band_local ? index.band_local[head] : 0;
  int64_t pairs = 0;
  for (int64_t rb = 0; rb < nb; ++rb) {
    const int64_t slot = head * nb + rb;
    const int64_t r0 = rb * kBlock, r1 = std::min<int64_t>(r0 + kBlock - 1, index.n_tokens - 1);
    const int64_t rows = r1 - r0 + 1;
    for_each_range_tile(index, head, rb, [&](int64_t tile, int64_t tile_end) { pairs += rows * (tile_end - tile); });
    const int32_t c_end = index.col_offsets[slot + 1];
    for (int32_t chunk = index.col_offsets[slot]; chunk < c_end; chunk += kBlock) {
      const int32_t chunk_end = std::min<int32_t>(chunk + kBlock, c_end);
      int64_t hi_causal = index.cols[chunk] - 1;  // below key_lo: "no causal key"
      for (int32_t c = chunk; c < chunk_end; ++c)
        if (index.cols[c] <= r1) hi_causal = std::max<int64_t>(hi_causal, index.cols[c]);
      if (tile_has_work(r0, r1, index.cols[chunk], hi_causal, band_sink, band_local))
        pairs += rows * (chunk_end - chunk);
    }
  }
  return pairs;
}

int64_t dense_pair_count(int64_t n_tokens) {
  int64_t pairs = 0;
  for (int64_t rb = 0; rb < num_row_blocks(n_tokens); ++rb) {
    const int64_t r0 = rb * kBlock, r1 = std::min<int64_t>(r0 + kBlock - 1, n_tokens - 1);
    pairs += (r1 - r0 + 1) * (r1 + 1);
  }
  return pairs;
}

double estimator_flops(const PatternConfig& config, int64_t n_tokens, int64_t head_dim,
                       const EstimatorSettings& settings) {
  const double n = static_cast<double>(n_tokens), d = static_cast<double>(head_dim);
  switch (config.pattern) {
    case Pattern::dense:
    case Pattern::a_shape: return 0.0;
    case Pattern::vertical_slash: {
      const double last = static_cast<double>(std::min<int64_t>(settings.last_q, n_tokens));
      return last * n * (2.0 * d + 6.0);
    }
    case Pattern::block_sparse: {
      const double nb = static_cast<double>(num_row_blocks(n_tokens));
      return 2.0 * n * d + 2.0 * nb * nb * d;
    }
  }
  throw InputError("pattern", "unknown pattern value " + std::to_string(static_cast<int>(config.pattern)));
}

double head_cost_flops(const SparseIndexView& index, int64_t head, const PatternConfig& config,
                       int64_t head_dim, const EstimatorSettings& settings) {
  return static_cast<double>(kernel_pair_count(index, head)) * 4.0 * static_cast<double>(head_dim) +
         estimator_flops(config, index.n_tokens, head_dim, settings);
}

double dense_cost_flops(int64_t n_tokens, int64_t head_dim) {
  return static_cast<double>(dense_pair_count(n_tokens)) * 4.0 * static_cast<double>(head_dim);
}

double density(double cost_flops, int64_t n_tokens, int64_t head_dim) {
  return cost_flops / dense_cost_flops(n_tokens, head_dim);
}

}  // namespace hc::kernels

// CPU reference of the pair-column merge (pair_columns_ref.h): a plain two-list merge.
#include "kernels/attention/pair_columns_ref.h"

#include <algorithm>

namespace hc::kernels {

PairColumnsHost merge_pair_columns_ref(const SparseIndex& index) {
  const int64_t n_blocks = num_row_blocks(index.n_tokens);
  const int64_t n_pairs = num_row_block_pairs(index.n_tokens);
  PairColumnsHost out;
  out.entries.assign(index.cols.size(), 0);
  out.counts.assign(static_cast<size_t>(index.n_heads * n_pairs), 0);
  for (int64_t h = 0; h < index.n_heads; ++h) {
    for (int64_t t = 0; t < n_pairs; ++t) {
      const int64_t slot0 = h * n_blocks + 2 * t;
      const bool has_second = 2 * t + 1 < n_blocks;
      std::vector<std::pair<int32_t, int32_t>> keys;  // (key, bit)
      for (int b = 0; b < (has_second ? 2 : 1); ++b) {
        const int64_t last_row = std::min<int64_t>((2 * t + b) * kBlock + kBlock - 1, index.n_tokens - 1);
        for (int32_t i = index.col_offsets[slot0 + b]; i < index.col_offsets[slot0 + b + 1]; ++i)
          if (index.cols[i] <= last_row) keys.push_back({index.cols[i], 1 << b});
      }
      std::sort(keys.begin(), keys.end());
      int32_t pos = index.col_offsets[slot0];
      const int32_t begin = pos;
      for (size_t i = 0; i < keys.size(); ++i) {
        if (i > 0 && keys[i].first == keys[i - 1].first) {
          out.entries[pos - 1] |= keys[i].second;
          continue;
        }
        out.entries[pos++] = keys[i].first << 2 | keys[i].second;
      }
      out.counts[h * n_pairs + t] = pos - begin;
    }
  }
  return out;
}

}  // namespace hc::kernels

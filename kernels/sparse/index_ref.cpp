#include "kernels/sparse/index_ref.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "common/error.h"
#include "kernels/sparse/sparse_parallel.h"

namespace hc::kernels {
namespace {

const char* const kWhat = "sparse index";

void check_tokens_heads(int64_t n_tokens, int64_t n_heads) {
  if (n_tokens < 1 || n_tokens > std::numeric_limits<int32_t>::max())
    throw InputError(kWhat, "n_tokens must be in [1, 2^31-1], got " + std::to_string(n_tokens));
  if (n_heads < 1) throw InputError(kWhat, "n_heads must be >= 1, got " + std::to_string(n_heads));
}

void check_dims(const AttentionDims& dims, const float* q, const float* k) {
  check_tokens_heads(dims.n_tokens, dims.n_heads);
  if (dims.n_kv_heads < 1 || dims.n_heads % dims.n_kv_heads != 0)
    throw InputError(kWhat, "n_heads (" + std::to_string(dims.n_heads) +
                                ") must be a positive multiple of n_kv_heads (" +
                                std::to_string(dims.n_kv_heads) + ")");
  if (dims.head_dim < 1) throw InputError(kWhat, "head_dim must be >= 1");
  if (q == nullptr || k == nullptr) throw InputError(kWhat, "estimator needs q and k");
}

int64_t last_row_of_block(int64_t row_block, int64_t n_tokens) {
  return std::min<int64_t>(row_block * kBlock + kBlock - 1, n_tokens - 1);
}

// Collects one head's slots in order.
class HeadIndexBuilder {
 public:
  explicit HeadIndexBuilder(int64_t n_tokens) {
    index_.n_heads = 1;
    index_.n_tokens = n_tokens;
    index_.range_offsets.push_back(0);
    index_.col_offsets.push_back(0);
  }
  // Ranges must come ascending by begin; overlapping or touching ones merge.
  void add_range(int64_t begin, int64_t end) {
    if (end <= begin) return;
    auto& b = index_.range_begin;
    auto& e = index_.range_end;
    if (static_cast<int64_t>(b.size()) > slot_range_start_ && begin <= e.back()) {
      e.back() = static_cast<int32_t>(std::max<int64_t>(e.back(), end));
      return;
    }
    b.push_back(static_cast<int32_t>(begin));
    e.push_back(static_cast<int32_t>(end));
  }
  void add_col(int64_t col) { index_.cols.push_back(static_cast<int32_t>(col)); }
  // The current slot's merged ranges (for gathering columns outside them).
  const int32_t* slot_begin_ptr() const { return index_.range_begin.data() + slot_range_start_; }
  const int32_t* slot_end_ptr() const { return index_.range_end.data() + slot_range_start_; }
  int64_t slot_range_count() const {
    return static_cast<int64_t>(index_.range_begin.size()) - slot_range_start_;
  }
  void end_slot() {
    index_.range_offsets.push_back(static_cast<int32_t>(index_.range_begin.size()));
    index_.col_offsets.push_back(static_cast<int32_t>(index_.cols.size()));
    slot_range_start_ = static_cast<int64_t>(index_.range_begin.size());
  }
  SparseIndex finish() { return std::move(index_); }

 private:
  SparseIndex index_;
  int64_t slot_range_start_ = 0;
};

double key_of(double score) { return std::isnan(score) ? -std::numeric_limits<double>::infinity() : score; }

// The selection order of the others: score descending, ties toward the lower index, NaN last.
struct SelectOrder {
  const double* score;
  bool operator()(int32_t a, int32_t b) const {
    const double sa = key_of(score[a]), sb = key_of(score[b]);
    return sa > sb || (sa == sb && a < b);
  }
};

// Indices 0..n-1: the forced ones plus the best (SelectOrder) of the others, up to k in all;
// ascending.
template <class IsForced>
std::vector<int32_t> select_top(const double* score, int64_t n, int64_t k, IsForced is_forced) {
  std::vector<int32_t> chosen;
  std::vector<int32_t> others;
  for (int64_t x = 0; x < n; ++x) {
    if (is_forced(x))
      chosen.push_back(static_cast<int32_t>(x));
    else
      others.push_back(static_cast<int32_t>(x));
  }
  const int64_t extra = std::min<int64_t>(std::max<int64_t>(0, k - static_cast<int64_t>(chosen.size())),
                                          static_cast<int64_t>(others.size()));
  std::partial_sort(others.begin(), others.begin() + extra, others.end(), SelectOrder{score});
  chosen.insert(chosen.end(), others.begin(), others.begin() + extra);
  std::sort(chosen.begin(), chosen.end());
  return chosen;
}

// Ranks in select_top's order: 0 for a forced entry, |forced| + place among the others else.
// Returns |forced|.
template <class IsForced>
int32_t selection_ranks(const double* score, int64_t n, IsForced is_forced, int32_t* rank) {
  std::vector<int32_t> others;
  int32_t forced = 0;
  for (int64_t x = 0; x < n; ++x) {
    if (is_forced(x))
      rank[x] = 0, ++forced;
    else
      others.push_back(static_cast<int32_t>(x));
  }
  std::sort(others.begin(), others.end(), SelectOrder{score});
  for (size_t place = 0; place < others.size(); ++place) rank[others[place]] = forced + static_cast<int32_t>(place);
  return forced;
}

double dot(const float* a, const float* b, int64_t d) {
  double acc[4] = {0, 0, 0, 0};
  int64_t x = 0;
  for (; x + 4 <= d; x += 4)
    for (int l = 0; l < 4; ++l) acc[l] += static_cast<double>(a[x + l]) * b[x + l];
  for (; x < d; ++x) acc[0] += static_cast<double>(a[x]) * b[x];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

}  // namespace

SparseIndex build_dense_index(int64_t n_tokens, int64_t n_heads) {
  check_tokens_heads(n_tokens, n_heads);
  HeadIndexBuilder builder(n_tokens);
  for (int64_t rb = 0; rb < num_row_blocks(n_tokens); ++rb) {
    builder.add_range(0, last_row_of_block(rb, n_tokens) + 1);
    builder.end_slot();
  }
  SparseIndex head = builder.finish();
  head.row_blocks_share_tiles = true;
  return stack_heads(std::vector<SparseIndex>(static_cast<size_t>(n_heads), head));
}

SparseIndex build_a_shape_index(int64_t n_tokens, int64_t n_heads, int sink, int local) {
  check_tokens_heads(n_tokens, n_heads);
  check_config({Pattern::a_shape, sink, local}, kWhat);
  HeadIndexBuilder builder(n_tokens);
  for (int64_t rb = 0; rb < num_row_blocks(n_tokens); ++rb) {
    const int64_t r0 = rb * kBlock, r1 = last_row_of_block(rb, n_tokens);
    builder.add_range(0, std::min<int64_t>(sink, r1 + 1));
    builder.add_range(std::max<int64_t>(0, r0 - local + 1), r1 + 1);
    builder.end_slot();
  }
  SparseIndex head = builder.finish();
  head.band_sink = {sink};
  head.band_local = {local};
  head.row_blocks_share_tiles = true;
  return stack_heads(std::vector<SparseIndex>(static_cast<size_t>(n_heads), head));
}

VerticalSlashScores vertical_slash_scores(const float* q, const float* k, const AttentionDims& dims,
                                          int64_t head, int last_q) {
  check_dims(dims, q, k);
  if (head < 0 || head >= dims.n_heads) throw InputError(kWhat, "head out of range");
  if (last_q < 1) throw InputError(kWhat, "last_q must be >= 1");
  const int64_t n = dims.n_tokens, d = dims.head_dim;
  const int64_t kv_head = head / (dims.n_heads / dims.n_kv_heads);
  const int64_t n_last = std::min<int64_t>(last_q, n);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  VerticalSlashScores out;
  out.n_tokens = n;
  out.col_score.assign(static_cast<size_t>(n), 0.0);
  out.diag_score.assign(static_cast<size_t>(n), 0.0);
  std::vector<double> row(static_cast<size_t>(n));  // [N] one causal score row
  for (int64_t i = n - n_last; i < n; ++i) {
    const float* qi = q + (i * dims.n_heads + head) * d;
    double max_score = -std::numeric_limits<double>::infinity();
    for (int64_t j = 0; j <= i; ++j) {
      row[j] = dot(qi, k + (j * dims.n_kv_heads + kv_head) * d, d) * scale;
      max_score = std::max(max_score, row[j]);
    }
    double sum = 0;
    for (int64_t j = 0; j <= i; ++j) {
      row[j] = std::exp(row[j] - max_score);
      sum += row[j];
    }
    for (int64_t j = 0; j <= i; ++j) {
      const double p = row[j] / sum;
      out.col_score[j] += p;
      out.diag_score[i - j] += p;
    }
  }
  return out;
}

VerticalSlashSelection select_vertical_slash(const VerticalSlashScores& scores, int v, int s,
                                             int v_sink, int s_local) {
  if (v < 0 || s < 0 || v_sink < 0 || s_local < 0)
    throw InputError(kWhat, "vertical_slash needs v, s, v_sink, s_local >= 0");
  const int64_t n = scores.n_tokens;
  VerticalSlashSelection sel;
  sel.columns = select_top(scores.col_score.data(), n, v, [&](int64_t j) { return j < v_sink; });
  sel.offsets = select_top(scores.diag_score.data(), n, s, [&](int64_t o) { return o < s_local; });
  return sel;
}

SelectionRanks vertical_slash_ranks(const VerticalSlashScores& scores, int v_sink, int s_local) {
  if (v_sink < 0 || s_local < 0) throw InputError(kWhat, "vertical_slash needs v_sink, s_local >= 0");
  const int64_t n = scores.n_tokens;
  SelectionRanks r;
  r.column.resize(static_cast<size_t>(n));
  r.offset.resize(static_cast<size_t>(n));
  r.forced_columns = selection_ranks(scores.col_score.data(), n, [&](int64_t j) { return j < v_sink; }, r.column.data());
  r.forced_offsets = selection_ranks(scores.diag_score.data(), n, [&](int64_t o) { return o < s_local; }, r.offset.data());
  return r;
}

std::vector<int32_t> block_sparse_ranks(const BlockScores& scores) {
  std::vector<int32_t> rank(scores.score.size());
  for (int64_t r = 0; r < scores.n_blocks; ++r) {
    const int64_t row = r * (r + 1) / 2;
    selection_ranks(scores.score.data() + row, r + 1, [r](int64_t c) { return c == 0 || c == r; }, rank.data() + row);
  }
  return rank;
}

SparseIndex vertical_slash_head_index(int64_t n_tokens, const VerticalSlashSelection& selection) {
  check_tokens_heads(n_tokens, 1);
  HeadIndexBuilder builder(n_tokens);
  const auto& offsets = selection.offsets;  // ascending
  const auto& columns = selection.columns;  // ascending
  for (int64_t rb = 0; rb < num_row_blocks(n_tokens); ++rb) {
    const int64_t r1 = last_row_of_block(rb, n_tokens);
    // Larger offsets give smaller ranges: walk offsets downward for ascending begins.
    const int64_t usable = std::upper_bound(offsets.begin(), offsets.end(), r1) - offsets.begin();
    for (int64_t x = usable - 1; x >= 0; --x) {
      const int64_t o = offsets[x];
      builder.add_range(std::max<int64_t>(0, r1 - o - (kBlock - 1)), r1 - o + 1);
    }
    const int32_t* begins = builder.slot_begin_ptr();
    const int32_t* ends = builder.slot_end_ptr();
    const int64_t n_ranges = builder.slot_range_count();
    int64_t r = 0;
    for (int32_t c : columns) {
      if (c > r1) break;
      while (r < n_ranges && ends[r] <= c) ++r;
      if (r < n_ranges && begins[r] <= c) continue;  // inside a range
      builder.add_col(c);
    }
    builder.end_slot();
  }
  return builder.finish();
}

BlockScores block_scores(const float* q, const float* k, const AttentionDims& dims, int64_t head) {
  check_dims(dims, q, k);
  if (head < 0 || head >= dims.n_heads) throw InputError(kWhat, "head out of range");
  const int64_t n = dims.n_tokens, d = dims.head_dim, nb = num_row_blocks(n);
  const int64_t kv_head = head / (dims.n_heads / dims.n_kv_heads);
  std::vector<double> pooled_q(static_cast<size_t>(nb * d), 0.0);  // [nb, d]
  std::vector<double> pooled_k(static_cast<size_t>(nb * d), 0.0);  // [nb, d]
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t r0 = b * kBlock, r1 = last_row_of_block(b, n);
    double* pq = pooled_q.data() + b * d;
    double* pk = pooled_k.data() + b * d;
    for (int64_t i = r0; i <= r1; ++i) {
      const float* qi = q + (i * dims.n_heads + head) * d;
      const float* ki = k + (i * dims.n_kv_heads + kv_head) * d;
      for (int64_t x = 0; x < d; ++x) {
        pq[x] += qi[x];
        pk[x] += ki[x];
      }
    }
    const double inv_rows = 1.0 / static_cast<double>(r1 - r0 + 1);
    for (int64_t x = 0; x < d; ++x) {
      pq[x] *= inv_rows;
      pk[x] *= inv_rows;
    }
  }
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  BlockScores out;
  out.n_blocks = nb;
  out.score.resize(static_cast<size_t>(nb * (nb + 1) / 2));
  for (int64_t r = 0; r < nb; ++r)
    for (int64_t c = 0; c <= r; ++c) {
      double acc = 0;
      for (int64_t x = 0; x < d; ++x) acc += pooled_q[r * d + x] * pooled_k[c * d + x];
      out.score[r * (r + 1) / 2 + c] = acc * scale;
    }
  return out;
}

std::vector<std::vector<int32_t>> select_block_sparse(const BlockScores& scores, int k_blocks) {
  if (k_blocks < 1) throw InputError(kWhat, "block_sparse needs k_blocks >= 1");
  std::vector<std::vector<int32_t>> kept(static_cast<size_t>(scores.n_blocks));
  for (int64_t r = 0; r < scores.n_blocks; ++r) {
    const double* row = scores.score.data() + r * (r + 1) / 2;
    kept[r] = select_top(row, r + 1, k_blocks, [r](int64_t c) { return c == 0 || c == r; });
  }
  return kept;
}

SparseIndex block_sparse_head_index(int64_t n_tokens,
                                    const std::vector<std::vector<int32_t>>& kept_blocks) {
  check_tokens_heads(n_tokens, 1);
  const int64_t nb = num_row_blocks(n_tokens);
  if (static_cast<int64_t>(kept_blocks.size()) != nb)
    throw InputError(kWhat, "kept_blocks must have one list per row block");
  HeadIndexBuilder builder(n_tokens);
  for (int64_t rb = 0; rb < nb; ++rb) {
    const int64_t r1 = last_row_of_block(rb, n_tokens);
    for (int32_t c : kept_blocks[rb]) {
      if (c < 0 || c > rb) throw InputError(kWhat, "kept key block outside the causal blocks");
      builder.add_range(static_cast<int64_t>(c) * kBlock,
                        std::min<int64_t>(static_cast<int64_t>(c) * kBlock + kBlock, r1 + 1));
    }
    builder.end_slot();
  }
  return builder.finish();
}

SparseIndex head_index_from_estimates(int64_t n_tokens, const PatternConfig& config, const VerticalSlashScores* vs,
                                     const BlockScores* bs, const EstimatorSettings& settings) {
  check_config(config, kWhat);
  switch (config.pattern) {
    case Pattern::dense: return build_dense_index(n_tokens, 1);
    case Pattern::a_shape: return build_a_shape_index(n_tokens, 1, config.p1, config.p2);
    case Pattern::vertical_slash:
      if (vs == nullptr || vs->n_tokens != n_tokens)
        throw InputError(kWhat, "vertical_slash needs the head's vertical-slash scores for N tokens");
      return vertical_slash_head_index(
          n_tokens, select_vertical_slash(*vs, config.p1, config.p2, settings.v_sink, settings.s_local));
    case Pattern::block_sparse:
      if (bs == nullptr || bs->n_blocks != num_row_blocks(n_tokens))
        throw InputError(kWhat, "block_sparse needs the head's block scores for N tokens");
      return block_sparse_head_index(n_tokens, select_block_sparse(*bs, config.p1));
  }
  throw InputError(kWhat, "unknown pattern");
}

SparseIndex build_head_index(const float* q, const float* k, const AttentionDims& dims,
                             int64_t head, const PatternConfig& config,
                             const EstimatorSettings& settings) {
  check_config(config, kWhat);
  VerticalSlashScores vs;
  BlockScores bs;
  if (config.pattern == Pattern::vertical_slash) vs = vertical_slash_scores(q, k, dims, head, settings.last_q);
  if (config.pattern == Pattern::block_sparse) bs = block_scores(q, k, dims, head);
  return head_index_from_estimates(dims.n_tokens, config, &vs, &bs, settings);
}

SparseIndex build_index(const float* q, const float* k, const AttentionDims& dims,
                        const std::vector<PatternConfig>& per_head,
                        const EstimatorSettings& settings, int n_threads) {
  check_tokens_heads(dims.n_tokens, dims.n_heads);
  if (static_cast<int64_t>(per_head.size()) != dims.n_heads)
    throw InputError(kWhat, "need one pattern config per query head (" +
                                std::to_string(dims.n_heads) + "), got " +
                                std::to_string(per_head.size()));
  for (const auto& config : per_head) check_config(config, kWhat);
  std::vector<SparseIndex> heads(static_cast<size_t>(dims.n_heads));
  detail::parallel_for(dims.n_heads, n_threads, [&](int64_t h, int) {
    heads[h] = build_head_index(q, k, dims, h, per_head[h], settings);
  });
  return stack_heads(heads);
}

SparseIndex build_vertical_slash_index(const float* q, const float* k, const AttentionDims& dims,
                                       int v, int s, int last_q, int v_sink, int s_local,
                                       int n_threads) {
  check_dims(dims, q, k);
  const EstimatorSettings settings{last_q, v_sink, s_local};
  if (last_q < 1 || v_sink < 0 || s_local < 0)
    throw InputError(kWhat, "last_q must be >= 1, v_sink and s_local >= 0");
  return build_index(q, k, dims,
                     std::vector<PatternConfig>(static_cast<size_t>(dims.n_heads),
                                                {Pattern::vertical_slash, v, s}),
                     settings, n_threads);
}

SparseIndex build_block_sparse_index(const float* q, const float* k, const AttentionDims& dims,
                                     int k_blocks, int n_threads) {
  check_dims(dims, q, k);
  return build_index(q, k, dims,
                     std::vector<PatternConfig>(static_cast<size_t>(dims.n_heads),
                                                {Pattern::block_sparse, k_blocks, 0}),
                     EstimatorSettings{}, n_threads);
}

SparseIndex stack_heads(const std::vector<SparseIndex>& parts) {
  if (parts.empty()) throw InputError(kWhat, "stack_heads needs at least one index");
  SparseIndex out;
  out.n_tokens = parts.front().n_tokens;
  const int64_t nb = num_row_blocks(out.n_tokens);
  bool any_band = false;
  out.row_blocks_share_tiles = true;
  for (const auto& part : parts) {
    if (part.n_tokens != out.n_tokens) throw InputError(kWhat, "stack_heads: n_tokens differ");
    if (static_cast<int64_t>(part.range_offsets.size()) != part.n_heads * nb + 1 ||
        static_cast<int64_t>(part.col_offsets.size()) != part.n_heads * nb + 1)
      throw InputError(kWhat, "stack_heads: offsets of a part do not match its shape");
    any_band = any_band || !part.band_local.empty();
    out.row_blocks_share_tiles = out.row_blocks_share_tiles && part.row_blocks_share_tiles;
    out.n_heads += part.n_heads;
  }
  out.range_offsets.push_back(0);
  out.col_offsets.push_back(0);
  for (const auto& part : parts) {
    const int32_t range_base = static_cast<int32_t>(out.range_begin.size());
    const int32_t col_base = static_cast<int32_t>(out.cols.size());
    for (size_t x = 1; x < part.range_offsets.size(); ++x)
      out.range_offsets.push_back(range_base + part.range_offsets[x]);
    for (size_t x = 1; x < part.col_offsets.size(); ++x)
      out.col_offsets.push_back(col_base + part.col_offsets[x]);
    out.range_begin.insert(out.range_begin.end(), part.range_begin.begin(), part.range_begin.end());
    out.range_end.insert(out.range_end.end(), part.range_end.begin(), part.range_end.end());
    out.cols.insert(out.cols.end(), part.cols.begin(), part.cols.end());
    if (any_band) {
      for (int64_t h = 0; h < part.n_heads; ++h) {
        const bool has = !part.band_local.empty();
        out.band_sink.push_back(has ? part.band_sink[h] : 0);
        out.band_local.push_back(has ? part.band_local[h] : 0);
      }
    }
  }
  return out;
}

SparseIndex head_slice(const SparseIndex& index, int64_t head) {
  if (head < 0 || head >= index.n_heads) throw InputError(kWhat, "head_slice: head out of range");
  const int64_t nb = num_row_blocks(index.n_tokens);
  SparseIndex out;
  out.n_heads = 1;
  out.n_tokens = index.n_tokens;
  const int32_t r_lo = index.range_offsets[head * nb], r_hi = index.range_offsets[(head + 1) * nb];
  const int32_t c_lo = index.col_offsets[head * nb], c_hi = index.col_offsets[(head + 1) * nb];
  for (int64_t x = head * nb; x <= (head + 1) * nb; ++x) {
    out.range_offsets.push_back(index.range_offsets[x] - r_lo);
    out.col_offsets.push_back(index.col_offsets[x] - c_lo);
  }
  out.range_begin.assign(index.range_begin.begin() + r_lo, index.range_begin.begin() + r_hi);
  out.range_end.assign(index.range_end.begin() + r_lo, index.range_end.begin() + r_hi);
  out.cols.assign(index.cols.begin() + c_lo, index.cols.begin() + c_hi);
  out.row_blocks_share_tiles = index.row_blocks_share_tiles;
  if (!index.band_local.empty()) {
    out.band_sink = {index.band_sink[head]};
    out.band_local = {index.band_local[head]};
  }
  return out;
}

}  // namespace hc::kernels

#include "kernels/sparse/sparse_attention_ref.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "common/error.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/ref_score.h"
#include "kernels/sparse/sparse_parallel.h"

namespace hc::kernels {
namespace {

constexpr int64_t kKeyTile = 64;  // keys per tile of the online softmax

struct Scratch {
  std::vector<int32_t> keys;      // [<= N] the slot's keys, ascending
  std::vector<double> row_max;    // [rows] running max of each row's scores
  std::vector<double> row_sum;    // [rows] running softmax denominator (relative to row_max)
  std::vector<double> acc;        // [rows, d] running P.V numerator
  int32_t tile_keys[kKeyTile];    // one row's keys within the current tile
  double tile_scores[kKeyTile];   // their scaled scores
};

// The slot's ranges and columns merged into one ascending key list (they are disjoint).
void slot_keys(const SparseIndexView& index, int64_t slot, std::vector<int32_t>& keys) {
  keys.clear();
  int32_t c = index.col_offsets[slot];
  const int32_t c_end = index.col_offsets[slot + 1];
  for (int32_t r = index.range_offsets[slot]; r < index.range_offsets[slot + 1]; ++r) {
    for (; c < c_end && index.cols[c] < index.range_begin[r]; ++c) keys.push_back(index.cols[c]);
    for (int32_t j = index.range_begin[r]; j < index.range_end[r]; ++j) keys.push_back(j);
  }
  for (; c < c_end; ++c) keys.push_back(index.cols[c]);
}

}  // namespace

void sparse_attention_ref(const AttentionDims& dims, const float* q, const float* k,
                          const float* v, const SparseIndexView& index, float* o, float* lse,
                          const SparseRefOptions& options, SparseProbe* probe) {
  const char* what = "sparse attention";
  if (dims.n_tokens < 1 || dims.n_heads < 1 || dims.n_kv_heads < 1 || dims.head_dim < 1 ||
      dims.n_heads % dims.n_kv_heads != 0)
    throw InputError(what, "inconsistent attention dims");
  if (index.n_tokens != dims.n_tokens)
    throw InputError(what, "index has " + std::to_string(index.n_tokens) + " tokens, input " +
                               std::to_string(dims.n_tokens));
  if (options.first_head < 0 || index.n_heads < 1 ||
      options.first_head + index.n_heads > dims.n_heads)
    throw InputError(what, "index heads [first_head, first_head + n_heads) exceed the query heads");
  if (options.dense_lse != nullptr && probe == nullptr)
    throw InputError(what, "probe mode (dense_lse) needs a SparseProbe to write to");
  if (q == nullptr || k == nullptr || v == nullptr) throw InputError(what, "q, k and v are required");

  const int64_t n = dims.n_tokens, d = dims.head_dim, n_heads = dims.n_heads;
  const int64_t group = dims.n_heads / dims.n_kv_heads;
  const int64_t nb = num_row_blocks(n);
  const int64_t n_slots = index.n_heads * nb;
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  const bool probing = options.dense_lse != nullptr;

  std::vector<double> slot_recall(static_cast<size_t>(n_slots), 0.0);  // [index heads * nb]
  std::vector<int64_t> slot_pairs(static_cast<size_t>(n_slots), 0);   // [index heads * nb]
  const int workers = detail::resolve_threads(options.n_threads, n_slots);
  std::vector<Scratch> scratch(static_cast<size_t>(workers));

  detail::parallel_for(n_slots, workers, [&](int64_t item, int worker) {
    Scratch& s = scratch[worker];
    // Later row blocks have more keys: hand them out first so no thread is left with a long tail.
    const int64_t index_head = item / nb, rb = nb - 1 - item % nb;
    const int64_t slot = index_head * nb + rb;
    const int64_t head = options.first_head + index_head;
    const int64_t kv_head = head / group;
    const int64_t band_local = index.band_local ? index.band_local[index_head] : 0;
    const int64_t band_sink = (index.band_local && index.band_sink) ? index.band_sink[index_head] : 0;
    const int64_t r0 = rb * kBlock, r1 = std::min<int64_t>(r0 + kBlock - 1, n - 1);
    const int64_t rows = r1 - r0 + 1;
    slot_keys(index, slot, s.keys);
    s.row_max.assign(static_cast<size_t>(rows), -std::numeric_limits<double>::infinity());
    s.row_sum.assign(static_cast<size_t>(rows), 0.0);
    s.acc.assign(static_cast<size_t>(rows * d), 0.0);
    double recall_sum = 0;
    int64_t pairs = 0;
    const int64_t n_keys = static_cast<int64_t>(s.keys.size());
    // Online softmax over key tiles, so one tile's K/V rows serve every row of the block from
    // cache (a whole causal row of K/V per query row streamed ~2 MB per row from L3 at N = 4096
    // and ran 4x slower).
    for (int64_t t0 = 0; t0 < n_keys; t0 += kKeyTile) {
      const int64_t t1 = std::min<int64_t>(t0 + kKeyTile, n_keys);
      for (int64_t r = 0; r < rows; ++r) {
        const int64_t i = r0 + r;
        if (s.keys[t0] > i) continue;  // the tile lies above this row's diagonal
        const float* qi = q + (i * n_heads + head) * d;
        int64_t count = 0;
        double tile_max = -std::numeric_limits<double>::infinity();
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t j = s.keys[t];
          if (j > i) break;
          if (band_local > 0 && !(j < band_sink || i - j < band_local)) continue;
          const double score = detail::score_dot(qi, k + (j * dims.n_kv_heads + kv_head) * d, d) * scale;
          s.tile_keys[count] = static_cast<int32_t>(j);
          s.tile_scores[count++] = score;
          tile_max = std::max(tile_max, score);
        }
        if (count == 0) continue;
        double* acc = s.acc.data() + r * d;
        if (tile_max > s.row_max[r]) {
          if (s.row_sum[r] > 0) {
            const double factor = std::exp(s.row_max[r] - tile_max);
            s.row_sum[r] *= factor;
            for (int64_t x = 0; x < d; ++x) acc[x] *= factor;
          }
          s.row_max[r] = tile_max;
        }
        const double row_max = s.row_max[r];
        double sum = 0;
        for (int64_t t = 0; t < count; ++t) {
          const double p = std::exp(s.tile_scores[t] - row_max);
          sum += p;
          const float* vj = v + (static_cast<int64_t>(s.tile_keys[t]) * dims.n_kv_heads + kv_head) * d;
          for (int64_t x = 0; x < d; ++x) acc[x] += p * static_cast<double>(vj[x]);
        }
        s.row_sum[r] += sum;
        // sum_t exp(s_t - dense_lse) = exp(row_max - dense_lse) * sum_t exp(s_t - row_max): one
        // exp per row and tile instead of one per pair (row_max <= dense_lse, so no overflow).
        if (probing) recall_sum += sum * std::exp(row_max - static_cast<double>(options.dense_lse[head * n + i]));
        pairs += count;
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t i = r0 + r;
      const bool any = s.row_sum[r] > 0;
      const double inv = any ? 1.0 / s.row_sum[r] : 0.0;
      if (o != nullptr) {
        float* oi = o + (i * n_heads + head) * d;
        const double* acc = s.acc.data() + r * d;
        for (int64_t x = 0; x < d; ++x) oi[x] = static_cast<float>(acc[x] * inv);
      }
      if (lse != nullptr)
        lse[head * n + i] = any ? static_cast<float>(s.row_max[r] + std::log(s.row_sum[r]))
                                : -std::numeric_limits<float>::infinity();
    }
    slot_recall[slot] = recall_sum;
    slot_pairs[slot] = pairs;
  });

  if (probe != nullptr) {
    probe->recall.assign(static_cast<size_t>(index.n_heads), 0.0);
    probe->kernel_pairs.assign(static_cast<size_t>(index.n_heads), 0);
    probe->covered_pairs.assign(static_cast<size_t>(index.n_heads), 0);
    for (int64_t h = 0; h < index.n_heads; ++h) {
      double recall = 0;
      for (int64_t rb = 0; rb < nb; ++rb) {
        recall += slot_recall[h * nb + rb];
        probe->covered_pairs[h] += slot_pairs[h * nb + rb];
      }
      probe->recall[h] = probing ? recall / static_cast<double>(n) : 0.0;
      probe->kernel_pairs[h] = kernel_pair_count(index, h);
    }
  }
}

}  // namespace hc::kernels

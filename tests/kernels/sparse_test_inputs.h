#pragma once
// Test inputs and brute-force pattern definitions for the sparse-attention tests. The sets here
// are written straight from DESIGN.md ("Pattern semantics") with no headcal code: full softmax
// rows, sorting for top-k, per-row sets from unmerged block-shaped ranges.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <vector>

namespace sparse_test {

struct Dims {
  int64_t n, h, hkv, d;
};

struct Inputs {
  Dims dims;
  std::vector<float> q;  // [n, h, d]
  std::vector<float> k;  // [n, hkv, d]
  std::vector<float> v;  // [n, hkv, d]
};

inline Inputs random_inputs(Dims dims, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, scale);
  Inputs in{dims, {}, {}, {}};
  in.q.resize(dims.n * dims.h * dims.d);
  in.k.resize(dims.n * dims.hkv * dims.d);
  in.v.resize(dims.n * dims.hkv * dims.d);
  for (auto& x : in.q) x = normal(rng);
  for (auto& x : in.k) x = normal(rng);
  for (auto& x : in.v) x = normal(rng);
  return in;
}

// Peaked attention: every kv head g has a preferred offset hot_offset(g) (a sinusoidal
// positional code in the first half of the dims, so q_i . k_j peaks at i - j = hot_offset) and
// a few hot columns (a shared direction in the second half). Noise keeps scores distinct.
inline int64_t hot_offset(int64_t g) { return 3 + 41 * g; }
inline std::vector<int64_t> hot_columns(int64_t n) {
  std::vector<int64_t> cols;
  for (int64_t c : {int64_t{37}, int64_t{45}, n / 2 + 1, (2 * n) / 3 + 2})
    if (c < n && std::find(cols.begin(), cols.end(), c) == cols.end()) cols.push_back(c);
  return cols;
}
inline Inputs peaked_inputs(Dims dims, uint32_t seed) {
  Inputs in = random_inputs(dims, seed, 0.3f);
  const int64_t half = dims.d / 2, n_freq = half / 2;
  const double amp = 6.0 * std::sqrt(static_cast<double>(dims.d)) / n_freq;
  const auto hot = hot_columns(dims.n);
  for (int64_t i = 0; i < dims.n; ++i) {
    for (int64_t h = 0; h < dims.h; ++h) {
      float* q = &in.q[(i * dims.h + h) * dims.d];
      for (int64_t f = 0; f < n_freq; ++f) {
        const double w = std::pow(0.5, static_cast<double>(f) * 6.0 / n_freq);
        q[2 * f] += static_cast<float>(amp * std::cos(w * i));
        q[2 * f + 1] += static_cast<float>(amp * std::sin(w * i));
      }
      for (int64_t x = half; x < dims.d; ++x) q[x] += static_cast<float>(1.0 / std::sqrt(double(half)));
    }
    for (int64_t g = 0; g < dims.hkv; ++g) {
      float* k = &in.k[(i * dims.hkv + g) * dims.d];
      const double shifted = static_cast<double>(i + hot_offset(g));
      for (int64_t f = 0; f < n_freq; ++f) {
        const double w = std::pow(0.5, static_cast<double>(f) * 6.0 / n_freq);
        k[2 * f] += static_cast<float>(std::cos(w * shifted));
        k[2 * f + 1] += static_cast<float>(std::sin(w * shifted));
      }
      if (std::find(hot.begin(), hot.end(), i) != hot.end())
        for (int64_t x = half; x < dims.d; ++x)
          k[x] += static_cast<float>(5.0 * std::sqrt(double(dims.d)) / std::sqrt(double(half)));
    }
  }
  return in;
}

using RowSets = std::vector<std::vector<int32_t>>;  // [n] ascending keys of C(i)

inline double score(const Inputs& in, int64_t head, int64_t i, int64_t j) {
  const Dims& m = in.dims;
  const int64_t g = head / (m.h / m.hkv);
  double acc = 0;
  for (int64_t x = 0; x < m.d; ++x)
    acc += double(in.q[(i * m.h + head) * m.d + x]) * double(in.k[(j * m.hkv + g) * m.d + x]);
  return acc / std::sqrt(double(m.d));
}

inline RowSets brute_dense(int64_t n) {
  RowSets sets(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j) sets[i].push_back(int32_t(j));
  return sets;
}

inline RowSets brute_a_shape(int64_t n, int64_t sink, int64_t local) {
  RowSets sets(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j <= i; ++j)
      if (j < sink || i - j < local) sets[i].push_back(int32_t(j));
  return sets;
}

// Top `k` by sorting: forced entries get +inf, order by score descending then index ascending;
// the forced ones are always kept (they count toward k).
inline std::vector<int64_t> brute_top(std::vector<double> scores, const std::vector<bool>& forced,
                                      int64_t k) {
  const double inf = std::numeric_limits<double>::infinity();
  int64_t n_forced = 0;
  for (size_t x = 0; x < scores.size(); ++x)
    if (forced[x]) scores[x] = inf, ++n_forced;
  std::vector<int64_t> order(scores.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  });
  order.resize(std::min<int64_t>(order.size(), std::max(k, n_forced)));
  return order;
}

struct BruteVerticalSlash {
  std::vector<int64_t> columns, offsets;  // unsorted top-k results
  RowSets sets;
};

inline BruteVerticalSlash brute_vertical_slash(const Inputs& in, int64_t head, int64_t v, int64_t s,
                                               int64_t last_q, int64_t v_sink, int64_t s_local) {
  const int64_t n = in.dims.n, L = std::min(last_q, n);
  // A_last: the full causal softmax rows of the last L queries, [L, n].
  std::vector<std::vector<double>> a_last(L, std::vector<double>(n, 0.0));
  for (int64_t r = 0; r < L; ++r) {
    const int64_t i = n - L + r;
    double mx = -1e300;
    for (int64_t j = 0; j <= i; ++j) a_last[r][j] = score(in, head, i, j), mx = std::max(mx, a_last[r][j]);
    double sum = 0;
    for (int64_t j = 0; j <= i; ++j) sum += (a_last[r][j] = std::exp(a_last[r][j] - mx));
    for (int64_t j = 0; j <= i; ++j) a_last[r][j] /= sum;
  }
  std::vector<double> col(n, 0.0), diag(n, 0.0);
  for (int64_t r = 0; r < L; ++r) {
    const int64_t i = n - L + r;
    for (int64_t j = 0; j <= i; ++j) col[j] += a_last[r][j], diag[i - j] += a_last[r][j];
  }
  std::vector<bool> forced_col(n), forced_diag(n);
  for (int64_t x = 0; x < n; ++x) forced_col[x] = x < v_sink, forced_diag[x] = x < s_local;
  BruteVerticalSlash out;
  out.columns = brute_top(col, forced_col, v);
  out.offsets = brute_top(diag, forced_diag, s);
  out.sets.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t r1 = std::min((i / 64) * 64 + 63, n - 1);
    std::set<int64_t> keys;
    for (int64_t o : out.offsets)
      for (int64_t j = r1 - o - 63; j <= r1 - o; ++j)
        if (j >= 0 && j <= r1) keys.insert(j);
    for (int64_t c : out.columns)
      if (c <= r1) keys.insert(c);
    for (int64_t j : keys)
      if (j <= i) out.sets[i].push_back(int32_t(j));
  }
  return out;
}

struct BruteBlockSparse {
  std::vector<std::vector<int64_t>> kept;  // [nb] unsorted kept key blocks
  RowSets sets;
};

inline BruteBlockSparse brute_block_sparse(const Inputs& in, int64_t head, int64_t k_blocks) {
  const Dims& m = in.dims;
  const int64_t n = m.n, nb = (n + 63) / 64, g = head / (m.h / m.hkv);
  std::vector<std::vector<double>> pq(nb, std::vector<double>(m.d, 0.0)), pk = pq;
  for (int64_t b = 0; b < nb; ++b) {
    const int64_t lo = b * 64, hi = std::min(n, lo + 64);
    for (int64_t i = lo; i < hi; ++i)
      for (int64_t x = 0; x < m.d; ++x) {
        pq[b][x] += in.q[(i * m.h + head) * m.d + x] / double(hi - lo);
        pk[b][x] += in.k[(i * m.hkv + g) * m.d + x] / double(hi - lo);
      }
  }
  BruteBlockSparse out;
  out.kept.resize(nb);
  for (int64_t r = 0; r < nb; ++r) {
    std::vector<double> sc(r + 1);
    std::vector<bool> forced(r + 1);
    for (int64_t c = 0; c <= r; ++c) {
      double acc = 0;
      for (int64_t x = 0; x < m.d; ++x) acc += pq[r][x] * pk[c][x];
      sc[c] = acc / std::sqrt(double(m.d));
      forced[c] = c == 0 || c == r;
    }
    out.kept[r] = brute_top(sc, forced, k_blocks);
  }
  out.sets.resize(n);
  for (int64_t i = 0; i < n; ++i) {
    const auto& kept = out.kept[i / 64];
    for (int64_t j = 0; j <= i; ++j)
      if (std::find(kept.begin(), kept.end(), j / 64) != kept.end()) out.sets[i].push_back(int32_t(j));
  }
  return out;
}

// Masked softmax attention of one head over the given sets, double precision.
// o [n, d] and lse [n] of that head; recall against dense probabilities (sum over the set).
struct BruteAttention {
  std::vector<double> o, lse;
  double recall = 0;
  int64_t pairs = 0;
};
inline BruteAttention brute_attention(const Inputs& in, int64_t head, const RowSets& sets) {
  const Dims& m = in.dims;
  const int64_t g = head / (m.h / m.hkv);
  BruteAttention out;
  out.o.assign(m.n * m.d, 0.0);
  out.lse.assign(m.n, -std::numeric_limits<double>::infinity());
  for (int64_t i = 0; i < m.n; ++i) {
    std::vector<double> all(i + 1);
    double mx = -1e300;
    for (int64_t j = 0; j <= i; ++j) all[j] = score(in, head, i, j), mx = std::max(mx, all[j]);
    double dense_sum = 0;
    for (int64_t j = 0; j <= i; ++j) dense_sum += std::exp(all[j] - mx);
    const double dense_lse = mx + std::log(dense_sum);
    if (sets[i].empty()) continue;
    double smx = -1e300, sum = 0;
    for (int32_t j : sets[i]) smx = std::max(smx, all[j]);
    for (int32_t j : sets[i]) {
      const double p = std::exp(all[j] - smx);
      sum += p;
      out.recall += std::exp(all[j] - dense_lse);
      for (int64_t x = 0; x < m.d; ++x) out.o[i * m.d + x] += p * in.v[(j * m.hkv + g) * m.d + x];
    }
    for (int64_t x = 0; x < m.d; ++x) out.o[i * m.d + x] /= sum;
    out.lse[i] = smx + std::log(sum);
    out.pairs += static_cast<int64_t>(sets[i].size());
  }
  out.recall /= double(m.n);
  return out;
}

}  // namespace sparse_test

#include "kernels/sparse/grid_probe_ref.h"

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

constexpr const char* kWhat = "grid probe";

// Index of the smallest threshold above `value` (thresholds ascending, distinct); thresholds.size()
// when none is: no candidate of the family keeps the key along that parameter.
int level_of(const std::vector<int32_t>& thresholds, int64_t value) {
  return static_cast<int>(std::upper_bound(thresholds.begin(), thresholds.end(), value) - thresholds.begin());
}

int level_of_index(const std::vector<int32_t>& thresholds, int32_t value) {
  return static_cast<int>(std::lower_bound(thresholds.begin(), thresholds.end(), value) - thresholds.begin());
}

// The candidates of one pattern, their levels and every key's levels (see the header).
struct Family {
  Pattern pattern = Pattern::dense;
  std::vector<int32_t> t1, t2;  // distinct p1 / p2 values, ascending (t2 empty: one parameter)
  std::vector<size_t> members;  // candidate positions
  std::vector<int> a, b;        // per member: level of its p1, of its p2 (-1: none)
  std::vector<int32_t> x_of;    // a_shape: [N] sink level of key j; vertical_slash: [N] column level of j
  std::vector<int32_t> y_of;    // a_shape: [N] local level of i - j; vertical_slash: [N] offset level of r1 - j
  std::vector<int32_t> block_x; // block_sparse: [nb (nb + 1) / 2] level of key block c in row block R

  int nx() const { return static_cast<int>(t1.size()); }
  int ny() const { return static_cast<int>(t2.size()); }
  size_t buckets() const { return static_cast<size_t>((nx() + 1) * (ny() + 1)); }
};

std::vector<int32_t> distinct(std::vector<int32_t> values) {
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

std::vector<Family> group_families(const std::vector<PatternConfig>& candidates) {
  std::vector<Family> families;
  for (Pattern p : {Pattern::dense, Pattern::a_shape, Pattern::vertical_slash, Pattern::block_sparse}) {
    Family f;
    f.pattern = p;
    std::vector<int32_t> p1, p2;
    for (size_t c = 0; c < candidates.size(); ++c) {
      if (candidates[c].pattern != p) continue;
      f.members.push_back(c);
      p1.push_back(p == Pattern::dense ? 0 : candidates[c].p1);
      p2.push_back(candidates[c].p2);
    }
    if (f.members.empty()) continue;
    const bool two = p == Pattern::a_shape || p == Pattern::vertical_slash;
    f.t1 = distinct(p1);
    if (two) f.t2 = distinct(p2);
    for (size_t m = 0; m < f.members.size(); ++m) {
      f.a.push_back(level_of_index(f.t1, p1[m]));
      f.b.push_back(two ? level_of_index(f.t2, p2[m]) : -1);
    }
    families.push_back(std::move(f));
  }
  return families;
}

void fill_key_levels(Family& f, const GridProbeInputs& in, const EstimatorSettings& settings) {
  const int64_t n = in.dims.n_tokens;
  switch (f.pattern) {
    case Pattern::dense: break;
    case Pattern::a_shape:
      f.x_of.resize(static_cast<size_t>(n));
      f.y_of.resize(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) {
        f.x_of[j] = level_of(f.t1, j);  // j < sink
        f.y_of[j] = level_of(f.t2, j);  // i - j < local, indexed by i - j
      }
      break;
    case Pattern::vertical_slash: {
      if (in.vs_scores == nullptr || in.vs_scores->n_tokens != n)
        throw InputError(kWhat, "vertical_slash candidates need the head's vertical-slash scores for N tokens");
      const SelectionRanks r = vertical_slash_ranks(*in.vs_scores, settings.v_sink, settings.s_local);
      f.x_of.resize(static_cast<size_t>(n));
      f.y_of.resize(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j)
        f.x_of[j] = r.column[j] < r.forced_columns ? 0 : level_of(f.t1, r.column[j]);
      // Row block R's ranges cover key j through the offsets o in [max(0, t - 63), t], t = r1 - j:
      // the best-ranked of those decides the level (a sliding minimum over 64 offsets).
      for (int64_t t = 0; t < n; ++t) {
        int32_t best = std::numeric_limits<int32_t>::max();
        for (int64_t o = std::max<int64_t>(0, t - (kBlock - 1)); o <= t; ++o) best = std::min(best, r.offset[o]);
        f.y_of[t] = best < r.forced_offsets ? 0 : level_of(f.t2, best);
      }
      break;
    }
    case Pattern::block_sparse: {
      const int64_t nb = num_row_blocks(n);
      if (in.block_scores == nullptr || in.block_scores->n_blocks != nb)
        throw InputError(kWhat, "block_sparse candidates need the head's block scores for N tokens");
      const std::vector<int32_t> rank = block_sparse_ranks(*in.block_scores);
      f.block_x.resize(rank.size());
      // Forced blocks have rank 0 and every k is >= 1 (check_config): their level is 0.
      for (size_t at = 0; at < rank.size(); ++at) f.block_x[at] = level_of(f.t1, rank[at]);
      break;
    }
  }
}

// Key j's levels in row i (row block rb, last row r1).
inline void levels_of(const Family& f, int64_t i, int64_t j, int64_t rb, int64_t r1, int* x, int* y) {
  *x = 0, *y = 0;
  switch (f.pattern) {
    case Pattern::dense: break;
    case Pattern::a_shape: *x = f.x_of[j], *y = f.y_of[i - j]; break;
    case Pattern::vertical_slash: *x = f.x_of[j], *y = f.y_of[r1 - j]; break;
    case Pattern::block_sparse: *x = f.block_x[rb * (rb + 1) / 2 + j / kBlock]; break;
  }
}

// Key j's bucket in row i; -1 when no candidate keeps it.
inline int bucket_of(const Family& f, int64_t i, int64_t j, int64_t rb, int64_t r1) {
  int x, y;
  levels_of(f, i, j, rb, r1, &x, &y);
  if (x == f.nx() && y == f.ny()) return -1;
  return x * (f.ny() + 1) + y;
}

// Below this share of the row's softmax a candidate's sums lose digits to underflow (weights
// under ~1e-308 are denormal or zero), so its output row is computed again from its own keys with
// its own maximum; far below any mass search would keep, so it costs nothing in practice.
constexpr double kUnderflowMass = 1e-250;

struct Scratch {
  std::vector<double> score;                 // [N] one row's scaled scores
  std::vector<double> p;                     // [N] one row's dense softmax weights
  std::vector<std::vector<double>> buckets;  // per family [(nx+1)(ny+1), 1 + d]: sum p, sum p v
  std::vector<double> out;                   // [d] one candidate's output row
};

}  // namespace

std::vector<CandidateMeasure> probe_grid_ref(const GridProbeInputs& in, int64_t head,
                                             const std::vector<PatternConfig>& candidates,
                                             const EstimatorSettings& settings, int n_threads) {
  const AttentionDims& dims = in.dims;
  if (dims.n_tokens < 1 || dims.n_heads < 1 || dims.n_kv_heads < 1 || dims.head_dim < 1 ||
      dims.n_heads % dims.n_kv_heads != 0)
    throw InputError(kWhat, "inconsistent attention dims");
  if (head < 0 || head >= dims.n_heads) throw InputError(kWhat, "head out of range");
  if (!in.q || !in.k || !in.v || !in.o_ref) throw InputError(kWhat, "q, k, v and o_ref are required");
  for (const PatternConfig& c : candidates) check_config(c, kWhat);

  const int64_t n = dims.n_tokens, d = dims.head_dim, stride = d + 1;
  const int64_t kv_head = head / (dims.n_heads / dims.n_kv_heads);
  const int64_t nb = num_row_blocks(n);
  const size_t n_cand = candidates.size();
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));

  std::vector<Family> families = group_families(candidates);
  for (Family& f : families) fill_key_levels(f, in, settings);

  // Per row block, summed in block order afterwards so the result does not depend on threads.
  std::vector<double> block_recall(static_cast<size_t>(nb) * n_cand, 0.0);  // [nb, candidates]
  std::vector<double> block_diff(static_cast<size_t>(nb) * n_cand, 0.0);    // [nb, candidates]
  std::vector<double> block_ref(static_cast<size_t>(nb), 0.0);              // [nb]
  const int workers = detail::resolve_threads(n_threads, nb);
  std::vector<Scratch> scratch(static_cast<size_t>(workers));
  for (Scratch& s : scratch) {
    s.score.resize(static_cast<size_t>(n));
    s.p.resize(static_cast<size_t>(n));
    s.out.resize(static_cast<size_t>(d));
    for (const Family& f : families) s.buckets.emplace_back(f.buckets() * stride);
  }

  // Member m's output row i from its own keys, softmax over their own maximum (0 when it keeps none).
  auto own_softmax_row = [&](const Family& f, size_t m, int64_t i, int64_t rb, int64_t r1, Scratch& s) {
    double own_max = -std::numeric_limits<double>::infinity();
    auto kept = [&](int64_t j) {
      int x, y;
      levels_of(f, i, j, rb, r1, &x, &y);
      return x <= f.a[m] || (f.b[m] >= 0 && y <= f.b[m]);
    };
    for (int64_t j = 0; j <= i; ++j)
      if (kept(j)) own_max = std::max(own_max, s.score[j]);
    std::fill(s.out.begin(), s.out.end(), 0.0);
    if (own_max == -std::numeric_limits<double>::infinity()) return;
    double own_sum = 0;
    for (int64_t j = 0; j <= i; ++j) {
      if (!kept(j)) continue;
      const double p = std::exp(s.score[j] - own_max);
      own_sum += p;
      const float* vj = in.v + (j * dims.n_kv_heads + kv_head) * d;
      for (int64_t x = 0; x < d; ++x) s.out[x] += p * static_cast<double>(vj[x]);
    }
    for (int64_t x = 0; x < d; ++x) s.out[x] /= own_sum;
  };

  detail::parallel_for(nb, workers, [&](int64_t item, int worker) {
    Scratch& s = scratch[worker];
    const int64_t rb = nb - 1 - item;  // later blocks have more keys: start them first
    const int64_t r0 = rb * kBlock, r1 = std::min<int64_t>(r0 + kBlock - 1, n - 1);
    double* recall = block_recall.data() + rb * n_cand;
    double* diff = block_diff.data() + rb * n_cand;
    for (int64_t i = r0; i <= r1; ++i) {
      const float* qi = in.q + (i * dims.n_heads + head) * d;
      double row_max = -std::numeric_limits<double>::infinity();
      for (int64_t j = 0; j <= i; ++j) {
        s.score[j] = detail::score_dot(qi, in.k + (j * dims.n_kv_heads + kv_head) * d, d) * scale;
        row_max = std::max(row_max, s.score[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j <= i; ++j) sum += (s.p[j] = std::exp(s.score[j] - row_max));
      for (int64_t j = 0; j <= i; ++j) s.p[j] /= sum;
      const float* oi = in.o_ref + (i * dims.n_heads + head) * d;
      for (int64_t x = 0; x < d; ++x) block_ref[rb] += double(oi[x]) * oi[x];

      for (size_t fi = 0; fi < families.size(); ++fi) {
        const Family& f = families[fi];
        std::vector<double>& bucket = s.buckets[fi];  // [(nx+1)(ny+1), 1 + d]
        std::fill(bucket.begin(), bucket.end(), 0.0);
        for (int64_t j = 0; j <= i; ++j) {
          const int at = bucket_of(f, i, j, rb, r1);
          if (at < 0) continue;
          const double p = s.p[j];
          double* acc = bucket.data() + at * stride;
          const float* vj = in.v + (j * dims.n_kv_heads + kv_head) * d;
          acc[0] += p;
          for (int64_t x = 0; x < d; ++x) acc[1 + x] += p * static_cast<double>(vj[x]);
        }
        // Inclusive 2-D prefix sums: along y, then along x.
        const int nx = f.nx(), ny = f.ny();
        auto cell = [&](int x, int y) { return bucket.data() + (x * (ny + 1) + y) * stride; };
        for (int x = 0; x <= nx; ++x)
          for (int y = 1; y <= ny; ++y) {
            double* dst = cell(x, y);
            const double* src = cell(x, y - 1);
            for (int64_t e = 0; e < stride; ++e) dst[e] += src[e];
          }
        for (int x = 1; x <= nx; ++x)
          for (int y = 0; y <= ny; ++y) {
            double* dst = cell(x, y);
            const double* src = cell(x - 1, y);
            for (int64_t e = 0; e < stride; ++e) dst[e] += src[e];
          }
        // Candidate (a, b) keeps x <= a (any y), plus x > a with y <= b.
        for (size_t m = 0; m < f.members.size(); ++m) {
          const double* kept_x = cell(f.a[m], ny);
          const double* all_b = f.b[m] >= 0 ? cell(nx, f.b[m]) : nullptr;
          const double* both = f.b[m] >= 0 ? cell(f.a[m], f.b[m]) : nullptr;
          auto total = [&](int64_t e) { return kept_x[e] + (all_b ? all_b[e] - both[e] : 0.0); };
          const double l = total(0);
          if (l >= kUnderflowMass) {
            for (int64_t x = 0; x < d; ++x) s.out[x] = total(1 + x) / l;
          } else {
            own_softmax_row(f, m, i, rb, r1, s);
          }
          double err = 0;
          for (int64_t x = 0; x < d; ++x) {
            const double e = s.out[x] - double(oi[x]);
            err += e * e;
          }
          const size_t c = f.members[m];
          recall[c] += l;
          diff[c] += err;
        }
      }
    }
  });

  double ref_sq = 0;
  for (int64_t rb = 0; rb < nb; ++rb) ref_sq += block_ref[rb];
  std::vector<CandidateMeasure> out(n_cand);
  for (size_t c = 0; c < n_cand; ++c) {
    double recall = 0, diff = 0;
    for (int64_t rb = 0; rb < nb; ++rb) {
      recall += block_recall[rb * n_cand + c];
      diff += block_diff[rb * n_cand + c];
    }
    out[c].recall = recall / static_cast<double>(n);
    out[c].out_err = output_error(diff, ref_sq);
  }
  return out;
}

}  // namespace hc::kernels

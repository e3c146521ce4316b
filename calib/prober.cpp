#include "calib/prober.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/index_ref.h"
#include "kernels/sparse/sparse_attention_ref.h"

namespace hc {

namespace {

class CpuProber : public CandidateProber {
 public:
  CpuProber(Grid grid, PatternDefaults defaults, int n_threads)
      : grid_(std::move(grid)), defaults_(defaults), n_threads_(n_threads) {}

  std::vector<CandidateRow> probe(const ProbeLayer& layer) override {
    if (!layer.host) throw Error("CPU prober needs the CPU backend's host tensors");
    const LayerAttention& a = *layer.host;
    const kernels::AttentionDims& dims = a.dims;
    const int64_t n = dims.n_tokens, d = dims.head_dim;
    const kernels::EstimatorSettings settings = estimator_settings(defaults_);
    std::vector<float> o_sparse(static_cast<size_t>(n * dims.n_heads * d));  // [N, H, d]
    std::vector<CandidateRow> rows;
    rows.reserve(grid_.candidates.size() * dims.n_heads);
    const std::vector<float> lse = own_dense_lse(a);  // [H, N]

    for (int64_t h = 0; h < dims.n_heads; ++h) {
      const double recall_rounding = lse_rounding_bound(lse.data() + h * n, n);
      // Estimates shared by every candidate of this head: computed lazily, once.
      bool have_vs = false, have_bs = false;
      kernels::VerticalSlashScores vs;
      kernels::BlockScores bs;
      for (const GridCandidate& c : grid_.candidates) {
        const kernels::PatternConfig cfg = pattern_config(c);
        kernels::SparseIndex index;
        switch (cfg.pattern) {
          case kernels::Pattern::vertical_slash:
            if (!have_vs) vs = kernels::vertical_slash_scores(a.q, a.k, dims, h, settings.last_q), have_vs = true;
            index = kernels::vertical_slash_head_index(
                n, kernels::select_vertical_slash(vs, cfg.p1, cfg.p2, settings.v_sink, settings.s_local));
            break;
          case kernels::Pattern::block_sparse:
            if (!have_bs) bs = kernels::block_scores(a.q, a.k, dims, h), have_bs = true;
            index = kernels::block_sparse_head_index(n, kernels::select_block_sparse(bs, cfg.p1));
            break;
          default:
            index = kernels::build_head_index(a.q, a.k, dims, h, cfg, settings);
            break;
        }
        kernels::SparseRefOptions opts;
        opts.first_head = h;
        opts.dense_lse = lse.data();
        opts.n_threads = n_threads_;
        kernels::SparseProbe probe;
        kernels::sparse_attention_ref(dims, a.q, a.k, a.v, index.view(), o_sparse.data(), nullptr, opts, &probe);

        CandidateRow row;
        row.head = static_cast<int32_t>(h);
        row.pattern = c.pattern;
        row.p1 = c.p1;
        row.p2 = c.p2;
        row.cost = kernels::head_cost_flops(index, 0, cfg, d, settings);
        row.density = kernels::density(row.cost, n, d);
        // Above 1 by no more than the LSE's float rounding: the full set, read as 1.
        row.recall = probe.recall[0] > 1 && probe.recall[0] <= recall_rounding ? 1.0 : probe.recall[0];
        row.out_err = head_relative_error(o_sparse.data(), a.o, n, dims.n_heads, d, h);
        rows.push_back(row);
      }
    }
    return rows;
  }

 private:
  // The dense LSE from the same double-precision scores as the probe's sums. The engine's LSE
  // comes from float scores, which differ by more than rounding (recall 1.0145 on random weights).
  std::vector<float> own_dense_lse(const LayerAttention& a) const {
    const int64_t n = a.dims.n_tokens;
    std::vector<float> lse(static_cast<size_t>(a.dims.n_heads * n));  // [H, N]
    const kernels::SparseIndex dense = kernels::build_dense_index(n, 1);
    for (int64_t h = 0; h < a.dims.n_heads; ++h) {
      kernels::SparseRefOptions opts;
      opts.first_head = h;
      opts.n_threads = n_threads_;
      kernels::sparse_attention_ref(a.dims, a.q, a.k, a.v, dense.view(), nullptr, lse.data(), opts, nullptr);
    }
    return lse;
  }

  // Stored as float, each LSE is within half an ulp (<= |lse| 2^-24) of the exact one, so a
  // recall may exceed 1 by at most exp(max |lse| 2^-24), times double rounding of the sums.
  static double lse_rounding_bound(const float* lse, int64_t n) {
    double largest = 0;
    for (int64_t i = 0; i < n; ++i) largest = std::max(largest, std::fabs(double(lse[i])));
    return std::exp(std::ldexp(largest, -24)) * (1 + 1e-9);
  }

  Grid grid_;
  PatternDefaults defaults_;
  int n_threads_;
};

}  // namespace

kernels::EstimatorSettings estimator_settings(const PatternDefaults& d) {
  kernels::EstimatorSettings s;
  s.last_q = static_cast<int>(d.last_q);
  s.v_sink = static_cast<int>(d.v_sink);
  s.s_local = static_cast<int>(d.s_local);
  return s;
}

kernels::PatternConfig pattern_config(const GridCandidate& c) {
  return {c.pattern, c.p1, c.p2};
}

double head_relative_error(const float* a, const float* b, int64_t n_tokens, int64_t n_heads,
                           int64_t head_dim, int64_t head) {
  double diff = 0, ref = 0;
  for (int64_t i = 0; i < n_tokens; ++i) {
    const float* pa = a + (i * n_heads + head) * head_dim;
    const float* pb = b + (i * n_heads + head) * head_dim;
    for (int64_t x = 0; x < head_dim; ++x) {
      const double e = double(pa[x]) - double(pb[x]);
      diff += e * e;
      ref += double(pb[x]) * double(pb[x]);
    }
  }
  return kernels::output_error(diff, ref);
}

std::unique_ptr<CandidateProber> make_cpu_prober(const Grid& grid, const PatternDefaults& defaults,
                                                 int n_threads) {
  return std::make_unique<CpuProber>(grid, defaults, n_threads);
}

#if !defined(HEADCAL_HAVE_CUDA)
std::unique_ptr<CandidateProber> make_cuda_prober(const Grid&, const PatternDefaults&) {
  throw DeviceError("this headcal was built without CUDA: no CUDA prober");
}
#endif

}  // namespace hc

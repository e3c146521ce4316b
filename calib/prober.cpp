#include "calib/prober.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/error.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/grid_probe_ref.h"
#include "kernels/sparse/index_ref.h"

namespace hc {

namespace {

class CpuProber : public CandidateProber {
 public:
  CpuProber(Grid grid, PatternDefaults defaults, int n_threads)
      : grid_(std::move(grid)), defaults_(defaults), n_threads_(n_threads) {
    for (const GridCandidate& c : grid_.candidates) {
      configs_.push_back(pattern_config(c));
      needs_vs_ |= c.pattern == Pattern::vertical_slash;
      needs_bs_ |= c.pattern == Pattern::block_sparse;
    }
  }

  std::vector<CandidateRow> probe(const ProbeLayer& layer) override {
    if (!layer.host) throw Error("CPU prober needs the CPU backend's host tensors");
    const LayerAttention& a = *layer.host;
    const kernels::AttentionDims& dims = a.dims;
    const int64_t n = dims.n_tokens, d = dims.head_dim;
    const kernels::EstimatorSettings settings = estimator_settings(defaults_);
    std::vector<CandidateRow> rows;
    rows.reserve(configs_.size() * dims.n_heads);

    for (int64_t h = 0; h < dims.n_heads; ++h) {
      // The head's estimates, shared by its candidates' indexes and by the grid probe.
      kernels::VerticalSlashScores vs;
      kernels::BlockScores bs;
      if (needs_vs_) vs = kernels::vertical_slash_scores(a.q, a.k, dims, h, settings.last_q);
      if (needs_bs_) bs = kernels::block_scores(a.q, a.k, dims, h);
      kernels::GridProbeInputs in;
      in.dims = dims;
      in.q = a.q;
      in.k = a.k;
      in.v = a.v;
      in.o_ref = a.o;
      in.vs_scores = needs_vs_ ? &vs : nullptr;
      in.block_scores = needs_bs_ ? &bs : nullptr;
      const std::vector<kernels::CandidateMeasure> measures =
          kernels::probe_grid_ref(in, h, configs_, settings, n_threads_);

      for (size_t ci = 0; ci < configs_.size(); ++ci) {
        const kernels::PatternConfig& cfg = configs_[ci];
        // For the cost: the pairs the kernel computes over this candidate's index.
        const kernels::SparseIndex index = kernels::head_index_from_estimates(n, cfg, &vs, &bs, settings);
        const GridCandidate& c = grid_.candidates[ci];
        CandidateRow row;
        row.head = static_cast<int32_t>(h);
        row.pattern = c.pattern;
        row.p1 = c.p1;
        row.p2 = c.p2;
        row.cost = kernels::head_cost_flops(index, 0, cfg, d, settings);
        row.density = kernels::density(row.cost, n, d);
        // The probe's LSE and sums are double from the same scores: a recall above 1 is rounding.
        const double recall = measures[ci].recall;
        row.recall = recall > 1 && recall <= 1 + kRecallRounding ? 1.0 : recall;
        row.out_err = measures[ci].out_err;
        rows.push_back(row);
      }
    }
    return rows;
  }

 private:
  static constexpr double kRecallRounding = 1e-9;  // far above N * 2^-52 for any N headcal runs

  Grid grid_;
  PatternDefaults defaults_;
  int n_threads_;
  std::vector<kernels::PatternConfig> configs_;  // the grid's candidates as the kernels' configs
  bool needs_vs_ = false, needs_bs_ = false;
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

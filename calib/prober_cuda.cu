// CUDA candidate prober, on the engine's bf16 device tensors: the grid's a_shape, vertical_slash
// and block_sparse candidates by the GPU grid probe (kernels/sparse/grid_probe_gpu.h: a few sweeps
// measure them all); any other, and any candidate a sweep could not measure, each in one
// probe-mode launch of the index-driven kernel on all heads, its index from a layer planner
// (kernels/sparse/layer_plan.h) of its own.
#include <map>
#include <memory>
#include <vector>

#include "calib/prober.h"
#include "calib/cuda_engine.h"
#include "calib/device_attention.h"
#include "calib/kernel_probe.h"
#include "common/error.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/grid_probe_gpu.h"
#include "kernels/sparse/layer_plan.h"

namespace hc {

namespace {

class CudaProber : public CandidateProber {
 public:
  CudaProber(Grid grid, PatternDefaults defaults) : grid_(std::move(grid)), settings_(estimator_settings(defaults)) {
    for (const GridCandidate& c : grid_.candidates) configs_.push_back(pattern_config(c));
  }

  // The sweeps' workspace, and for each candidate they do not cover its own planner's and a sparse
  // output (a candidate they leave unmeasured on some layer borrows the same room for a while).
  size_t device_bytes(const ModelConfig& config, int64_t n_tokens) const override {
    const kernels::AttentionDims dims = cuda_attention_dims(config, n_tokens);
    const kernels::LayerShape shape = layer_shape(dims);
    const size_t o_bytes = size_t(n_tokens) * dims.n_heads * dims.head_dim * 2;  // bf16 [N, H, d]
    const std::vector<bool> coverage = kernels::GridProberGpu::coverage(configs_);
    size_t bytes = static_cast<size_t>(kernels::GridProberGpu::workspace_bytes(configs_, shape, settings_)) + o_bytes;
    for (size_t ci = 0; ci < configs_.size(); ++ci)
      if (!coverage[ci]) bytes += static_cast<size_t>(kernels::LayerPlanner::workspace_bytes(
                             {std::vector<kernels::PatternConfig>(dims.n_heads, configs_[ci])}, shape, settings_));
    return bytes + (64u << 20);
  }

  std::vector<CandidateRow> probe(const ProbeLayer& layer) override {
    if (!layer.device) throw Error("CUDA prober needs the CUDA backend's device tensors");
    const DeviceLayerAttention& a = *layer.device;
    const kernels::AttentionDims& dims = a.dims;
    const int64_t n = dims.n_tokens, h_count = dims.n_heads, d = dims.head_dim;
    cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
    const kernels::LayerShape want = layer_shape(dims);
    const bool grown = planner_shape_.max_tokens < want.max_tokens || planner_shape_.n_heads != want.n_heads ||
                       planner_shape_.n_kv_heads != want.n_kv_heads || planner_shape_.head_dim != want.head_dim;
    if (!sweeps_ || grown) {
      sweeps_.reset();  // the workspaces go before larger ones are allocated
      planners_.clear();
      sweeps_ = std::make_unique<kernels::GridProberGpu>(configs_, want, settings_);
      planner_shape_ = want;
    }

    kernels::GridProbeLayer in;
    in.q = a.q;
    in.k = a.k;
    in.v = a.v;
    in.q_row_stride = a.q_row_stride;
    in.k_row_stride = a.k_row_stride;
    in.v_row_stride = a.v_row_stride;
    in.o_ref = a.o;
    in.lse = a.lse;
    in.n_tokens = static_cast<int>(n);
    const std::vector<kernels::GridProbeMeasure> swept = sweeps_->probe(in, stream);

    std::vector<CandidateRow> rows;
    rows.reserve(grid_.candidates.size() * h_count);
    for (size_t ci = 0; ci < grid_.candidates.size(); ++ci) {
      const GridCandidate& c = grid_.candidates[ci];
      bool all_measured = sweeps_->covers(ci);
      for (int64_t h = 0; h < h_count && all_measured; ++h) all_measured = swept[ci * h_count + h].measured;
      std::vector<kernels::GridProbeMeasure> own;
      if (!all_measured) own = probe_on_kernel(a, ci);
      const kernels::GridProbeMeasure* m = all_measured ? swept.data() + ci * h_count : own.data();
      for (int64_t h = 0; h < h_count; ++h) {
        CandidateRow row;
        row.head = static_cast<int32_t>(h);
        row.pattern = c.pattern;
        row.p1 = c.p1;
        row.p2 = c.p2;
        row.cost = m[h].cost;
        row.density = kernels::density(row.cost, n, d);
        row.recall = m[h].recall;
        row.out_err = m[h].out_err;
        rows.push_back(row);
      }
    }
    return rows;
  }

 private:
  // Candidate ci on all heads in one probe-mode run of the index-driven kernel over its index, from
  // a planner of its own (kept for the next layers).
  std::vector<kernels::GridProbeMeasure> probe_on_kernel(const DeviceLayerAttention& a, size_t ci) {
    cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
    const std::vector<kernels::PatternConfig> heads(static_cast<size_t>(a.dims.n_heads), configs_[ci]);
    std::unique_ptr<kernels::LayerPlanner>& planner = planners_[ci];
    if (!planner)
      planner = std::make_unique<kernels::LayerPlanner>(std::vector<std::vector<kernels::PatternConfig>>{heads},
                                                        planner_shape_, settings_, stream);
    planner->plan(0, gpu_qk(a), stream);  // a dense layer's index is built by the probe run itself
    return kernel_probe(*planner, a, heads, settings_);
  }

  Grid grid_;
  kernels::EstimatorSettings settings_;
  std::vector<kernels::PatternConfig> configs_;  // the grid's candidates as the kernels' configs
  std::unique_ptr<kernels::GridProberGpu> sweeps_;
  std::map<size_t, std::unique_ptr<kernels::LayerPlanner>> planners_;  // per candidate the sweeps left
  kernels::LayerShape planner_shape_;  // what sweeps_'s and planners_'s workspaces were made for
};

}  // namespace

std::unique_ptr<CandidateProber> make_cuda_prober(const Grid& grid, const PatternDefaults& defaults) {
  return std::make_unique<CudaProber>(grid, defaults);
}

}  // namespace hc

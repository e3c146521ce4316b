// CUDA candidate prober, on the engine's bf16 device tensors: the grid's a_shape, vertical_slash
// and block_sparse candidates by the GPU grid probe (kernels/sparse/grid_probe_gpu.h: a few sweeps
// measure them all); any other, and any candidate a sweep could not measure, each
// in one probe-mode launch of the index-driven kernel on all heads, its index from one layer
// planner (kernels/sparse/layer_plan.h) whose "layers" are the grid's candidates.
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

  size_t device_bytes(const ModelConfig& config, int64_t n_tokens) const override {
    const kernels::AttentionDims dims = cuda_attention_dims(config, n_tokens);
    const size_t o_bytes = size_t(n_tokens) * dims.n_heads * dims.head_dim * 2;  // bf16 [N, H, d]
    return o_bytes +
           static_cast<size_t>(kernels::LayerPlanner::workspace_bytes(candidate_layers(config.n_heads),
                                                                      layer_shape(dims), settings_)) +
           static_cast<size_t>(kernels::GridProberGpu::workspace_bytes(configs_, layer_shape(dims), settings_)) +
           (64u << 20);
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
      planner_.reset();
      sweeps_ = std::make_unique<kernels::GridProberGpu>(configs_, want, settings_);
      planner_shape_ = want;
    }
    estimated_ = false;

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
  // Candidate ci on all heads in one probe-mode run of the index-driven kernel over its index
  // (the layer's estimates made on first use).
  std::vector<kernels::GridProbeMeasure> probe_on_kernel(const DeviceLayerAttention& a, size_t ci) {
    cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
    if (!planner_)
      planner_ = std::make_unique<kernels::LayerPlanner>(candidate_layers(a.dims.n_heads), planner_shape_, settings_,
                                                         stream);
    if (!estimated_) {
      planner_->estimate(gpu_qk(a), stream);
      estimated_ = true;
    }
    planner_->build(static_cast<int>(ci), stream);
    return kernel_probe(*planner_, a, std::vector<kernels::PatternConfig>(a.dims.n_heads, configs_[ci]), settings_);
  }

  // Every candidate of the grid as one planner "layer" of h_count heads.
  std::vector<std::vector<kernels::PatternConfig>> candidate_layers(int64_t h_count) const {
    std::vector<std::vector<kernels::PatternConfig>> layers;
    for (const GridCandidate& c : grid_.candidates)
      layers.emplace_back(static_cast<size_t>(h_count), pattern_config(c));
    return layers;
  }

  Grid grid_;
  kernels::EstimatorSettings settings_;
  std::vector<kernels::PatternConfig> configs_;  // the grid's candidates as the kernels' configs
  std::unique_ptr<kernels::GridProberGpu> sweeps_;
  std::unique_ptr<kernels::LayerPlanner> planner_;  // made on the first candidate the sweeps leave
  bool estimated_ = false;             // planner_ holds this layer's estimates
  kernels::LayerShape planner_shape_;  // what sweeps_'s and planner_'s workspaces were made for
};

}  // namespace

std::unique_ptr<CandidateProber> make_cuda_prober(const Grid& grid, const PatternDefaults& defaults) {
  return std::make_unique<CudaProber>(grid, defaults);
}

}  // namespace hc

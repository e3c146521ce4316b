// CUDA candidate prober: every grid candidate runs on all heads of a layer in one probe-mode
// launch of the index-driven kernel, on the engine's bf16 device tensors; the indexes come from one
// layer planner (kernels/sparse/layer_plan.h) whose "layers" are the grid's candidates.
#include <cuda_bf16.h>

#include <cmath>
#include <memory>
#include <vector>

#include "calib/prober.h"
#include "calib/cuda_buffers.h"
#include "calib/cuda_engine.h"
#include "calib/device_attention.h"
#include "common/cuda_check.h"
#include "kernels/attention/attention.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/index_gpu.h"
#include "kernels/sparse/layer_plan.h"

namespace hc {

namespace {

class CudaProber : public CandidateProber {
 public:
  CudaProber(Grid grid, PatternDefaults defaults) : grid_(std::move(grid)), settings_(estimator_settings(defaults)) {}

  size_t device_bytes(const ModelConfig& config, int64_t n_tokens) const override {
    const kernels::AttentionDims dims = cuda_attention_dims(config, n_tokens);
    const size_t o_bytes = size_t(n_tokens) * dims.n_heads * dims.head_dim * 2;  // bf16 [N, H, d]
    return o_bytes + static_cast<size_t>(kernels::LayerPlanner::workspace_bytes(candidate_layers(config.n_heads),
                                                                                layer_shape(dims), settings_)) +
           (64u << 20);
  }

  std::vector<CandidateRow> probe(const ProbeLayer& layer) override {
    if (!layer.device) throw Error("CUDA prober needs the CUDA backend's device tensors");
    const DeviceLayerAttention& a = *layer.device;
    const kernels::AttentionDims& dims = a.dims;
    const int64_t n = dims.n_tokens, h_count = dims.n_heads, d = dims.head_dim;
    cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
    // One planner for every layer of a run: a "layer" per candidate, all heads on it; the
    // estimates run once per layer and every candidate's index is built from them.
    const kernels::LayerShape want = layer_shape(dims);
    if (!planner_ || planner_shape_.max_tokens < want.max_tokens || planner_shape_.n_heads != want.n_heads ||
        planner_shape_.n_kv_heads != want.n_kv_heads || planner_shape_.head_dim != want.head_dim) {
      planner_.reset();  // its workspace goes before the larger one is allocated
      planner_ = std::make_unique<kernels::LayerPlanner>(candidate_layers(h_count), want, settings_, stream);
      planner_shape_ = want;
    }

    DeviceBuffer<__nv_bfloat16> o_sparse(size_t(n * h_count * d));  // [N, H, d]
    DeviceBuffer<double> recall(h_count), diff_sq(h_count), ref_sq(h_count);  // [H] each
    DeviceBuffer<long long> pairs(h_count);                                   // [H]

    planner_->estimate(gpu_qk(a), stream);

    std::vector<CandidateRow> rows;
    rows.reserve(grid_.candidates.size() * h_count);
    std::vector<double> h_recall(h_count), h_diff(h_count), h_ref(h_count);
    std::vector<long long> h_pairs(h_count);
    for (size_t ci = 0; ci < grid_.candidates.size(); ++ci) {
      const GridCandidate& c = grid_.candidates[ci];
      const kernels::PatternConfig cfg = pattern_config(c);
      planner_->build(static_cast<int>(ci), stream);
      kernels::AttentionParams p = attention_params(a, o_sparse.ptr, nullptr);
      p.probe_lse = a.lse;
      p.probe_recall = recall.ptr;
      p.probe_pairs = pairs.ptr;
      planner_->run(p, stream);

      head_squared_errors_gpu(a.o, o_sparse.ptr, n, h_count, d, diff_sq.ptr, ref_sq.ptr, stream);
      HC_CHECK_CUDA(cudaMemcpyAsync(h_recall.data(), recall.ptr, h_count * sizeof(double), cudaMemcpyDeviceToHost, stream));
      HC_CHECK_CUDA(cudaMemcpyAsync(h_pairs.data(), pairs.ptr, h_count * sizeof(long long), cudaMemcpyDeviceToHost, stream));
      HC_CHECK_CUDA(cudaMemcpyAsync(h_diff.data(), diff_sq.ptr, h_count * sizeof(double), cudaMemcpyDeviceToHost, stream));
      HC_CHECK_CUDA(cudaMemcpyAsync(h_ref.data(), ref_sq.ptr, h_count * sizeof(double), cudaMemcpyDeviceToHost, stream));
      HC_CHECK_CUDA(cudaStreamSynchronize(stream));

      const double estimator = kernels::estimator_flops(cfg, n, d, settings_);
      for (int64_t h = 0; h < h_count; ++h) {
        CandidateRow row;
        row.head = static_cast<int32_t>(h);
        row.pattern = c.pattern;
        row.p1 = c.p1;
        row.p2 = c.p2;
        row.cost = double(h_pairs[h]) * 4.0 * double(d) + estimator;
        row.density = kernels::density(row.cost, n, d);
        row.recall = h_recall[h];
        row.out_err = kernels::output_error(h_diff[h], h_ref[h]);
        rows.push_back(row);
      }
    }
    return rows;
  }

 private:
  // Every candidate of the grid as one planner "layer" of h_count heads.
  std::vector<std::vector<kernels::PatternConfig>> candidate_layers(int64_t h_count) const {
    std::vector<std::vector<kernels::PatternConfig>> layers;
    for (const GridCandidate& c : grid_.candidates)
      layers.emplace_back(static_cast<size_t>(h_count), pattern_config(c));
    return layers;
  }

  Grid grid_;
  kernels::EstimatorSettings settings_;
  std::unique_ptr<kernels::LayerPlanner> planner_;
  kernels::LayerShape planner_shape_;  // what planner_'s workspace was made for
};

}  // namespace

std::unique_ptr<CandidateProber> make_cuda_prober(const Grid& grid, const PatternDefaults& defaults) {
  return std::make_unique<CudaProber>(grid, defaults);
}

}  // namespace hc

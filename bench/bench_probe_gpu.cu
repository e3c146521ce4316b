// `headcal bench probe --device cuda`: the GPU grid probe (kernels/sparse/grid_probe_gpu.h) against
// one probe-mode kernel run per candidate (calib/kernel_probe.h, over the layer planner's index),
// both on every candidate of the default grid and every head of one
// layer of uniform random bf16 q, k, v; timed in the same run, with the largest differences.
#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <memory>

#include "bench/bench_probe.h"
#include "calib/cuda_buffers.h"
#include "calib/cuda_kernels.h"
#include "calib/device_attention.h"
#include "calib/kernel_probe.h"
#include "calib/prober.h"
#include "common/cuda_check.h"
#include "common/stopwatch.h"
#include "io/calibration/grid.h"
#include "kernels/attention/attention.h"
#include "kernels/sparse/grid_probe_gpu.h"
#include "kernels/sparse/layer_plan.h"

namespace hc::bench {

std::vector<ProbeBenchRow> run_probe_bench_gpu(const ProbeBenchOptions& o) {
  std::vector<ProbeBenchRow> rows;
  cudaStream_t stream = nullptr;
  for (int64_t n : o.n_list) {
    const int64_t h = o.heads, hkv = o.kv_heads, d = o.head_dim;
    DeviceBuffer<__nv_bfloat16> q(size_t(n * h * d)), k(size_t(n * hkv * d)), v(size_t(n * hkv * d));
    DeviceBuffer<__nv_bfloat16> o_dense(size_t(n * h * d));  // [N, H, d]
    DeviceBuffer<float> lse(size_t(h * n));                  // [H, N]
    // Uniform in +-sqrt(3): unit variance, so q.k / sqrt(d) has unit variance too.
    const float half_range = 1.7320508f;
    cuda::fill_random(q.ptr, n * h * d, o.seed * 3 + 0, half_range, stream);
    cuda::fill_random(k.ptr, n * hkv * d, o.seed * 3 + 1, half_range, stream);
    cuda::fill_random(v.ptr, n * hkv * d, o.seed * 3 + 2, half_range, stream);

    DeviceLayerAttention a;
    a.q = q.ptr;
    a.k = k.ptr;
    a.v = v.ptr;
    a.q_row_stride = h * d;
    a.k_row_stride = a.v_row_stride = hkv * d;
    a.dims = {n, h, hkv, d};
    a.stream = stream;
    a.o = o_dense.ptr;
    a.lse = lse.ptr;
    kernels::dense_attention_forward(attention_params(a, o_dense.ptr, lse.ptr), stream);

    std::vector<kernels::PatternConfig> configs;
    for (const GridCandidate& c : default_grid(n).candidates)
      if (c.pattern != Pattern::dense) configs.push_back(pattern_config(c));
    const kernels::EstimatorSettings settings;
    const kernels::LayerShape shape = layer_shape(a.dims);
    ProbeBenchRow row;
    row.n_tokens = n;
    row.candidates = configs.size();

    std::vector<kernels::GridProbeMeasure> swept;
    {
      kernels::GridProberGpu prober(configs, shape, settings);
      kernels::GridProbeLayer layer{a.q, a.k, a.v, a.q_row_stride, a.k_row_stride, a.v_row_stride, a.o, a.lse,
                                    static_cast<int>(n)};
      prober.probe(layer, stream);  // first launches load the kernels
      HC_CHECK_CUDA(cudaDeviceSynchronize());
      const SteadyClock::time_point t0 = SteadyClock::now();
      swept = prober.probe(layer, stream);
      row.one_pass_s = seconds_since(t0);
      const kernels::GridProberGpu::SweepTiles tiles = prober.last_tiles();
      const double dense = static_cast<double>(tiles.dense);
      row.a_shape_tiles = static_cast<double>(tiles.a_shape) / dense;
      row.vertical_slash_tiles = static_cast<double>(tiles.vertical_slash) / dense;
      row.block_sparse_tiles = static_cast<double>(tiles.block_sparse) / dense;
    }

    std::vector<std::vector<kernels::PatternConfig>> layers;
    for (const kernels::PatternConfig& c : configs) layers.emplace_back(static_cast<size_t>(h), c);
    kernels::LayerPlanner planner(layers, shape, settings, stream);
    HC_CHECK_CUDA(cudaDeviceSynchronize());
    const SteadyClock::time_point t1 = SteadyClock::now();
    planner.estimate(gpu_qk(a), stream);
    for (size_t c = 0; c < configs.size(); ++c) {
      planner.build(static_cast<int>(c), stream);
      const std::vector<kernels::GridProbeMeasure> own = kernel_probe(planner, a, layers[c], settings);
      for (int64_t x = 0; x < h; ++x) {
        const kernels::GridProbeMeasure& m = swept[c * h + x];
        if (!m.measured) {
          ++row.unmeasured;
          continue;
        }
        row.max_recall_diff = std::max(row.max_recall_diff, std::fabs(m.recall - own[x].recall));
        row.max_out_err_diff = std::max(row.max_out_err_diff, std::fabs(m.out_err - own[x].out_err));
        if (m.cost != own[x].cost) ++row.cost_mismatches;
      }
    }
    row.per_candidate_s = seconds_since(t1);
    rows.push_back(row);
  }
  return rows;
}

}  // namespace hc::bench

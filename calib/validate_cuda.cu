// The CUDA side of validate (calib/validate.h): device attention overrides for the dense run
// (the engine's dense kernel, timed with CUDA events) and the sparse run (each layer planned and
// run by the layer planner, kernels/sparse/layer_plan.h, from the layer's real q/k, timed with
// CUDA events around plan + run: the deployment number against the dense kernel's).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <vector>

#include "calib/validate.h"
#include "calib/cuda_buffers.h"
#include "calib/cuda_engine.h"
#include "calib/device_attention.h"
#include "calib/kernel_probe.h"
#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/attention/attention.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/index_gpu.h"
#include "kernels/sparse/layer_plan.h"

namespace hc {

PrefillResult validate_dense_prefill_cuda(CudaEngine& engine, const PrefillRequest& base, ValidationReport& report,
                                          const std::function<void()>& layer_done) {
  std::vector<std::unique_ptr<AttentionEvents>> timings;  // one per layer, read after the prefill
  PrefillRequest request = base;
  request.device_attention_override = [&](const DeviceAttentionInput& in, void* o, float* lse) {
    cudaStream_t stream = static_cast<cudaStream_t>(in.stream);
    const kernels::AttentionParams p = attention_params(in, o, lse);
    timings.push_back(std::make_unique<AttentionEvents>());
    HC_CHECK_CUDA(cudaEventRecord(timings.back()->begin, stream));
    kernels::dense_attention_forward(p, stream);
    HC_CHECK_CUDA(cudaEventRecord(timings.back()->end, stream));
    if (layer_done) {
      HC_CHECK_CUDA(cudaStreamSynchronize(stream));
      layer_done();
    }
  };
  PrefillResult result = engine.prefill(request);
  for (const auto& t : timings) report.dense_attention_s += t->total_s();
  return result;
}

PrefillResult validate_sparse_prefill_cuda(CudaEngine& engine, const Profile& profile, const PrefillRequest& base,
                                           ValidationReport& report, const std::function<void()>& layer_done) {
  const kernels::EstimatorSettings settings = estimator_settings(profile);
  const ModelConfig& c = engine.config();
  std::vector<std::vector<kernels::PatternConfig>> layers;  // [layers][heads]
  for (int64_t layer = 0; layer < c.n_layers; ++layer) layers.push_back(layer_configs(profile, layer));
  // One workspace for every layer of this prefill (layer_plan.h).
  kernels::LayerPlanner planner(layers, layer_shape(cuda_attention_dims(c, static_cast<int64_t>(base.tokens.size()))),
                                settings);
  std::vector<std::unique_ptr<AttentionEvents>> timings;  // plan + run per layer, read after the prefill
  PrefillRequest request = base;
  request.device_attention_override = [&](const DeviceAttentionInput& in, void* o, float* lse) {
    cudaStream_t stream = static_cast<cudaStream_t>(in.stream);
    const int64_t n = in.dims.n_tokens, h_count = in.dims.n_heads, d = in.dims.head_dim;
    const std::vector<kernels::PatternConfig>& configs = layers[static_cast<size_t>(in.layer)];
    HeadValidation* heads = report.heads.data() + static_cast<int64_t>(in.layer) * h_count;
    // Timed, as deployment runs it: the layer's plan (its whole index) and run (one attention
    // launch), between two events on the engine's stream.
    auto plan_and_run = [&]() {
      timings.push_back(std::make_unique<AttentionEvents>());
      HC_CHECK_CUDA(cudaEventRecord(timings.back()->begin, stream));
      planner.plan(in.layer, gpu_qk(in), stream);
      HC_CHECK_CUDA(cudaEventRecord(timings.back()->mark, stream));
      planner.run(attention_params(in, o, lse), stream);
      HC_CHECK_CUDA(cudaEventRecord(timings.back()->end, stream));
    };
    auto done = [&]() {
      if (!layer_done) return;
      HC_CHECK_CUDA(cudaStreamSynchronize(stream));
      layer_done();
    };
    if (planner.all_dense(in.layer)) {  // run is the dense kernel itself: nothing to compare
      plan_and_run();
      for (int64_t h = 0; h < h_count; ++h) {
        heads[h].recall = 1;
        heads[h].out_err = 0;
        heads[h].density = 1;
      }
      done();
      return;
    }

    // Untimed reference: the dense kernel on the same input (recall LSE, output error).
    DeviceBuffer<__nv_bfloat16> dense_o(size_t(n * h_count * d));  // [N, H, d]
    DeviceBuffer<float> dense_lse(size_t(h_count * n));             // [H, N]
    kernels::dense_attention_forward(attention_params(in, dense_o.ptr, dense_lse.ptr), stream);
    plan_and_run();

    // Untimed probe launch: the recall against the dense LSE of this same input, the output error
    // of the timed run's output.
    DeviceLayerAttention ref;
    static_cast<DeviceAttentionInput&>(ref) = in;
    ref.o = dense_o.ptr;
    ref.lse = dense_lse.ptr;
    const std::vector<kernels::GridProbeMeasure> m = kernel_probe(planner, ref, configs, settings, o);
    const double dense_cost = kernels::dense_cost_flops(n, d);
    for (int64_t h = 0; h < h_count; ++h) {
      heads[h].recall = m[h].recall;
      heads[h].out_err = m[h].out_err;
      heads[h].density = m[h].cost / dense_cost;
    }
    done();  // kernel_probe has waited for the layer already
  };
  PrefillResult result = engine.prefill(request);
  for (const auto& t : timings) {
    report.sparse_attention_s += t->total_s();
    report.index_build_s += t->until_mark_s();
  }
  return result;
}

}  // namespace hc

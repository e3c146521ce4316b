// Whole-prefill time to first token, dense against planned sparse attention (prefill_timing.h).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "calib/prefill_timing.h"
#include "calib/cuda_buffers.h"
#include "calib/cuda_engine.h"
#include "calib/device_attention.h"
#include "calib/validate.h"
#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/attention/attention.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/layer_plan.h"

namespace hc {

namespace {

using Clock = std::chrono::steady_clock;

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// One prefill (last position's logits only): its wall time, and per layer the attention time
// (events) and, for the sparse run, the plan's part.
struct OnePrefill {
  double ttft_s = 0;
  std::vector<double> layer_s, plan_s;
};

OnePrefill run_once(CudaEngine& engine, const std::vector<int32_t>& tokens, kernels::LayerPlanner* planner,
                    std::vector<std::unique_ptr<AttentionEvents>>& events) {
  PrefillRequest request;
  request.tokens = tokens;
  request.want_logits = true;
  request.logit_positions = {static_cast<int64_t>(tokens.size()) - 1};
  request.device_attention_override = [&](const DeviceAttentionInput& in, void* o, float* lse) {
    cudaStream_t stream = static_cast<cudaStream_t>(in.stream);
    const AttentionEvents& e = *events[static_cast<size_t>(in.layer)];
    const kernels::AttentionParams p = attention_params(in, o, lse);
    HC_CHECK_CUDA(cudaEventRecord(e.begin, stream));
    if (planner == nullptr) {
      kernels::dense_attention_forward(p, stream);
      HC_CHECK_CUDA(cudaEventRecord(e.mark, stream));
    } else {
      planner->plan(in.layer, gpu_qk(in), stream);
      HC_CHECK_CUDA(cudaEventRecord(e.mark, stream));
      planner->run(p, stream);
    }
    HC_CHECK_CUDA(cudaEventRecord(e.end, stream));
  };
  const Clock::time_point t0 = Clock::now();
  engine.prefill(request);  // returns once the logits are on the host
  OnePrefill out;
  out.ttft_s = std::chrono::duration<double>(Clock::now() - t0).count();
  for (const auto& e : events) {
    out.layer_s.push_back(e->total_s());
    out.plan_s.push_back(planner == nullptr ? 0.0 : e->until_mark_s());
  }
  return out;
}

// One more sparse prefill, untimed, whose every layer also runs the dense kernel (for the probe's
// reference LSE) and the plan's index in probe mode: the kernel pairs each head computes, and so
// the density of the profile at this N on this prompt (estimator FLOPs included), as validate
// measures it.
double measure_density(CudaEngine& engine, const std::vector<int32_t>& tokens, kernels::LayerPlanner& planner,
                       const std::vector<std::vector<kernels::PatternConfig>>& layers,
                       const kernels::EstimatorSettings& settings) {
  const ModelConfig& c = engine.config();
  const int64_t n = static_cast<int64_t>(tokens.size()), h_count = c.n_heads;
  double cost = 0, dense = 0;
  DeviceBuffer<float> dense_lse(static_cast<size_t>(h_count * n));  // [H, N]
  DeviceBuffer<double> recall(static_cast<size_t>(h_count));        // [H]
  DeviceBuffer<long long> pairs(static_cast<size_t>(h_count));      // [H]
  PrefillRequest request;
  request.tokens = tokens;
  request.want_logits = false;
  request.device_attention_override = [&](const DeviceAttentionInput& in, void* o, float* lse) {
    cudaStream_t stream = static_cast<cudaStream_t>(in.stream);
    kernels::AttentionParams p = attention_params(in, o, dense_lse.ptr);
    kernels::dense_attention_forward(p, stream);
    planner.plan(in.layer, gpu_qk(in), stream);
    planner.run(attention_params(in, o, lse), stream);  // what flows on to the next layer
    kernels::AttentionParams probe = attention_params(in, nullptr, nullptr);
    probe.probe_lse = dense_lse.ptr;
    probe.probe_recall = recall.ptr;
    probe.probe_pairs = pairs.ptr;
    planner.run(probe, stream);
    std::vector<long long> h_pairs(static_cast<size_t>(h_count));
    HC_CHECK_CUDA(cudaMemcpyAsync(h_pairs.data(), pairs.ptr, h_pairs.size() * sizeof(long long),
                                  cudaMemcpyDeviceToHost, stream));
    HC_CHECK_CUDA(cudaStreamSynchronize(stream));
    const std::vector<kernels::PatternConfig>& configs = layers[static_cast<size_t>(in.layer)];
    const int64_t d = in.dims.head_dim;  // the width the kernels run at
    for (int64_t h = 0; h < h_count; ++h) {
      cost += double(h_pairs[static_cast<size_t>(h)]) * 4.0 * double(d) +
              kernels::estimator_flops(configs[static_cast<size_t>(h)], n, d, settings);
      dense += kernels::dense_cost_flops(n, d);
    }
  };
  engine.prefill(request);
  return dense > 0 ? cost / dense : 1.0;
}

}  // namespace

PrefillTimes time_prefill_cuda(CudaEngine& engine, const Profile& profile, const std::vector<int32_t>& tokens,
                               int repeats) {
  const ModelConfig& c = engine.config();
  const std::string mismatch = profile_shape_mismatch(profile.model, c);
  if (!mismatch.empty()) throw InputError("bench prefill", "the profile does not fit the model: " + mismatch);
  if (tokens.empty()) throw InputError("bench prefill", "the prompt has no tokens");
  if (repeats < 1) throw InputError("bench prefill", "repeats must be >= 1");
  std::vector<std::vector<kernels::PatternConfig>> layers;  // [layers][heads]
  for (int64_t layer = 0; layer < c.n_layers; ++layer) layers.push_back(layer_configs(profile, layer));
  kernels::LayerPlanner planner(layers, layer_shape(cuda_attention_dims(c, static_cast<int64_t>(tokens.size()))),
                                estimator_settings(profile));
  std::vector<std::unique_ptr<AttentionEvents>> events;
  for (int64_t layer = 0; layer < c.n_layers; ++layer) events.push_back(std::make_unique<AttentionEvents>());

  run_once(engine, tokens, nullptr, events);  // warm-up: kernels loaded, cuBLAS set up
  run_once(engine, tokens, &planner, events);
  std::vector<OnePrefill> dense, sparse;
  for (int r = 0; r < repeats; ++r) {
    dense.push_back(run_once(engine, tokens, nullptr, events));
    sparse.push_back(run_once(engine, tokens, &planner, events));
  }

  PrefillTimes t;
  t.n_tokens = static_cast<int64_t>(tokens.size());
  t.repeats = repeats;
  auto summarise = [&](const std::vector<OnePrefill>& runs, double& ttft, double& attention, double* plan,
                       std::vector<double>& per_layer) {
    std::vector<double> ttfts, sums, plans;
    for (const OnePrefill& r : runs) {
      ttfts.push_back(r.ttft_s);
      double s = 0, ps = 0;
      for (size_t l = 0; l < r.layer_s.size(); ++l) {
        s += r.layer_s[l];
        ps += r.plan_s[l];
      }
      sums.push_back(s);
      plans.push_back(ps);
    }
    ttft = median(ttfts);
    attention = median(sums);
    if (plan != nullptr) *plan = median(plans);
    per_layer.assign(static_cast<size_t>(c.n_layers), 0.0);
    for (size_t l = 0; l < per_layer.size(); ++l) {
      std::vector<double> v;
      for (const OnePrefill& r : runs) v.push_back(r.layer_s[l]);
      per_layer[l] = median(v);
    }
  };
  summarise(dense, t.dense_ttft_s, t.dense_attention_s, nullptr, t.layer_dense_s);
  summarise(sparse, t.sparse_ttft_s, t.sparse_attention_s, &t.plan_s, t.layer_sparse_s);
  t.density = measure_density(engine, tokens, planner, layers, estimator_settings(profile));
  return t;
}

}  // namespace hc

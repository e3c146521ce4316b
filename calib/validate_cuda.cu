// The CUDA side of validate (calib/validate.h): device attention overrides for the dense run
// (the engine's dense kernel, timed with CUDA events) and the sparse run (each head on its
// profiled sparse kernel, the layer's index built on the GPU from the layer's real q/k).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <map>
#include <memory>
#include <tuple>
#include <vector>

#include "calib/validate.h"
#include "calib/cuda_buffers.h"
#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/attention/attention.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/index_gpu.h"

namespace hc {

namespace {

// Owns a pair of events; elapsed() waits for the second.
struct EventPair {
  cudaEvent_t begin = nullptr, end = nullptr;
  EventPair() {
    HC_CHECK_CUDA(cudaEventCreate(&begin));
    HC_CHECK_CUDA(cudaEventCreate(&end));
  }
  ~EventPair() {
    cudaEventDestroy(begin);
    cudaEventDestroy(end);
  }
  EventPair(const EventPair&) = delete;
  EventPair& operator=(const EventPair&) = delete;
  double elapsed_s() const {
    HC_CHECK_CUDA(cudaEventSynchronize(end));
    float ms = 0.f;
    HC_CHECK_CUDA(cudaEventElapsedTime(&ms, begin, end));
    return ms * 1e-3;
  }
};

kernels::AttentionParams base_params(const DeviceAttentionInput& in) {
  kernels::AttentionParams p;
  p.q = in.q;
  p.k = in.k;
  p.v = in.v;
  p.n_tokens = static_cast<int>(in.dims.n_tokens);
  p.n_heads = static_cast<int>(in.dims.n_heads);
  p.n_kv_heads = static_cast<int>(in.dims.n_kv_heads);
  p.head_dim = static_cast<int>(in.dims.head_dim);
  p.dtype = kernels::AttnDType::kBF16;
  p.q_row_stride = in.q_row_stride;
  p.k_row_stride = in.k_row_stride;
  p.v_row_stride = in.v_row_stride;
  return p;
}

// The layer's index, every head on its own config: one GPU build per distinct config (the
// vertical-slash estimate shared by all vertical-slash heads), then the heads' slices stacked on
// the device.
kernels::DeviceSparseIndex build_layer_index_gpu(const DeviceAttentionInput& in,
                                           const std::vector<kernels::PatternConfig>& configs,
                                           const kernels::EstimatorSettings& settings, cudaStream_t stream) {
  const int64_t n = in.dims.n_tokens, h_count = in.dims.n_heads;
  kernels::GpuQK qk;
  qk.q = in.q;
  qk.k = in.k;
  qk.dtype = kernels::AttnDType::kBF16;
  qk.n_tokens = static_cast<int>(n);
  qk.n_heads = static_cast<int>(h_count);
  qk.n_kv_heads = static_cast<int>(in.dims.n_kv_heads);
  qk.head_dim = in.dims.head_dim;
  qk.q_row_stride = in.q_row_stride;
  qk.k_row_stride = in.k_row_stride;

  bool need_vs = false;
  for (const kernels::PatternConfig& c : configs) need_vs |= c.pattern == kernels::Pattern::vertical_slash;
  std::unique_ptr<DeviceBuffer<float>> col_score, diag_score;  // [H, N] each
  if (need_vs) {
    col_score = std::make_unique<DeviceBuffer<float>>(size_t(h_count * n));
    diag_score = std::make_unique<DeviceBuffer<float>>(size_t(h_count * n));
    kernels::vertical_slash_scores_gpu(qk, settings.last_q, col_score->ptr, diag_score->ptr, stream);
  }

  // Static patterns (dense, a_shape) are the same on every head: built for one head.
  std::map<std::tuple<int, int, int>, kernels::DeviceSparseIndex> built;  // config -> its index
  for (const kernels::PatternConfig& c : configs) {
    const auto key = std::make_tuple(static_cast<int>(c.pattern), c.p1, c.p2);
    if (built.count(key)) continue;
    kernels::DeviceSparseIndex index;
    switch (c.pattern) {
      case kernels::Pattern::dense:
        index = kernels::build_dense_index_gpu(n, 1, stream);
        break;
      case kernels::Pattern::a_shape:
        index = kernels::build_a_shape_index_gpu(n, 1, c.p1, c.p2, stream);
        break;
      case kernels::Pattern::vertical_slash:
        index = kernels::vertical_slash_index_from_scores_gpu(col_score->ptr, diag_score->ptr, h_count, n, c.p1, c.p2,
                                                              settings.v_sink, settings.s_local, stream);
        break;
      case kernels::Pattern::block_sparse:
        index = kernels::build_block_sparse_index_gpu(qk, c.p1, stream);
        break;
    }
    built.emplace(key, std::move(index));
  }
  std::vector<const kernels::DeviceSparseIndex*> sources;
  std::vector<int64_t> source_heads;
  for (int64_t h = 0; h < h_count; ++h) {
    const kernels::PatternConfig& c = configs[static_cast<size_t>(h)];
    const kernels::DeviceSparseIndex& whole = built.at(std::make_tuple(static_cast<int>(c.pattern), c.p1, c.p2));
    sources.push_back(&whole);
    source_heads.push_back(whole.n_heads() == 1 ? 0 : h);
  }
  return kernels::stack_heads_gpu(sources, source_heads, stream);
}

}  // namespace

PrefillResult validate_dense_prefill_cuda(CudaEngine& engine, const PrefillRequest& base, ValidationReport& report) {
  std::vector<std::unique_ptr<EventPair>> timings;  // one per layer, read after the prefill
  PrefillRequest request = base;
  request.device_attention_override = [&](const DeviceAttentionInput& in, void* o, float* lse) {
    cudaStream_t stream = static_cast<cudaStream_t>(in.stream);
    kernels::AttentionParams p = base_params(in);
    p.o = o;
    p.lse = lse;
    timings.push_back(std::make_unique<EventPair>());
    HC_CHECK_CUDA(cudaEventRecord(timings.back()->begin, stream));
    kernels::dense_attention_forward(p, stream);
    HC_CHECK_CUDA(cudaEventRecord(timings.back()->end, stream));
  };
  PrefillResult result = engine.prefill(request);
  for (const auto& t : timings) report.dense_attention_s += t->elapsed_s();
  return result;
}

PrefillResult validate_sparse_prefill_cuda(CudaEngine& engine, const Profile& profile, const PrefillRequest& base,
                                           ValidationReport& report) {
  const kernels::EstimatorSettings settings = estimator_settings(profile);
  PrefillRequest request = base;
  request.device_attention_override = [&](const DeviceAttentionInput& in, void* o, float* lse) {
    using Clock = std::chrono::steady_clock;
    cudaStream_t stream = static_cast<cudaStream_t>(in.stream);
    const int64_t n = in.dims.n_tokens, h_count = in.dims.n_heads, d = in.dims.head_dim;
    const std::vector<kernels::PatternConfig> configs = layer_configs(profile, in.layer);
    HeadValidation* heads = report.heads.data() + static_cast<int64_t>(in.layer) * h_count;
    bool every_head_dense = true;
    for (const kernels::PatternConfig& c : configs) every_head_dense &= c.pattern == kernels::Pattern::dense;

    kernels::AttentionParams p = base_params(in);
    if (every_head_dense) {
      EventPair t;
      p.o = o;
      p.lse = lse;
      HC_CHECK_CUDA(cudaEventRecord(t.begin, stream));
      kernels::dense_attention_forward(p, stream);
      HC_CHECK_CUDA(cudaEventRecord(t.end, stream));
      report.sparse_attention_s += t.elapsed_s();
      for (int64_t h = 0; h < h_count; ++h) {
        heads[h].recall = 1;
        heads[h].out_err = 0;
        heads[h].density = 1;
      }
      return;
    }

    // Untimed reference: the dense kernel on the same input (recall LSE, output error).
    DeviceBuffer<__nv_bfloat16> dense_o(size_t(n * h_count * d));  // [N, H, d]
    DeviceBuffer<float> dense_lse(size_t(h_count * n));             // [H, N]
    p.o = dense_o.ptr;
    p.lse = dense_lse.ptr;
    kernels::dense_attention_forward(p, stream);
    HC_CHECK_CUDA(cudaStreamSynchronize(stream));

    // Timed: index build (GPU builders and the stacking of the heads' slices, which synchronises
    // the stream, so host time is the measure) + the sparse kernel without probe.
    const Clock::time_point t0 = Clock::now();
    const kernels::DeviceSparseIndex index = build_layer_index_gpu(in, configs, settings, stream);
    const double index_s = std::chrono::duration<double>(Clock::now() - t0).count();
    EventPair t;
    p.o = o;
    p.lse = lse;
    HC_CHECK_CUDA(cudaEventRecord(t.begin, stream));
    kernels::sparse_attention_forward(p, index.view(), stream);
    HC_CHECK_CUDA(cudaEventRecord(t.end, stream));
    report.index_build_s += index_s;
    report.sparse_attention_s += index_s + t.elapsed_s();

    // Untimed probe launch: the recall against the dense LSE of this same input.
    DeviceBuffer<double> recall{size_t(h_count)}, diff_sq{size_t(h_count)}, ref_sq{size_t(h_count)};  // [H]
    DeviceBuffer<long long> pairs{size_t(h_count)};                                                   // [H]
    p.o = nullptr;
    p.lse = nullptr;
    p.probe_lse = dense_lse.ptr;
    p.probe_recall = recall.ptr;
    p.probe_pairs = pairs.ptr;
    kernels::sparse_attention_forward(p, index.view(), stream);
    head_squared_errors_gpu(dense_o.ptr, o, n, h_count, d, diff_sq.ptr, ref_sq.ptr, stream);
    std::vector<double> h_recall(h_count), h_diff(h_count), h_ref(h_count);
    std::vector<long long> h_pairs(h_count);
    HC_CHECK_CUDA(cudaMemcpyAsync(h_recall.data(), recall.ptr, h_count * sizeof(double), cudaMemcpyDeviceToHost, stream));
    HC_CHECK_CUDA(cudaMemcpyAsync(h_pairs.data(), pairs.ptr, h_count * sizeof(long long), cudaMemcpyDeviceToHost, stream));
    HC_CHECK_CUDA(cudaMemcpyAsync(h_diff.data(), diff_sq.ptr, h_count * sizeof(double), cudaMemcpyDeviceToHost, stream));
    HC_CHECK_CUDA(cudaMemcpyAsync(h_ref.data(), ref_sq.ptr, h_count * sizeof(double), cudaMemcpyDeviceToHost, stream));
    HC_CHECK_CUDA(cudaStreamSynchronize(stream));  // the buffers above are freed on return

    const double dense_cost = kernels::dense_cost_flops(n, d);
    for (int64_t h = 0; h < h_count; ++h) {
      const kernels::PatternConfig& c = configs[static_cast<size_t>(h)];
      heads[h].recall = h_recall[h];
      heads[h].out_err = h_ref[h] > 0 ? std::sqrt(h_diff[h] / h_ref[h]) : (h_diff[h] > 0 ? INFINITY : 0.0);
      heads[h].density =
          (double(h_pairs[h]) * 4.0 * double(d) + kernels::estimator_flops(c, n, d, settings)) / dense_cost;
    }
  };
  return engine.prefill(request);
}

}  // namespace hc

#include "calib/kernel_probe.h"

#include <cuda_bf16.h>

#include "calib/cuda_buffers.h"
#include "calib/device_attention.h"
#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/sparse/cost.h"

namespace hc {

std::vector<kernels::GridProbeMeasure> kernel_probe(kernels::LayerPlanner& planner, const DeviceLayerAttention& a,
                                                    const std::vector<kernels::PatternConfig>& per_head,
                                                    const kernels::EstimatorSettings& settings, const void* sparse_o) {
  const int64_t n = a.dims.n_tokens, h_count = a.dims.n_heads, d = a.dims.head_dim;
  if (static_cast<int64_t>(per_head.size()) != h_count) throw Error("kernel_probe: one config per head");
  cudaStream_t stream = static_cast<cudaStream_t>(a.stream);
  DeviceBuffer<__nv_bfloat16> own_o(sparse_o == nullptr ? size_t(n * h_count * d) : 0);  // [N, H, d]
  DeviceBuffer<double> recall(h_count), diff_sq(h_count), ref_sq(h_count);              // [H] each
  DeviceBuffer<long long> pairs(h_count);                                               // [H]
  kernels::AttentionParams p = attention_params(a, sparse_o == nullptr ? own_o.ptr : nullptr, nullptr);
  p.probe_lse = a.lse;
  p.probe_recall = recall.ptr;
  p.probe_pairs = pairs.ptr;
  planner.run(p, stream);
  kernels::head_squared_errors_gpu(a.o, sparse_o == nullptr ? own_o.ptr : sparse_o, n, h_count, d, diff_sq.ptr, ref_sq.ptr,
                          stream);
  std::vector<double> h_recall(h_count), h_diff(h_count), h_ref(h_count);
  std::vector<long long> h_pairs(h_count);
  HC_CHECK_CUDA(cudaMemcpyAsync(h_recall.data(), recall.ptr, h_count * sizeof(double), cudaMemcpyDeviceToHost, stream));
  HC_CHECK_CUDA(cudaMemcpyAsync(h_pairs.data(), pairs.ptr, h_count * sizeof(long long), cudaMemcpyDeviceToHost, stream));
  HC_CHECK_CUDA(cudaMemcpyAsync(h_diff.data(), diff_sq.ptr, h_count * sizeof(double), cudaMemcpyDeviceToHost, stream));
  HC_CHECK_CUDA(cudaMemcpyAsync(h_ref.data(), ref_sq.ptr, h_count * sizeof(double), cudaMemcpyDeviceToHost, stream));
  HC_CHECK_CUDA(cudaStreamSynchronize(stream));  // the buffers above are freed on return
  std::vector<kernels::GridProbeMeasure> out(static_cast<size_t>(h_count));
  for (int64_t h = 0; h < h_count; ++h) {
    out[h].cost = double(h_pairs[h]) * 4.0 * double(d) + kernels::estimator_flops(per_head[h], n, d, settings);
    out[h].recall = h_recall[h];
    out[h].out_err = kernels::output_error(h_diff[h], h_ref[h]);
    out[h].measured = true;
  }
  return out;
}

}  // namespace hc

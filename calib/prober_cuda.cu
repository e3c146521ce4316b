// CUDA candidate prober: every grid candidate runs on all heads of a layer in one probe-mode
// launch of the index-driven kernel, on the engine's bf16 device tensors.
#include <cuda_bf16.h>

#include <cmath>
#include <memory>
#include <vector>

#include "calib/prober.h"
#include "calib/cuda_buffers.h"
#include "common/cuda_check.h"
#include "kernels/attention/attention.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/index_gpu.h"

namespace hc {

namespace {

kernels::PatternConfig to_config(const GridCandidate& c) {
  return {static_cast<kernels::Pattern>(static_cast<int>(c.pattern)), c.p1, c.p2};
}

class CudaProber : public CandidateProber {
 public:
  CudaProber(Grid grid, PatternDefaults defaults) : grid_(std::move(grid)) {
    settings_.last_q = static_cast<int>(defaults.last_q);
    settings_.v_sink = static_cast<int>(defaults.v_sink);
    settings_.s_local = static_cast<int>(defaults.s_local);
  }

  size_t device_bytes(const ModelConfig& config, int64_t n_tokens) const override {
    const size_t o_bytes = size_t(n_tokens) * config.n_heads * config.head_dim * 2;  // bf16 [N, H, d]
    const size_t scores = 2 * size_t(config.n_heads) * n_tokens * 4;                  // fp32 [H, N] x2
    // One build's temporaries: the estimator's partial sums (16 bytes per head and token), the
    // top-k lists, block-sparse's kept blocks ([H, N/64, k] ints, at most N/1024 bytes per head
    // and token). 256 bytes per head and token bound them up to 256K tokens.
    const size_t build_scratch = size_t(config.n_heads) * 64 * n_tokens * 4;
    // An index holds at most a few ranges and v columns per slot: bound it by a dense-sized list.
    const size_t index_bytes = size_t(config.n_heads) * ((n_tokens + 63) / 64) * 4 * 8;
    return o_bytes + scores + build_scratch + index_bytes + (64u << 20);
  }

  std::vector<CandidateRow> probe(const ProbeLayer& layer) override {
    if (!layer.device) throw Error("CUDA prober needs the CUDA backend's device tensors");
    const DeviceLayerAttention& a = *layer.device;
    const kernels::AttentionDims& dims = a.dims;
    const int64_t n = dims.n_tokens, h_count = dims.n_heads, d = dims.head_dim;
    cudaStream_t stream = static_cast<cudaStream_t>(a.stream);

    DeviceBuffer<__nv_bfloat16> o_sparse(size_t(n * h_count * d));  // [N, H, d]
    DeviceBuffer<double> recall(h_count), diff_sq(h_count), ref_sq(h_count);  // [H] each
    DeviceBuffer<long long> pairs(h_count);                                   // [H]

    kernels::GpuQK qk;
    qk.q = a.q;
    qk.k = a.k;
    qk.dtype = kernels::AttnDType::kBF16;
    qk.n_tokens = static_cast<int>(n);
    qk.n_heads = static_cast<int>(h_count);
    qk.n_kv_heads = static_cast<int>(dims.n_kv_heads);
    qk.head_dim = d;
    qk.q_row_stride = a.q_row_stride;
    qk.k_row_stride = a.k_row_stride;

    // The vertical-slash estimate is shared by all vertical-slash candidates of the layer.
    bool need_vs = false;
    for (const auto& c : grid_.candidates) need_vs |= c.pattern == PatternKind::vertical_slash;
    std::unique_ptr<DeviceBuffer<float>> col_score, diag_score;  // [H, N] each
    if (need_vs) {
      col_score = std::make_unique<DeviceBuffer<float>>(size_t(h_count * n));
      diag_score = std::make_unique<DeviceBuffer<float>>(size_t(h_count * n));
      kernels::vertical_slash_scores_gpu(qk, settings_.last_q, col_score->ptr, diag_score->ptr, stream);
    }

    std::vector<CandidateRow> rows;
    rows.reserve(grid_.candidates.size() * h_count);
    std::vector<double> h_recall(h_count), h_diff(h_count), h_ref(h_count);
    std::vector<long long> h_pairs(h_count);
    for (const GridCandidate& c : grid_.candidates) {
      const kernels::PatternConfig cfg = to_config(c);
      kernels::DeviceSparseIndex index;
      switch (cfg.pattern) {
        case kernels::Pattern::a_shape:
          index = kernels::build_a_shape_index_gpu(n, h_count, cfg.p1, cfg.p2, stream);
          break;
        case kernels::Pattern::vertical_slash:
          index = kernels::vertical_slash_index_from_scores_gpu(col_score->ptr, diag_score->ptr, h_count, n,
                                                                cfg.p1, cfg.p2, settings_.v_sink,
                                                                settings_.s_local, stream);
          break;
        case kernels::Pattern::block_sparse:
          index = kernels::build_block_sparse_index_gpu(qk, cfg.p1, stream);
          break;
        case kernels::Pattern::dense:
          index = kernels::build_dense_index_gpu(n, h_count, stream);
          break;
      }
      kernels::AttentionParams p;
      p.q = a.q;
      p.k = a.k;
      p.v = a.v;
      p.o = o_sparse.ptr;
      p.n_tokens = static_cast<int>(n);
      p.n_heads = static_cast<int>(h_count);
      p.n_kv_heads = static_cast<int>(dims.n_kv_heads);
      p.head_dim = static_cast<int>(d);
      p.dtype = kernels::AttnDType::kBF16;
      p.q_row_stride = a.q_row_stride;
      p.k_row_stride = a.k_row_stride;
      p.v_row_stride = a.v_row_stride;
      p.probe_lse = a.lse;
      p.probe_recall = recall.ptr;
      p.probe_pairs = pairs.ptr;
      kernels::sparse_attention_forward(p, index.view(), stream);

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
        row.out_err = h_ref[h] > 0 ? std::sqrt(h_diff[h] / h_ref[h]) : (h_diff[h] > 0 ? INFINITY : 0.0);
        rows.push_back(row);
      }
    }
    return rows;
  }

 private:
  Grid grid_;
  kernels::EstimatorSettings settings_;
};

}  // namespace

std::unique_ptr<CandidateProber> make_cuda_prober(const Grid& grid, const PatternDefaults& defaults) {
  return std::make_unique<CudaProber>(grid, defaults);
}

}  // namespace hc

#include "calib/cpu_engine.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <exception>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "calib/parallel_chunks.h"
#include "calib/rope.h"
#include "common/error.h"

namespace hc {

namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using ConstMatMap = Eigen::Map<const RowMat>;
using StridedMatMap = Eigen::Map<RowMat, 0, Eigen::OuterStride<>>;

// y [n, out] = x [n, in] * w [out, in]^T (+ bias [out]). Threads split the output features, so
// each streams its own slice of the weight matrix.
void linear(int n_threads, const float* x, int64_t n, int64_t in, const float* w, int64_t out,
            const std::vector<float>& bias, float* y) {
  ConstMatMap X(x, n, in);
  // 16 floats = one cache line / two AVX registers: slices never share a line of y's rows.
  parallel_chunks(n_threads, out, 16, [&](int64_t c0, int64_t c1) {
    ConstMatMap W(w + c0 * in, c1 - c0, in);
    StridedMatMap Y(y + c0, n, c1 - c0, Eigen::OuterStride<>(out));
    Y.noalias() = X * W.transpose();
    if (!bias.empty())
      for (int64_t r = 0; r < n; ++r)
        for (int64_t c = c0; c < c1; ++c) y[r * out + c] += bias[static_cast<size_t>(c)];
  });
}

// out [n, dim] = x / sqrt(mean(x^2) + eps) * weight, as Hugging Face's LlamaRMSNorm in float32
// (the sum of squares is taken in double; it is the one reduction over `dim` here).
void rms_norm(const float* x, int64_t n, int64_t dim, const std::vector<float>& weight, double eps, float* out) {
  for (int64_t r = 0; r < n; ++r) {
    const float* xr = x + r * dim;
    double ss = 0.0;
    for (int64_t c = 0; c < dim; ++c) ss += static_cast<double>(xr[c]) * xr[c];
    const float inv = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(dim) + eps));
    float* yr = out + r * dim;
    for (int64_t c = 0; c < dim; ++c) yr[c] = weight[static_cast<size_t>(c)] * (xr[c] * inv);
  }
}

}  // namespace

CpuEngine::CpuEngine(LlamaWeights weights, int n_threads)
    : weights_(std::move(weights)),
      n_threads_(n_threads > 0 ? n_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))) {}

PrefillResult CpuEngine::prefill(const PrefillRequest& request) {
  const ModelConfig& c = weights_.config;
  const ResolvedRequest resolved = resolve_request(c, request);
  if (request.device_attention_override)
    throw InputError("prefill: the CPU engine cannot run a device_attention_override (CUDA backend only); "
                     "use attention_override");
  const int64_t N = static_cast<int64_t>(request.tokens.size());
  const int64_t D = c.hidden, H = c.n_heads, Hkv = c.n_kv_heads, d = c.head_dim, F = c.intermediate;
  const int64_t q_dim = H * d, kv_dim = Hkv * d;
  const AttentionDims dims{N, H, Hkv, d};
  const RopeTable rope = rope_table(c, N);

  std::vector<float> x(static_cast<size_t>(N * D));  // [N, D] residual stream
  for (int64_t t = 0; t < N; ++t) {
    const float* row = weights_.embed.data() + static_cast<int64_t>(request.tokens[static_cast<size_t>(t)]) * D;
    std::copy(row, row + D, x.begin() + t * D);
  }
  std::vector<float> h(static_cast<size_t>(N * D));          // [N, D] normed input of a block
  std::vector<float> q(static_cast<size_t>(N * q_dim));      // [N, H, d]
  std::vector<float> k(static_cast<size_t>(N * kv_dim));     // [N, Hkv, d]
  std::vector<float> v(static_cast<size_t>(N * kv_dim));     // [N, Hkv, d]
  std::vector<float> attn(static_cast<size_t>(N * q_dim));   // [N, H, d]
  std::vector<float> lse(static_cast<size_t>(H * N));        // [H, N]
  std::vector<float> block_out(static_cast<size_t>(N * D));  // [N, D] o_proj / down_proj output
  std::vector<float> gate(static_cast<size_t>(N * F));       // [N, F]
  std::vector<float> up(static_cast<size_t>(N * F));         // [N, F]

  for (int layer = 0; layer < resolved.layers_to_run; ++layer) {
    const LlamaLayerWeights& L = weights_.layers[static_cast<size_t>(layer)];
    rms_norm(x.data(), N, D, L.attn_norm, c.rms_eps, h.data());
    linear(n_threads_, h.data(), N, D, L.wq.data(), q_dim, L.bq, q.data());
    linear(n_threads_, h.data(), N, D, L.wk.data(), kv_dim, L.bk, k.data());
    linear(n_threads_, h.data(), N, D, L.wv.data(), kv_dim, L.bv, v.data());
    if (c.qk_norm) {  // each head of q [N * H, d] and k [N * Hkv, d] normed in place
      rms_norm(q.data(), N * H, d, L.q_norm, c.rms_eps, q.data());
      rms_norm(k.data(), N * Hkv, d, L.k_norm, c.rms_eps, k.data());
    }
    const auto apply_rope = c.rope_interleaved ? apply_rope_interleaved : apply_rope_rotate_half;
    apply_rope(rope, q.data(), N, H, d);
    apply_rope(rope, k.data(), N, Hkv, d);
    if (request.attention_override)
      request.attention_override(LayerAttentionInput{layer, q.data(), k.data(), v.data(), dims}, attn.data(),
                                 lse.data());
    else
      kernels::dense_attention_ref(dims, q.data(), k.data(), v.data(), attn.data(), lse.data(), n_threads_);
    if (request.on_layer && layer >= resolved.first_layer && layer <= resolved.last_layer)
      request.on_layer(LayerAttention{layer, q.data(), k.data(), v.data(), attn.data(), lse.data(), dims});
    linear(n_threads_, attn.data(), N, q_dim, L.wo.data(), D, {}, block_out.data());
    if (c.post_norms) rms_norm(block_out.data(), N, D, L.post_attn_norm, c.rms_eps, block_out.data());
    for (size_t i = 0; i < x.size(); ++i) x[i] += block_out[i];

    rms_norm(x.data(), N, D, L.mlp_norm, c.rms_eps, h.data());
    linear(n_threads_, h.data(), N, D, L.w_gate.data(), F, {}, gate.data());
    linear(n_threads_, h.data(), N, D, L.w_up.data(), F, {}, up.data());
    for (size_t i = 0; i < gate.size(); ++i) {
      const float g = gate[i];
      gate[i] = g / (1.0f + std::exp(-g)) * up[i];  // silu(gate) * up
    }
    linear(n_threads_, gate.data(), N, F, L.w_down.data(), D, {}, block_out.data());
    if (c.post_norms) rms_norm(block_out.data(), N, D, L.post_mlp_norm, c.rms_eps, block_out.data());
    for (size_t i = 0; i < x.size(); ++i) x[i] += block_out[i];
  }

  PrefillResult result;
  if (request.want_final_hidden) {
    result.final_hidden.resize(static_cast<size_t>(N * D));  // [N, D]
    rms_norm(x.data(), N, D, weights_.final_norm, c.rms_eps, result.final_hidden.data());
  }
  if (request.want_logits) {
    // Only the asked rows go through the final norm and the [vocab, D] output GEMM.
    const int64_t P = static_cast<int64_t>(resolved.logit_positions.size());
    std::vector<float> picked(static_cast<size_t>(P * D));  // [P, D]
    for (int64_t r = 0; r < P; ++r) {
      const int64_t pos = resolved.logit_positions[static_cast<size_t>(r)];
      rms_norm(x.data() + pos * D, 1, D, weights_.final_norm, c.rms_eps, picked.data() + r * D);
    }
    result.logits.resize(static_cast<size_t>(P * c.vocab));  // [P, vocab]
    output_logits(picked.data(), P, result.logits.data());
    result.logit_positions = resolved.logit_positions;
  }
  return result;
}

void CpuEngine::output_logits(const float* normed, int64_t rows, float* logits) const {
  const ModelConfig& c = weights_.config;
  linear(n_threads_, normed, rows, c.hidden, weights_.output_matrix().data(), c.vocab, {}, logits);
}

NextTokenComparison CpuEngine::compare_next_token(const float* hidden_a, const float* hidden_b, int64_t positions,
                                                  int64_t chunk_rows) {
  HC_ASSERT(positions >= 0, "a position count is not negative");
  const int64_t D = weights_.config.hidden, vocab = weights_.config.vocab;
  NextTokenComparison out;
  out.resize(static_cast<size_t>(positions));
  const int64_t rows_max = std::min(positions, next_token_chunk_rows(chunk_rows));
  std::vector<float> logits_a(static_cast<size_t>(rows_max * vocab));  // [chunk, vocab]
  std::vector<float> logits_b(static_cast<size_t>(rows_max * vocab));  // [chunk, vocab]
  for (int64_t p0 = 0; p0 < positions; p0 += rows_max) {
    const int64_t rows = std::min(rows_max, positions - p0);
    output_logits(hidden_a + p0 * D, rows, logits_a.data());
    output_logits(hidden_b + p0 * D, rows, logits_b.data());
    compare_logit_rows(logits_a.data(), logits_b.data(), rows, vocab, out.kl.data() + p0, out.agree.data() + p0,
                       out.confidence.data() + p0, n_threads_);
  }
  summarise_next_token(out);
  return out;
}

std::unique_ptr<Engine> make_cpu_engine(const ModelFile& model, int n_threads) {
  return std::make_unique<CpuEngine>(load_llama_weights(model), n_threads);
}

}  // namespace hc

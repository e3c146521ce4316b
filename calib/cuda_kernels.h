#pragma once
// Element-wise and row kernels of the CUDA prefill engine (calib/cuda_kernels.cu, cuda_random.cu).
// Activations: residual stream fp32, everything a GEMM reads bf16. All launchers are asynchronous
// on `stream` and check the launch.
#if defined(HEADCAL_HAVE_CUDA)
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace hc::cuda {

using bf16 = __nv_bfloat16;

// x[t, :] = embed[tokens[t], :]   tokens [n], embed [vocab, hidden] bf16, x [n, hidden] fp32.
void embedding(const int32_t* tokens, const bf16* embed, float* x, int64_t n, int64_t hidden, cudaStream_t stream);

// out[r, :] = x[row(r), :] * rsqrt(mean(x[row(r)]^2) + eps) * weight, row(r) = rows ? rows[r] : r.
// x [*, hidden] fp32, weight [hidden] fp32, out [n_rows, hidden].
void rmsnorm(const float* x, const int64_t* rows, const float* weight, bf16* out, int64_t n_rows, int64_t hidden,
             float eps, cudaStream_t stream);
void rmsnorm(const float* x, const int64_t* rows, const float* weight, float* out, int64_t n_rows, int64_t hidden,
             float eps, cudaStream_t stream);

// In place on x [n, heads, head_dim] bf16 (row stride `row_stride` elements): adds `bias`
// [heads * head_dim] when non-null (only with rotary_dim == head_dim), then RoPE over the first
// rotary_dim dimensions of each head, rotate-half or (interleaved) pairs (2t, 2t + 1), with cos/sin
// [n, rotary_dim/2] fp32; the rest pass.
void bias_rope(bf16* x, const float* bias, const float* cos, const float* sin, int64_t n, int64_t heads,
               int64_t head_dim, int64_t rotary_dim, bool interleaved, int64_t row_stride, cudaStream_t stream);

// x[r, :] += RMSNorm(y[r, :]) * weight for r < n_rows: y [n_rows, hidden] bf16, weight [hidden]
// fp32, x [n_rows, hidden] fp32 (the residual stream). GLM-4's norms of a block's output.
void rmsnorm_add(const bf16* y, const float* weight, float* x, int64_t n_rows, int64_t hidden, float eps,
                 cudaStream_t stream);

// In place on x [n_rows, head_dim] bf16 (each row one head of one token, packed): x = x *
// rsqrt(mean(x^2) + eps) * weight, weight [head_dim] fp32, computed in fp32. Qwen3's q/k norm.
void head_rmsnorm(bf16* x, const float* weight, int64_t n_rows, int64_t head_dim, float eps, cudaStream_t stream);

// x [n, width] bf16 += bias [width].
void add_bias(bf16* x, const float* bias, int64_t n, int64_t width, cudaStream_t stream);

// Per-head features moved to a different head width: dst [outer, heads, dst_d, inner] =
// scale * src [outer, heads, src_d, inner] over the first min(src_d, dst_d) features, zero beyond.
// Pads the weights of a head_dim the attention kernels are not built for (Phi-3's 96 runs at 128)
// and takes the padding off again for host copies.
void repack_heads(const bf16* src, bf16* dst, int64_t outer, int64_t heads, int64_t src_d, int64_t dst_d,
                  int64_t inner, float scale, cudaStream_t stream);
void repack_heads(const float* src, float* dst, int64_t outer, int64_t heads, int64_t src_d, int64_t dst_d,
                  int64_t inner, float scale, cudaStream_t stream);

// gate[i] = silu(gate[i]) * up[i], [n] bf16, computed in fp32.
void silu_mul(bf16* gate, const bf16* up, int64_t n, cudaStream_t stream);

// dst[i] = src[i] rounded to bf16 (nearest even, as every bf16 store of the engine), [n].
void to_bf16(const float* src, bf16* dst, int64_t n, cudaStream_t stream);

// Per row r of logits_a, logits_b [rows, vocab] fp32: kl[r] = KL(softmax(a_r) || softmax(b_r)) and
// agree[r] = (argmax a_r == argmax b_r), ties to the lowest id, confidence[r] = softmax(a_r) at its
// argmax; compare_logit_rows' formula (calib/next_token.h) with the exponentials and sums in double.
// kl, agree, confidence [rows].
void next_token_rows(const float* logits_a, const float* logits_b, int64_t rows, int64_t vocab, double* kl,
                     uint8_t* agree, float* confidence, cudaStream_t stream);

// Deterministic random weights (calib/random_model.h's generator), element i of the stream at dst[i].
void fill_random(bf16* dst, int64_t n, uint64_t stream_id, float half_range, cudaStream_t stream);
void fill_random(float* dst, int64_t n, uint64_t stream_id, float half_range, cudaStream_t stream);
void fill_constant(bf16* dst, int64_t n, float value, cudaStream_t stream);
void fill_constant(float* dst, int64_t n, float value, cudaStream_t stream);

}  // namespace hc::cuda
#endif

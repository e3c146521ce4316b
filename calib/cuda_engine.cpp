#include "calib/cuda_engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "common/error.h"

#if defined(HEADCAL_HAVE_CUDA)
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "calib/cuda_kernels.h"
#include "calib/device_attention.h"
#include "calib/random_model.h"
#include "calib/rope.h"
#include "common/cuda_check.h"
#include "kernels/attention/attention.h"
#endif

namespace hc {

namespace {

// Rows per logits / final-hidden chunk: [256, vocab] fp32 is 131 MB at Llama-3's 128256 vocab.
constexpr int64_t kOutputChunkRows = 256;
// cuBLAS workspace, cuBLAS/CUDA internal allocations and allocator rounding, measured loosely
// (cuBLAS asks ~32 MiB of workspace on Hopper); generous so that the check errs on the safe side.
constexpr size_t kHeadroomBytes = size_t(512) << 20;

[[maybe_unused]] std::string gib(size_t bytes) {  // unused when built without CUDA
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", static_cast<double>(bytes) / double(size_t(1) << 30));
  return buf;
}

// Whether a layer's attention output can live in the normed-x buffer: it is free from the q/k/v
// projections to the MLP's norm, which is exactly the output's life (hooks included), when it is
// no wider than hidden and o_proj does not write that buffer itself (GLM-4's post-norms do).
// At 1M tokens on Llama-3-8B's shape that is 8 GiB.
bool attention_output_in_normed(const ModelConfig& c, int64_t q_out) { return !c.post_norms && q_out <= c.hidden; }

}  // namespace

CudaMemoryEstimate estimate_cuda_memory(const ModelConfig& c, int64_t n_tokens, const CudaEngineOptions& options) {
  const size_t bf = 2, fp = 4;
  const size_t n = static_cast<size_t>(std::max<int64_t>(n_tokens, 0));
  const size_t hidden = static_cast<size_t>(c.hidden), inter = static_cast<size_t>(c.intermediate);
  const kernels::AttentionDims dims = cuda_attention_dims(c, n_tokens);
  const size_t q_out = static_cast<size_t>(dims.n_heads * dims.head_dim);
  const size_t kv_out = static_cast<size_t>(dims.n_kv_heads * dims.head_dim);
  const size_t vocab = static_cast<size_t>(c.vocab);
  CudaMemoryEstimate e;
  const size_t per_layer = bf * (q_out * hidden + 2 * kv_out * hidden + hidden * q_out + 3 * inter * hidden) +
                           fp * 2 * hidden + (c.qkv_bias ? fp * (q_out + 2 * kv_out) : 0) +
                           (c.qk_norm ? fp * 2 * static_cast<size_t>(c.head_dim) : 0) +
                           (c.post_norms ? fp * 2 * hidden : 0);
  e.weights = bf * vocab * hidden * (c.tie_embeddings ? 1 : 2) + fp * hidden +
              per_layer * static_cast<size_t>(c.n_layers);
  const size_t chunk = std::min<size_t>(n, static_cast<size_t>(std::max<int64_t>(options.mlp_chunk_tokens, 1)));
  const size_t out_rows = std::min<size_t>(n, kOutputChunkRows);
  e.activations = n * hidden * fp                                  // x, residual stream
                  + n * hidden * bf                                // normed x
                  + n * q_out * bf * (attention_output_in_normed(c, q_out) ? 1 : 2)  // q, attention output
                  + n * kv_out * bf * 2                            // k, v
                  + static_cast<size_t>(c.n_heads) * n * fp        // lse
                  + chunk * inter * bf * 2                         // gate, up of one MLP chunk
                  + n * static_cast<size_t>(c.rotary_dims() / 2) * fp * 2  // RoPE cos, sin
                  + n * sizeof(int32_t)                            // tokens
                  + out_rows * (hidden * bf + hidden * fp + vocab * fp + sizeof(int64_t));  // output chunk
  e.hooks = options.hook_device_bytes;
  e.headroom = kHeadroomBytes;
  return e;
}

int64_t cuda_attention_head_dim(int64_t head_dim) { return head_dim <= 64 ? 64 : 128; }

kernels::AttentionDims cuda_attention_dims(const ModelConfig& config, int64_t n_tokens) {
  return kernels::AttentionDims{n_tokens, config.n_heads, config.n_kv_heads, cuda_attention_head_dim(config.head_dim)};
}

void check_cuda_engine_shape(const ModelFile& model) {
  const ModelConfig& c = model.config();
  c.validate(model.path());
  if (c.head_dim > 128 || c.head_dim % 2 != 0)
    throw InputError(model.path(), "head_dim " + std::to_string(c.head_dim) +
                                       " is unsupported by the CUDA backend (even, at most 128); use --device cpu");
  if (c.qk_norm && cuda_attention_head_dim(c.head_dim) != c.head_dim)
    throw InputError(model.path(), "per-head q/k norms with head_dim " + std::to_string(c.head_dim) +
                                       " are unsupported by the CUDA backend (64 or 128); use --device cpu");
}

#if !defined(HEADCAL_HAVE_CUDA)

std::unique_ptr<CudaEngine> make_cuda_engine(const ModelFile& model, const CudaEngineOptions&) {
  check_cuda_engine_shape(model);
  throw DeviceError("the CUDA backend is not available: this headcal was built without CUDA");
}

#else

namespace {

using cuda::bf16;

// Owning device allocation.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) { alloc(count); }
  ~DeviceBuffer() { cudaFree(ptr_); }
  DeviceBuffer(DeviceBuffer&& o) noexcept : ptr_(o.ptr_), count_(o.count_) { o.ptr_ = nullptr, o.count_ = 0; }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    std::swap(ptr_, o.ptr_);
    std::swap(count_, o.count_);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  void alloc(size_t count) {
    cudaFree(ptr_);
    ptr_ = nullptr;
    count_ = 0;
    if (count == 0) return;
    HC_CHECK_CUDA(cudaMalloc(&ptr_, count * sizeof(T)));
    count_ = count;
  }
  T* get() const { return ptr_; }
  size_t size() const { return count_; }

 private:
  T* ptr_ = nullptr;
  size_t count_ = 0;
};

// Round to nearest even, NaN kept quiet: the same rounding as the device's __float2bfloat16.
uint16_t to_bf16_bits(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float from_bf16_bits(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float x;
  std::memcpy(&x, &u, 4);
  return x;
}

std::vector<float> download_bf16(const bf16* src, size_t count, cudaStream_t stream) {
  std::vector<uint16_t> bits(count);
  HC_CHECK_CUDA(cudaMemcpyAsync(bits.data(), src, count * 2, cudaMemcpyDeviceToHost, stream));
  HC_CHECK_CUDA(cudaStreamSynchronize(stream));
  std::vector<float> out(count);
  for (size_t i = 0; i < count; ++i) out[i] = from_bf16_bits(bits[i]);
  return out;
}

struct DeviceLayer {
  DeviceBuffer<float> attn_norm, mlp_norm;   // [hidden]
  // Attention weights at the attention width d = cuda_attention_head_dim(head_dim), padded rows
  // and columns zero, wq and bq scaled (cuda_engine.h).
  DeviceBuffer<bf16> wq;                     // [n_heads*d, hidden]
  DeviceBuffer<bf16> wk, wv;                 // [n_kv_heads*d, hidden]
  DeviceBuffer<float> bq, bk, bv;            // [heads*d] (Qwen2, GLM)
  DeviceBuffer<float> q_norm, k_norm;        // [head_dim] (Qwen3 only)
  DeviceBuffer<float> post_attn_norm, post_mlp_norm;  // [hidden] (GLM-4 only)
  DeviceBuffer<bf16> wo;                     // [hidden, n_heads*d]
  DeviceBuffer<bf16> w_gate, w_up;           // [intermediate, hidden]
  DeviceBuffer<bf16> w_down;                 // [hidden, intermediate]
};

class CudaEngineImpl final : public CudaEngine {
 public:
  CudaEngineImpl(const ModelFile& model, const CudaEngineOptions& options)
      : config_(model.config()), attn_dim_(cuda_attention_head_dim(config_.head_dim)), options_(options) {
    check_cuda_engine_shape(model);
    if (options_.mlp_chunk_tokens < 1) throw InputError("cuda engine", "mlp_chunk_tokens must be positive");
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
      cudaGetLastError();
      throw DeviceError("the CUDA backend needs a GPU and none is present");
    }
    if (options_.device < 0 || options_.device >= count)
      throw InputError("cuda engine", "device " + std::to_string(options_.device) + " does not exist (" +
                                          std::to_string(count) + " present)");
    HC_CHECK_CUDA(cudaSetDevice(options_.device));
    cudaDeviceProp prop{};
    HC_CHECK_CUDA(cudaGetDeviceProperties(&prop, options_.device));
    description_ = std::string(prop.name) + ", " + gib(prop.totalGlobalMem);
    HC_CHECK_CUDA(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking));
    HC_CHECK_CUBLAS(cublasCreate(&cublas_));
    HC_CHECK_CUBLAS(cublasSetStream(cublas_, stream_));

    const size_t weight_bytes = estimate_cuda_memory(config_, 0, options_).weights;
    size_t free_bytes = 0, total_bytes = 0;
    HC_CHECK_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
    if (weight_bytes + kHeadroomBytes > free_bytes)
      throw DeviceError("the weights of " + model.path() + " need " + gib(weight_bytes) + " of device memory, " +
                        gib(free_bytes) + " free on " + description_);
    upload_weights(model);
    HC_CHECK_CUDA(cudaStreamSynchronize(stream_));
    sample_memory();
  }

  ~CudaEngineImpl() override {
    if (cublas_) cublasDestroy(cublas_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  PrefillResult prefill(const PrefillRequest& request) override { return run(request, nullptr); }
  PrefillResult prefill_device(const PrefillRequest& request, const DeviceLayerHook& hook) override {
    return run(request, hook ? &hook : nullptr);
  }
  const ModelConfig& config() const override { return config_; }

  // Per chunk: both sides' hidden rows uploaded and rounded to bf16 (what the prefill's logits
  // GEMM reads), two GEMMs into fp32 logits, one kernel for per-row KL and argmax agreement; only
  // [rows] KL and flags come back. Device memory is bounded by the chunk.
  NextTokenComparison compare_next_token(const float* hidden_a, const float* hidden_b, int64_t positions,
                                         int64_t chunk_rows) override {
    HC_ASSERT(positions >= 0, "a position count is not negative");
    const ModelConfig& c = config_;
    const int64_t hidden = c.hidden, vocab = c.vocab;
    const size_t hidden_z = static_cast<size_t>(hidden), vocab_z = static_cast<size_t>(vocab);
    NextTokenComparison out;
    out.resize(static_cast<size_t>(positions));
    if (positions == 0) {
      summarise_next_token(out);
      return out;
    }
    HC_CHECK_CUDA(cudaSetDevice(options_.device));
    const int64_t rows_max = std::min(positions, next_token_chunk_rows(chunk_rows));
    const size_t rows = static_cast<size_t>(rows_max);
    const size_t need = rows * (2 * hidden_z * (4 + 2) + 2 * vocab_z * 4 + sizeof(double) + 1 + sizeof(float)) + kHeadroomBytes;
    size_t free_bytes = 0, total_bytes = 0;
    HC_CHECK_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
    if (need > free_bytes)
      throw DeviceError("the next-token comparison in chunks of " + std::to_string(rows_max) + " positions needs " +
                        gib(need) + " of device memory; " + gib(free_bytes) + " free on " + description_);
    DeviceBuffer<float> staged_a(rows * hidden_z), staged_b(rows * hidden_z);  // [chunk, hidden] fp32 as given
    DeviceBuffer<bf16> normed_a(rows * hidden_z), normed_b(rows * hidden_z);   // [chunk, hidden]
    DeviceBuffer<float> logits_a(rows * vocab_z), logits_b(rows * vocab_z);    // [chunk, vocab]
    DeviceBuffer<double> kl(rows);                                          // [chunk]
    DeviceBuffer<uint8_t> agree(rows);                                      // [chunk]
    DeviceBuffer<float> confidence(rows);                                   // [chunk]
    const bf16* head = c.tie_embeddings ? embed_.get() : lm_head_.get();
    for (int64_t p0 = 0; p0 < positions; p0 += rows_max) {
      const int64_t n_rows = std::min(rows_max, positions - p0);
      const size_t count = static_cast<size_t>(n_rows * hidden);
      HC_CHECK_CUDA(cudaMemcpyAsync(staged_a.get(), hidden_a + p0 * hidden, count * 4, cudaMemcpyHostToDevice, stream_));
      HC_CHECK_CUDA(cudaMemcpyAsync(staged_b.get(), hidden_b + p0 * hidden, count * 4, cudaMemcpyHostToDevice, stream_));
      cuda::to_bf16(staged_a.get(), normed_a.get(), static_cast<int64_t>(count), stream_);
      cuda::to_bf16(staged_b.get(), normed_b.get(), static_cast<int64_t>(count), stream_);
      gemm(normed_a.get(), head, logits_a.get(), CUDA_R_32F, n_rows, vocab, hidden, 0.f);
      gemm(normed_b.get(), head, logits_b.get(), CUDA_R_32F, n_rows, vocab, hidden, 0.f);
      cuda::next_token_rows(logits_a.get(), logits_b.get(), n_rows, vocab, kl.get(), agree.get(),
                            confidence.get(), stream_);
      HC_CHECK_CUDA(cudaMemcpyAsync(out.kl.data() + p0, kl.get(), static_cast<size_t>(n_rows) * sizeof(double),
                                    cudaMemcpyDeviceToHost, stream_));
      HC_CHECK_CUDA(cudaMemcpyAsync(out.agree.data() + p0, agree.get(), static_cast<size_t>(n_rows),
                                    cudaMemcpyDeviceToHost, stream_));
      HC_CHECK_CUDA(cudaMemcpyAsync(out.confidence.data() + p0, confidence.get(),
                                    static_cast<size_t>(n_rows) * sizeof(float), cudaMemcpyDeviceToHost, stream_));
    }
    HC_CHECK_CUDA(cudaStreamSynchronize(stream_));
    sample_memory();
    summarise_next_token(out);
    return out;
  }

  size_t peak_device_bytes() const override { return peak_bytes_; }
  std::string device_description() const override { return description_; }

 private:
  void upload_matrix(const ModelFile& model, const std::string& name, const std::vector<int64_t>& shape,
                     DeviceBuffer<bf16>& dst) {
    const size_t count = static_cast<size_t>(shape[0] * shape[1]);
    dst.alloc(count);
    if (const auto* random = dynamic_cast<const RandomModel*>(&model)) {
      const TensorInfo& info = random->tensor(name);
      if (info.shape != shape)
        throw InputError(model.path(), "tensor " + name + ": expected shape " + shape_string(shape) + ", got " +
                                           shape_string(info.shape));
      const RandomTensorSpec spec = random->spec(name);
      if (spec.kind == RandomTensorSpec::Kind::Ones) cuda::fill_constant(dst.get(), count, 1.f, stream_);
      else cuda::fill_random(dst.get(), static_cast<int64_t>(count), spec.stream, spec.half_range, stream_);
      return;
    }
    const TensorInfo& info = model.tensor(name);
    if (model.format() == "safetensors" && info.dtype == DType::BF16 && info.shape == shape &&
        info.nbytes == count * 2 && info.data != nullptr) {
      // Already bf16 in canonical layout: copy the mapped bytes as they are.
      HC_CHECK_CUDA(cudaMemcpy(dst.get(), info.data, count * 2, cudaMemcpyHostToDevice));
      return;
    }
    const std::vector<float> f32 = model.load_f32(name, shape);
    std::vector<uint16_t> bits(count);
    for (size_t i = 0; i < count; ++i) bits[i] = to_bf16_bits(f32[i]);
    HC_CHECK_CUDA(cudaMemcpy(dst.get(), bits.data(), count * 2, cudaMemcpyHostToDevice));
  }

  // [n, heads, attn_dim_] on the device to [n, heads, head_dim] fp32 on the host, times scale.
  std::vector<float> download_heads(const bf16* src, int64_t n, int64_t heads, float scale) {
    if (attn_dim_ == config_.head_dim && scale == 1.f)
      return download_bf16(src, static_cast<size_t>(n * heads * attn_dim_), stream_);
    DeviceBuffer<bf16> packed(static_cast<size_t>(n * heads * config_.head_dim));
    cuda::repack_heads(src, packed.get(), n, heads, attn_dim_, config_.head_dim, 1, scale, stream_);
    return download_bf16(packed.get(), packed.size(), stream_);
  }

  void upload_vector(const ModelFile& model, const std::string& name, int64_t length, DeviceBuffer<float>& dst) {
    dst.alloc(static_cast<size_t>(length));
    if (const auto* random = dynamic_cast<const RandomModel*>(&model)) {
      const RandomTensorSpec spec = random->spec(name);
      if (spec.kind == RandomTensorSpec::Kind::Ones) cuda::fill_constant(dst.get(), length, 1.f, stream_);
      else cuda::fill_random(dst.get(), length, spec.stream, spec.half_range, stream_);
      return;
    }
    const std::vector<float> f32 = model.load_f32(name, {length});
    HC_CHECK_CUDA(cudaMemcpy(dst.get(), f32.data(), f32.size() * 4, cudaMemcpyHostToDevice));
  }

  // A per-head weight at the attention width: `heads` blocks of head_dim rows (inner = the row
  // length) or of head_dim columns (inner = 1, outer = rows) padded with zeros to attn_dim_, times
  // `scale`. As it is when nothing pads.
  template <typename T>
  void pad_heads(DeviceBuffer<T>& w, int64_t outer, int64_t heads, int64_t inner, float scale) {
    if (attn_dim_ == config_.head_dim) return;
    DeviceBuffer<T> padded(static_cast<size_t>(outer * heads * attn_dim_ * inner));
    cuda::repack_heads(w.get(), padded.get(), outer, heads, config_.head_dim, attn_dim_, inner, scale, stream_);
    HC_CHECK_CUDA(cudaStreamSynchronize(stream_));
    w = std::move(padded);
  }

  void upload_weights(const ModelFile& model) {
    const ModelConfig& c = config_;
    const int64_t q_out = c.n_heads * c.head_dim, kv_out = c.n_kv_heads * c.head_dim;
    // The kernels' softmax scale is 1/sqrt(attn_dim_); q carries the rest of the model's 1/sqrt(head_dim).
    const float q_scale = static_cast<float>(std::sqrt(double(attn_dim_) / double(c.head_dim)));
    upload_matrix(model, tensor_names::embed(), {c.vocab, c.hidden}, embed_);
    if (!c.tie_embeddings) upload_matrix(model, tensor_names::lm_head(), {c.vocab, c.hidden}, lm_head_);
    upload_vector(model, tensor_names::final_norm(), c.hidden, final_norm_);
    layers_.resize(static_cast<size_t>(c.n_layers));
    for (int i = 0; i < static_cast<int>(c.n_layers); ++i) {
      DeviceLayer& L = layers_[static_cast<size_t>(i)];
      upload_vector(model, tensor_names::attn_norm(i), c.hidden, L.attn_norm);
      upload_matrix(model, tensor_names::q_proj(i), {q_out, c.hidden}, L.wq);
      upload_matrix(model, tensor_names::k_proj(i), {kv_out, c.hidden}, L.wk);
      upload_matrix(model, tensor_names::v_proj(i), {kv_out, c.hidden}, L.wv);
      pad_heads(L.wq, 1, c.n_heads, c.hidden, q_scale);
      pad_heads(L.wk, 1, c.n_kv_heads, c.hidden, 1.f);
      pad_heads(L.wv, 1, c.n_kv_heads, c.hidden, 1.f);
      if (c.qkv_bias) {
        upload_vector(model, tensor_names::q_bias(i), q_out, L.bq);
        upload_vector(model, tensor_names::k_bias(i), kv_out, L.bk);
        upload_vector(model, tensor_names::v_bias(i), kv_out, L.bv);
        pad_heads(L.bq, 1, c.n_heads, 1, q_scale);
        pad_heads(L.bk, 1, c.n_kv_heads, 1, 1.f);
        pad_heads(L.bv, 1, c.n_kv_heads, 1, 1.f);
      }
      if (c.qk_norm) {
        upload_vector(model, tensor_names::q_norm(i), c.head_dim, L.q_norm);
        upload_vector(model, tensor_names::k_norm(i), c.head_dim, L.k_norm);
      }
      upload_matrix(model, tensor_names::o_proj(i), {c.hidden, q_out}, L.wo);
      pad_heads(L.wo, c.hidden, c.n_heads, 1, 1.f);
      upload_vector(model, tensor_names::mlp_norm(i), c.hidden, L.mlp_norm);
      upload_matrix(model, tensor_names::gate_proj(i), {c.intermediate, c.hidden}, L.w_gate);
      upload_matrix(model, tensor_names::up_proj(i), {c.intermediate, c.hidden}, L.w_up);
      upload_matrix(model, tensor_names::down_proj(i), {c.hidden, c.intermediate}, L.w_down);
      if (c.post_norms) {
        upload_vector(model, tensor_names::post_attn_out_norm(i), c.hidden, L.post_attn_norm);
        upload_vector(model, tensor_names::post_mlp_norm(i), c.hidden, L.post_mlp_norm);
      }
    }
  }

  // y [rows, out] (= beta * y +) x [rows, in] . w^T with w [out, in] row-major; fp32 accumulation.
  // Row-major y is column-major y^T [out, rows] = w (as column-major [in, out], transposed) * x^T.
  void gemm(const bf16* x, const bf16* w, void* y, cudaDataType y_type, int64_t rows, int64_t out, int64_t in,
            float beta) {
    if (rows == 0) return;
    const float alpha = 1.f;
    HC_CHECK_CUBLAS(cublasGemmEx(cublas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(out), static_cast<int>(rows),
                                 static_cast<int>(in), &alpha, w, CUDA_R_16BF, static_cast<int>(in), x, CUDA_R_16BF,
                                 static_cast<int>(in), &beta, y, y_type, static_cast<int>(out), CUBLAS_COMPUTE_32F,
                                 CUBLAS_GEMM_DEFAULT));
  }

  void sample_memory() {
    size_t free_bytes = 0, total_bytes = 0;
    if (cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess)
      peak_bytes_ = std::max(peak_bytes_, total_bytes - free_bytes);
  }

  void check_fits(int64_t n) {
    const CudaMemoryEstimate e = estimate_cuda_memory(config_, n, options_);
    size_t free_bytes = 0, total_bytes = 0;
    HC_CHECK_CUDA(cudaMemGetInfo(&free_bytes, &total_bytes));
    const size_t need = e.activations + e.hooks + e.headroom;  // the weights are already resident
    if (need > free_bytes)
      throw DeviceError("a prefill of " + std::to_string(n) + " tokens needs " + gib(e.total()) +
                        " of device memory (weights " + gib(e.weights) + " resident, activations " +
                        gib(e.activations) + ", recorder " + gib(e.hooks) + ", headroom " + gib(e.headroom) +
                        "); " + gib(free_bytes) + " free beyond the weights on " + description_);
  }

  PrefillResult run(const PrefillRequest& request, const DeviceLayerHook* device_hook) {
    const ResolvedRequest resolved = resolve_request(config_, request);
    const ModelConfig& c = config_;
    const int64_t n = static_cast<int64_t>(request.tokens.size());
    // A prompt beyond the model's context is the caller's choice (--allow-longer warns at the
    // prompt): the engine runs it, as the CPU engine does; check_fits bounds the memory.
    HC_CHECK_CUDA(cudaSetDevice(options_.device));
    check_fits(n);

    const int64_t hidden = c.hidden, inter = c.intermediate, d = attn_dim_;
    const int64_t q_out = c.n_heads * d, kv_out = c.n_kv_heads * d;
    const int64_t chunk = std::min<int64_t>(n, options_.mlp_chunk_tokens);
    const float eps = static_cast<float>(c.rms_eps);
    const kernels::AttentionDims dims = cuda_attention_dims(c, n);

    DeviceBuffer<int32_t> tokens(static_cast<size_t>(n));       // [N]
    DeviceBuffer<float> x(static_cast<size_t>(n * hidden));      // [N, hidden] residual stream
    DeviceBuffer<bf16> xn(static_cast<size_t>(n * hidden));      // [N, hidden] normed
    DeviceBuffer<bf16> q(static_cast<size_t>(n * q_out));        // [N, n_heads, d]
    DeviceBuffer<bf16> k(static_cast<size_t>(n * kv_out));       // [N, n_kv_heads, d]
    DeviceBuffer<bf16> v(static_cast<size_t>(n * kv_out));       // [N, n_kv_heads, d]
    const bool attn_in_xn = attention_output_in_normed(c, q_out);
    DeviceBuffer<bf16> attn_own(attn_in_xn ? 0 : static_cast<size_t>(n * q_out));
    bf16* const attn = attn_in_xn ? xn.get() : attn_own.get();  // [N, n_heads, d]
    DeviceBuffer<float> lse(static_cast<size_t>(c.n_heads * n));  // [n_heads, N]
    DeviceBuffer<bf16> gate(static_cast<size_t>(chunk * inter));  // [chunk, intermediate]
    DeviceBuffer<bf16> up(static_cast<size_t>(chunk * inter));    // [chunk, intermediate]
    const int64_t rotary = c.rotary_dims();
    DeviceBuffer<float> rope_cos(static_cast<size_t>(n * rotary / 2));  // [N, rotary/2]
    DeviceBuffer<float> rope_sin(static_cast<size_t>(n * rotary / 2));  // [N, rotary/2]

    {
      const RopeTable table = rope_table(c, n);  // angles in double on the host
      HC_CHECK_CUDA(cudaMemcpyAsync(rope_cos.get(), table.cos.data(), table.cos.size() * 4, cudaMemcpyHostToDevice,
                                    stream_));
      HC_CHECK_CUDA(cudaMemcpyAsync(rope_sin.get(), table.sin.data(), table.sin.size() * 4, cudaMemcpyHostToDevice,
                                    stream_));
      HC_CHECK_CUDA(cudaMemcpyAsync(tokens.get(), request.tokens.data(), static_cast<size_t>(n) * 4,
                                    cudaMemcpyHostToDevice, stream_));
      HC_CHECK_CUDA(cudaStreamSynchronize(stream_));  // the host table goes out of scope
    }
    cuda::embedding(tokens.get(), embed_.get(), x.get(), n, hidden, stream_);

    for (int layer = 0; layer < resolved.layers_to_run; ++layer) {
      const DeviceLayer& L = layers_[static_cast<size_t>(layer)];
      // Attention block.
      cuda::rmsnorm(x.get(), nullptr, L.attn_norm.get(), xn.get(), n, hidden, eps, stream_);
      gemm(xn.get(), L.wq.get(), q.get(), CUDA_R_16BF, n, q_out, hidden, 0.f);
      gemm(xn.get(), L.wk.get(), k.get(), CUDA_R_16BF, n, kv_out, hidden, 0.f);
      gemm(xn.get(), L.wv.get(), v.get(), CUDA_R_16BF, n, kv_out, hidden, 0.f);
      // A bias comes before the per-head norm, the norm before RoPE. bias_rope adds the bias itself
      // only when nothing comes between and it rotates whole heads (it touches rotated pairs only).
      const bool bias_in_rope = c.qkv_bias && !c.qk_norm && rotary == d;
      if (c.qkv_bias && !bias_in_rope) {
        cuda::add_bias(q.get(), L.bq.get(), n, q_out, stream_);
        cuda::add_bias(k.get(), L.bk.get(), n, kv_out, stream_);
      }
      if (c.qk_norm) {
        cuda::head_rmsnorm(q.get(), L.q_norm.get(), n * c.n_heads, d, eps, stream_);   // [N * n_heads, d]
        cuda::head_rmsnorm(k.get(), L.k_norm.get(), n * c.n_kv_heads, d, eps, stream_);  // [N * n_kv_heads, d]
      }
      cuda::bias_rope(q.get(), bias_in_rope ? L.bq.get() : nullptr, rope_cos.get(), rope_sin.get(), n, c.n_heads, d,
                      rotary, c.rope_interleaved, q_out, stream_);
      cuda::bias_rope(k.get(), bias_in_rope ? L.bk.get() : nullptr, rope_cos.get(), rope_sin.get(), n, c.n_kv_heads,
                      d, rotary, c.rope_interleaved, kv_out, stream_);
      if (c.qkv_bias) cuda::add_bias(v.get(), L.bv.get(), n, kv_out, stream_);
      DeviceLayerAttention a;
      a.layer = layer;
      a.q = q.get();
      a.k = k.get();
      a.v = v.get();
      a.q_row_stride = q_out;
      a.k_row_stride = kv_out;
      a.v_row_stride = kv_out;
      a.dims = dims;
      a.stream = stream_;
      if (request.device_attention_override) {  // validate: each head on its sparse kernel
        request.device_attention_override(a, attn, lse.get());
      } else if (request.attention_override) {
        throw InputError("prefill: the CUDA engine cannot run a host attention_override; use device_attention_override");
      } else {
        kernels::dense_attention_forward(attention_params(a, attn, lse.get()), stream_);  // O and LSE
      }

      if (layer >= resolved.first_layer && layer <= resolved.last_layer) {
        if (device_hook) {
          a.o = attn;
          a.lse = lse.get();
          (*device_hook)(a);
        }
        if (request.on_layer) {  // the model's head_dim and q, as the CPU engine gives them
          const float q_unscale = static_cast<float>(std::sqrt(double(c.head_dim) / double(d)));
          const std::vector<float> hq = download_heads(q.get(), n, c.n_heads, q_unscale);
          const std::vector<float> hk = download_heads(k.get(), n, c.n_kv_heads, 1.f);
          const std::vector<float> hv = download_heads(v.get(), n, c.n_kv_heads, 1.f);
          const std::vector<float> ho = download_heads(attn, n, c.n_heads, 1.f);
          std::vector<float> hl(lse.size());
          HC_CHECK_CUDA(cudaMemcpyAsync(hl.data(), lse.get(), hl.size() * 4, cudaMemcpyDeviceToHost, stream_));
          HC_CHECK_CUDA(cudaStreamSynchronize(stream_));
          LayerAttention a;
          a.layer = layer;
          a.q = hq.data();
          a.k = hk.data();
          a.v = hv.data();
          a.o = ho.data();
          a.lse = hl.data();
          a.dims = kernels::AttentionDims{n, c.n_heads, c.n_kv_heads, c.head_dim};
          request.on_layer(a);
        }
      }
      if (c.post_norms) {  // x += norm(o_proj(attn)); xn, read by q/k/v alone, holds o_proj's output
        gemm(attn, L.wo.get(), xn.get(), CUDA_R_16BF, n, hidden, q_out, 0.f);
        cuda::rmsnorm_add(xn.get(), L.post_attn_norm.get(), x.get(), n, hidden, eps, stream_);
      } else {
        gemm(attn, L.wo.get(), x.get(), CUDA_R_32F, n, hidden, q_out, 1.f);  // x += o_proj(attn)
      }

      // MLP block over token chunks: x += down(silu(gate(xn)) * up(xn)), with GLM-4's norm of
      // down's output in the chunk's rows of xn, which gate and up have read by then.
      cuda::rmsnorm(x.get(), nullptr, L.mlp_norm.get(), xn.get(), n, hidden, eps, stream_);
      for (int64_t t0 = 0; t0 < n; t0 += chunk) {
        const int64_t rows = std::min(chunk, n - t0);
        bf16* xin = xn.get() + t0 * hidden;  // [rows, hidden]
        gemm(xin, L.w_gate.get(), gate.get(), CUDA_R_16BF, rows, inter, hidden, 0.f);
        gemm(xin, L.w_up.get(), up.get(), CUDA_R_16BF, rows, inter, hidden, 0.f);
        cuda::silu_mul(gate.get(), up.get(), rows * inter, stream_);
        if (c.post_norms) {
          gemm(gate.get(), L.w_down.get(), xin, CUDA_R_16BF, rows, hidden, inter, 0.f);
          cuda::rmsnorm_add(xin, L.post_mlp_norm.get(), x.get() + t0 * hidden, rows, hidden, eps, stream_);
        } else {
          gemm(gate.get(), L.w_down.get(), x.get() + t0 * hidden, CUDA_R_32F, rows, hidden, inter, 1.f);
        }
      }
      sample_memory();
    }

    PrefillResult result;
    const int64_t out_rows = std::min<int64_t>(n, kOutputChunkRows);
    DeviceBuffer<int64_t> rows_dev(static_cast<size_t>(out_rows));  // [chunk] positions
    if (request.want_logits) {
      result.logit_positions = resolved.logit_positions;
      const int64_t n_pos = static_cast<int64_t>(resolved.logit_positions.size());
      result.logits.resize(static_cast<size_t>(n_pos * c.vocab));
      DeviceBuffer<bf16> normed(static_cast<size_t>(out_rows * hidden));   // [chunk, hidden]
      DeviceBuffer<float> logits(static_cast<size_t>(out_rows * c.vocab));  // [chunk, vocab]
      const bf16* head = c.tie_embeddings ? embed_.get() : lm_head_.get();
      for (int64_t p0 = 0; p0 < n_pos; p0 += out_rows) {
        const int64_t rows = std::min(out_rows, n_pos - p0);
        HC_CHECK_CUDA(cudaMemcpyAsync(rows_dev.get(), resolved.logit_positions.data() + p0,
                                      static_cast<size_t>(rows) * 8, cudaMemcpyHostToDevice, stream_));
        cuda::rmsnorm(x.get(), rows_dev.get(), final_norm_.get(), normed.get(), rows, hidden, eps, stream_);
        gemm(normed.get(), head, logits.get(), CUDA_R_32F, rows, c.vocab, hidden, 0.f);
        HC_CHECK_CUDA(cudaMemcpyAsync(result.logits.data() + p0 * c.vocab, logits.get(),
                                      static_cast<size_t>(rows * c.vocab) * 4, cudaMemcpyDeviceToHost, stream_));
        HC_CHECK_CUDA(cudaStreamSynchronize(stream_));  // rows_dev is reused by the next chunk
      }
    }
    if (request.want_final_hidden) {
      result.final_hidden.resize(static_cast<size_t>(n * hidden));
      DeviceBuffer<float> normed(static_cast<size_t>(out_rows * hidden));  // [chunk, hidden]
      for (int64_t r0 = 0; r0 < n; r0 += out_rows) {
        const int64_t rows = std::min(out_rows, n - r0);
        cuda::rmsnorm(x.get() + r0 * hidden, nullptr, final_norm_.get(), normed.get(), rows, hidden, eps, stream_);
        HC_CHECK_CUDA(cudaMemcpyAsync(result.final_hidden.data() + r0 * hidden, normed.get(),
                                      static_cast<size_t>(rows * hidden) * 4, cudaMemcpyDeviceToHost, stream_));
      }
    }
    sample_memory();
    HC_CHECK_CUDA(cudaStreamSynchronize(stream_));
    return result;
  }

  ModelConfig config_;
  int64_t attn_dim_ = 0;  // cuda_attention_head_dim(config_.head_dim)
  CudaEngineOptions options_;
  std::string description_;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t cublas_ = nullptr;
  DeviceBuffer<bf16> embed_;       // [vocab, hidden]
  DeviceBuffer<bf16> lm_head_;     // [vocab, hidden]; empty when tied
  DeviceBuffer<float> final_norm_;  // [hidden]
  std::vector<DeviceLayer> layers_;
  size_t peak_bytes_ = 0;
};

}  // namespace

std::unique_ptr<CudaEngine> make_cuda_engine(const ModelFile& model, const CudaEngineOptions& options) {
  return std::make_unique<CudaEngineImpl>(model, options);
}

#endif

}  // namespace hc

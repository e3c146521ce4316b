#pragma once
// The CUDA backend of the prefill engine: bf16 weights and activations (fp32 residual stream and
// accumulation), cuBLAS GEMMs, headcal's dense flash attention (O + LSE), GQA without repeating K/V.
//
// Memory: weights stay resident; per prefill the engine holds one layer's activations
// (x fp32 [N, hidden], normed x, q, k, v, attention out, lse), the MLP runs over token chunks
// (mlp_chunk_tokens) and logits are computed only for the requested positions, in chunks;
// compare_next_token holds two [chunk, vocab] fp32 logit chunks (kNextTokenChunkRows rows).
// Llama-3-8B-shaped at 128K tokens: about 15 GiB of weights + 7 GiB of activations.
// Before allocating, prefill checks the estimate against the device's free memory and throws
// DeviceError "needs X GiB, Y GiB free" when it cannot fit.
//
// This header has no CUDA types, so CPU-only builds compile code that names the backend;
// make_cuda_engine throws DeviceError there.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "calib/engine.h"

namespace hc {

// One layer's attention on the device, valid only during the hook call. All pointers are device
// memory; the hook enqueues its work on `stream` (a cudaStream_t) and must not free anything.
// q, k, v, strides, dims and stream as the attention override gets them (calib/engine.h), plus
// the attention's output.
struct DeviceLayerAttention : DeviceAttentionInput {
  const void* o = nullptr;     // bf16 [n_tokens, n_heads, head_dim], attention output (before o_proj)
  const float* lse = nullptr;  // fp32 [n_heads, n_tokens], natural log
};
using DeviceLayerHook = std::function<void(const DeviceLayerAttention&)>;

struct CudaEngineOptions {
  int device = 0;
  // Tokens per MLP chunk: gate and up [chunk, intermediate] bf16 each. 16384 tokens at Llama-3-8B's
  // 14336 width is 0.9 GiB for both, against 7.4 GiB unchunked at 128K.
  int64_t mlp_chunk_tokens = 16384;
  // Device bytes the caller's hooks allocate per prefill (the recorder's outputs), counted in the
  // up-front memory check.
  size_t hook_device_bytes = 0;
};

// Device memory a prefill of n_tokens needs beyond the weights (the estimate the engine checks).
struct CudaMemoryEstimate {
  size_t weights = 0;      // resident bf16 weights (+ fp32 norms and biases)
  size_t activations = 0;  // per-prefill buffers
  size_t hooks = 0;        // hook_device_bytes
  size_t headroom = 0;     // cuBLAS workspace and allocator slack
  size_t total() const { return weights + activations + hooks + headroom; }
};
CudaMemoryEstimate estimate_cuda_memory(const ModelConfig& config, int64_t n_tokens,
                                        const CudaEngineOptions& options = {});

class CudaEngine : public Engine {
 public:
  std::string backend() const override { return "cuda"; }
  // prefill() with the hook receiving device pointers instead of host copies: the recorder runs on
  // the GPU without N x d copies per layer. request.on_layer (host copies) still fires if set.
  virtual PrefillResult prefill_device(const PrefillRequest& request, const DeviceLayerHook& hook) = 0;
  // Highest device memory in use (cudaMemGetInfo total - free, this process and context included)
  // sampled after every layer of the prefills so far.
  virtual size_t peak_device_bytes() const = 0;
  virtual std::string device_description() const = 0;  // "NVIDIA H100 80GB HBM3, 79.1 GiB"
};

// The head width the CUDA engine's attention runs at: the attention kernels are built for 64 and
// 128, so a head_dim below either is padded with zero features to it (Phi-3-mini's 96 runs at
// 128). Zero features leave every score and output unchanged; the engine scales q by
// sqrt(padded / head_dim) so that the kernels' 1/sqrt(padded) gives the model's 1/sqrt(head_dim).
// Device hooks (DeviceAttentionInput) see the padded, scaled tensors; host hooks the model's.
int64_t cuda_attention_head_dim(int64_t head_dim);
// The shape of a layer's device attention for `config` at n_tokens, at that width: what the
// engine's device hooks get as DeviceAttentionInput::dims.
kernels::AttentionDims cuda_attention_dims(const ModelConfig& config, int64_t n_tokens);

// Throws InputError naming the model file for shapes the CUDA backend does not run (head_dim odd
// or above 128; per-head q/k norms with a padded head_dim): what make_cuda_engine checks first,
// with or without CUDA.
void check_cuda_engine_shape(const ModelFile& model);

// Uploads the model's weights as bf16 (dequantised through load_f32, raw bf16 from safetensors,
// generated in place for RandomModel). Throws DeviceError without CUDA or a device, or when the
// weights do not fit; InputError for shapes check_cuda_engine_shape refuses.
std::unique_ptr<CudaEngine> make_cuda_engine(const ModelFile& model, const CudaEngineOptions& options = {});

}  // namespace hc

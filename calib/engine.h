#pragma once
// Backend-neutral prefill engine for Llama-family models (Llama 2/3/3.1, Mistral, Qwen2, SmolLM2).
// A backend runs the full forward over a token sequence and reports each layer's dense attention
// (after RoPE) to a hook; the recorder attaches there. CPU (Eigen, float32): make_cpu_engine.
// The CUDA backend lives in its own header and implements the same interface.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "calib/next_token.h"
#include "io/model/model_config.h"
#include "io/model/model_file.h"
#include "kernels/attention/attention_ref.h"

namespace hc {

using kernels::AttentionDims;

// One layer's attention, handed to the hook. Host pointers, valid only during the call.
struct LayerAttention {
  int layer = 0;
  const float* q = nullptr;    // [n_tokens, n_heads, head_dim], after RoPE
  const float* k = nullptr;    // [n_tokens, n_kv_heads, head_dim], after RoPE
  const float* v = nullptr;    // [n_tokens, n_kv_heads, head_dim]
  const float* o = nullptr;    // [n_tokens, n_heads, head_dim], dense attention output (before o_proj)
  const float* lse = nullptr;  // [n_heads, n_tokens], natural log of the softmax denominator
  AttentionDims dims;
};

// Called after each hooked layer's dense attention.
using LayerHook = std::function<void(const LayerAttention&)>;

// A layer's attention inputs, handed to an attention override. Host pointers, valid only during
// the call.
struct LayerAttentionInput {
  int layer = 0;
  const float* q = nullptr;  // [n_tokens, n_heads, head_dim], after RoPE
  const float* k = nullptr;  // [n_tokens, n_kv_heads, head_dim], after RoPE
  const float* v = nullptr;  // [n_tokens, n_kv_heads, head_dim]
  AttentionDims dims;
};
// Computes a layer's attention INSTEAD of the engine's dense attention (validate runs every head
// on its sparse kernel this way): writes o [n_tokens, n_heads, head_dim] and lse [n_heads, n_tokens];
// o flows on to o_proj and the later layers, and the hook (if any) sees o and lse as written.
// Every layer calls it. CPU backend.
using AttentionOverride = std::function<void(const LayerAttentionInput& in, float* o, float* lse)>;

// The device variant (CUDA backend): one layer's q, k, v in bf16 device memory, after RoPE; the
// override writes o (bf16 [n_tokens, n_heads, head_dim], packed) and lse (fp32 [n_heads,
// n_tokens]) by work enqueued on `stream` (a cudaStream_t). Also the first fields of the CUDA
// engine's record hook argument (DeviceLayerAttention, calib/cuda_engine.h). head_dim here is
// dims.head_dim, the width the kernels run at: the model's, or padded to it with zero features
// and q scaled to match (cuda_attention_head_dim).
struct DeviceAttentionInput {
  int layer = 0;
  const void* q = nullptr;   // bf16 [n_tokens, n_heads, head_dim] (row stride q_row_stride)
  const void* k = nullptr;   // bf16 [n_tokens, n_kv_heads, head_dim] (row stride k_row_stride)
  const void* v = nullptr;   // bf16 [n_tokens, n_kv_heads, head_dim] (row stride v_row_stride)
  int64_t q_row_stride = 0;  // elements; densely packed: n_heads * head_dim
  int64_t k_row_stride = 0;  // n_kv_heads * head_dim
  int64_t v_row_stride = 0;  // n_kv_heads * head_dim
  AttentionDims dims;
  void* stream = nullptr;
};
using DeviceAttentionOverride = std::function<void(const DeviceAttentionInput& in, void* o, float* lse)>;

struct PrefillRequest {
  std::vector<int32_t> tokens;  // [N], ids < vocab
  LayerHook on_layer;           // may be empty
  // The hook fires only for layers in [first_layer, last_layer]; last_layer = -1 means the last
  // layer. Every layer up to last_layer runs (each needs the exact activations of those before);
  // the layers after it run only when logits or the final hidden state are wanted.
  int first_layer = 0;
  int last_layer = -1;
  bool want_logits = true;
  std::vector<int64_t> logit_positions;  // positions whose logits are computed; empty = all N
  bool want_final_hidden = false;        // fill PrefillResult::final_hidden
  // When set, replaces the dense attention of every layer (above). Each backend runs only its own
  // kind and rejects the other with InputError: attention_override on the CPU,
  // device_attention_override on CUDA.
  AttentionOverride attention_override;
  DeviceAttentionOverride device_attention_override;
};

struct PrefillResult {
  std::vector<int64_t> logit_positions;  // the positions the rows of `logits` belong to
  std::vector<float> logits;             // [logit_positions.size(), vocab]; empty if !want_logits
  std::vector<float> final_hidden;       // [N, hidden] after the final norm; empty unless asked
};

class Engine {
 public:
  virtual ~Engine() = default;
  // Throws hc::InputError for bad requests (empty tokens, id >= vocab, position out of range,
  // layer range outside the model).
  virtual PrefillResult prefill(const PrefillRequest& request) = 0;
  // Next-token comparison of two final-hidden arrays of this model, hidden_a and hidden_b
  // [positions, hidden] (PrefillResult::final_hidden, after the final norm): the output head runs
  // over chunk_rows positions at a time (<= 0: kNextTokenChunkRows), so memory beyond the inputs
  // is O(chunk_rows x vocab) plus O(positions) for the result, never [positions, vocab].
  virtual NextTokenComparison compare_next_token(const float* hidden_a, const float* hidden_b, int64_t positions,
                                                 int64_t chunk_rows) = 0;
  virtual const ModelConfig& config() const = 0;
  virtual std::string backend() const = 0;  // "cpu", "cuda"
};

// Loads every weight of `model` as float32 (dequantised). The model file must outlive nothing:
// the engine keeps its own copies. `n_threads` <= 0: hardware_concurrency().
std::unique_ptr<Engine> make_cpu_engine(const ModelFile& model, int n_threads = 0);

// Checks a request against a config and returns the resolved [first, last] hook layers and logit
// positions; shared by the backends so they reject the same inputs with the same messages.
struct ResolvedRequest {
  int first_layer = 0;
  int last_layer = 0;
  int layers_to_run = 0;  // layers 0 .. layers_to_run - 1 run
  std::vector<int64_t> logit_positions;
};
ResolvedRequest resolve_request(const ModelConfig& config, const PrefillRequest& request);

}  // namespace hc

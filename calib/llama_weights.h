#pragma once
// A Llama-family model's weights as float32 host matrices (row-major, Hugging Face shapes),
// loaded through ModelFile::load_f32 with every shape checked against the config.
#include <cstdint>
#include <vector>

#include "io/model/model_config.h"
#include "io/model/model_file.h"

namespace hc {

struct LlamaLayerWeights {
  std::vector<float> attn_norm;  // [hidden]
  std::vector<float> wq;         // [n_heads * head_dim, hidden]
  std::vector<float> wk;         // [n_kv_heads * head_dim, hidden]
  std::vector<float> wv;         // [n_kv_heads * head_dim, hidden]
  std::vector<float> bq;         // [n_heads * head_dim]     (empty unless config.qkv_bias)
  std::vector<float> bk;         // [n_kv_heads * head_dim]  (empty unless config.qkv_bias)
  std::vector<float> bv;         // [n_kv_heads * head_dim]  (empty unless config.qkv_bias)
  std::vector<float> q_norm;     // [head_dim]  (empty unless config.qk_norm)
  std::vector<float> k_norm;     // [head_dim]  (empty unless config.qk_norm)
  std::vector<float> wo;         // [hidden, n_heads * head_dim]
  std::vector<float> mlp_norm;   // [hidden]
  std::vector<float> w_gate;     // [intermediate, hidden]
  std::vector<float> w_up;       // [intermediate, hidden]
  std::vector<float> w_down;     // [hidden, intermediate]
  std::vector<float> post_attn_norm;  // [hidden]  (empty unless config.post_norms)
  std::vector<float> post_mlp_norm;   // [hidden]  (empty unless config.post_norms)
};

struct LlamaWeights {
  ModelConfig config;
  std::vector<float> embed;       // [vocab, hidden]
  std::vector<float> final_norm;  // [hidden]
  std::vector<float> lm_head;     // [vocab, hidden]; empty when tied (use embed)
  std::vector<LlamaLayerWeights> layers;

  const std::vector<float>& output_matrix() const { return lm_head.empty() ? embed : lm_head; }
};

// Throws InputError (file, tensor, expected vs actual shape) on any mismatch or missing tensor.
// With tie_embeddings the lm_head is not loaded even if present.
LlamaWeights load_llama_weights(const ModelFile& model);

}  // namespace hc

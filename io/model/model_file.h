#pragma once
// A model on disk (GGUF file or Hugging Face safetensors directory), seen through one interface:
// its config and its tensors under canonical Hugging Face names and shapes.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/model/model_config.h"
#include "io/model/tensor.h"

namespace hc {

class ModelFile {
 public:
  virtual ~ModelFile() = default;

  virtual const std::string& path() const = 0;
  virtual std::string format() const = 0;  // "gguf" or "safetensors"
  virtual const ModelConfig& config() const = 0;
  // All tensors, keyed by canonical name.
  virtual const std::map<std::string, TensorInfo>& tensors() const = 0;
  // Key/value metadata worth showing in `inspect` (GGUF metadata, config.json fields).
  virtual std::vector<std::pair<std::string, std::string>> metadata_summary() const = 0;

  bool has(const std::string& name) const { return tensors().count(name) != 0; }
  // Throws InputError(path, "missing tensor NAME") when absent.
  const TensorInfo& tensor(const std::string& name) const;

  // Dequantised float32 copy, row-major in canonical shape. Checks the shape against
  // `expected` (when non-empty) and throws InputError naming file, tensor, expected and actual shape.
  // For GGUF, Q and K projection weights are returned in Hugging Face row order (the llama.cpp
  // converter's RoPE permutation is undone), so every backend uses rotate-half RoPE.
  virtual std::vector<float> load_f32(const std::string& name, const std::vector<int64_t>& expected = {}) const = 0;

  // Stable identity of the weights: sha256 over the file header/tensor table (not the whole file).
  virtual std::string fingerprint() const = 0;
};

// Opens a GGUF file or a Hugging Face directory (config.json + *.safetensors), chosen by what `path` is.
// Throws InputError naming the file and what is wrong.
std::unique_ptr<ModelFile> open_model(const std::string& path);

// Canonical tensor names for layer `i`.
namespace tensor_names {
std::string embed();          // model.embed_tokens.weight
std::string final_norm();     // model.norm.weight
std::string lm_head();        // lm_head.weight
std::string attn_norm(int i);  // model.layers.i.input_layernorm.weight
std::string q_proj(int i);
std::string k_proj(int i);
std::string v_proj(int i);
std::string o_proj(int i);
std::string q_bias(int i);
std::string k_bias(int i);
std::string v_bias(int i);
std::string q_norm(int i);    // model.layers.i.self_attn.q_norm.weight [head_dim] (qk_norm)
std::string k_norm(int i);    // model.layers.i.self_attn.k_norm.weight [head_dim] (qk_norm)
std::string mlp_norm(int i);  // model.layers.i.post_attention_layernorm.weight
std::string gate_proj(int i);
std::string up_proj(int i);
std::string down_proj(int i);
// Fused projections as Phi-3 stores them; readers split them into the names above (fused_tensors.h).
std::string qkv_proj(int i);      // model.layers.i.self_attn.qkv_proj.weight [q_rows + 2 kv_rows, hidden]
std::string qkv_bias(int i);      // model.layers.i.self_attn.qkv_proj.bias [q_rows + 2 kv_rows] (chatglm GGUF)
std::string gate_up_proj(int i);  // model.layers.i.mlp.gate_up_proj.weight [2 intermediate, hidden]
std::string post_attn_out_norm(int i);  // model.layers.i.post_self_attn_layernorm.weight (post_norms)
std::string post_mlp_norm(int i);       // model.layers.i.post_mlp_layernorm.weight (post_norms)
// N of a "model.layers.N.<rest>" name (N of at most 6 digits), or -1 for any other name.
int64_t layer_of(const std::string& name);
}  // namespace tensor_names

}  // namespace hc

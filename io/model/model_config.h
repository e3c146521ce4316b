#pragma once
// The model configuration every backend works from, filled from config.json or GGUF metadata.
#include <cstdint>
#include <string>
#include <vector>

namespace hc {

enum class RopeScalingType { None, Linear, Llama3, Yarn, LongRope };

struct RopeScaling {
  RopeScalingType type = RopeScalingType::None;
  double factor = 1.0;
  double low_freq_factor = 1.0;     // llama3
  double high_freq_factor = 4.0;    // llama3
  int64_t original_max_position = 8192;  // llama3, yarn, longrope: the pretraining context
  // yarn: the ramp between interpolated and extrapolated frequencies spans the dimensions that
  // turn between beta_slow and beta_fast times over original_max_position.
  double beta_fast = 32.0;
  double beta_slow = 1.0;
  bool yarn_truncate = true;  // round the ramp's ends to whole dimensions
  // yarn, longrope: cos/sin are multiplied by attention_factor; 0 derives it from factor (and,
  // for yarn, from mscale / mscale_all_dim when both are > 0).
  double attention_factor = 0.0;
  double mscale = 0.0;
  double mscale_all_dim = 0.0;
  // longrope (Phi-3): per-pair divisors of inv_freq, [rotary_dims() / 2] each. A prefill longer
  // than original_max_position uses long_factor, any other short_factor; factor (which sets the
  // default attention_factor) is max_position_embeddings / original_max_position unless given.
  std::vector<double> short_factor;
  std::vector<double> long_factor;
};

// The architectures the engines run (ModelConfig::arch), and them as a list for messages.
bool is_supported_arch(const std::string& arch);
std::string supported_archs();  // "llama, mistral, qwen2, qwen3, phi3, glm, glm4"

struct ModelConfig {
  std::string arch;   // "llama", "mistral", "qwen2", "qwen3", "phi3", "glm", "glm4"
  std::string name;   // human-readable, from metadata when present
  int64_t n_layers = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  // Leading dimensions of each q/k head that RoPE rotates (partial rotary, Phi-3's and GLM's
  // partial_rotary_factor); the rest pass through. 0 means head_dim.
  int64_t rotary_dim = 0;
  // RoPE pairs: (2t, 2t + 1) when interleaved (GLM), else (t, t + rotary_dims()/2) (rotate-half).
  bool rope_interleaved = false;
  int64_t hidden = 0;        // d_model
  int64_t intermediate = 0;  // MLP width
  int64_t vocab = 0;
  int64_t max_context = 0;
  double rms_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  bool qkv_bias = false;        // Qwen2, GLM
  bool qk_norm = false;         // Qwen3: RMSNorm over each q and k head (weights [head_dim]) before RoPE
  bool post_norms = false;      // GLM-4-0414: RMSNorm of the attention and MLP outputs before each residual add
  bool tie_embeddings = false;  // lm_head shares model.embed_tokens.weight
  int64_t bos_id = -1;
  int64_t eos_id = -1;

  int64_t rotary_dims() const { return rotary_dim > 0 ? rotary_dim : head_dim; }

  // Throws InputError(source, ...) when a field is missing or inconsistent
  // (e.g. n_heads % n_kv_heads != 0, head_dim * n_heads mismatch with explicit head_dim).
  void validate(const std::string& source) const;
};

}  // namespace hc

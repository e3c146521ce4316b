#pragma once
// A model with deterministic random weights, generated on demand: the Llama-3-8B-shaped model for
// scale work (timing and memory at 128K tokens, no weights shipped) and tiny shapes for tests.
// Good for speed and memory, not for attention patterns.
//
// Weight w[idx] of tensor `name` = (2u - 1) * half_range with u = top 24 bits of
// splitmix64(stream + idx * golden) / 2^24 and stream = splitmix64(seed ^ fnv1a64(name)):
// a counter-based generator, so the host (load_f32) and the device (the CUDA engine fills its
// bf16 weights in place, never building the 16 GB on the host) produce the same values.
// Scale, as a variance-preserving init: projections uniform with std 1/sqrt(fan_in) (q, k and
// scores stay O(1); 0.0156 at hidden 4096, close to Llama's 0.02), embeddings std 1 (RMSNorm
// follows), norm weights 1, biases std 0.02.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/model/model_config.h"
#include "io/model/model_file.h"

#if defined(__CUDACC__)
#define HC_HOST_DEVICE __host__ __device__
#else
#define HC_HOST_DEVICE
#endif

namespace hc {

namespace random_weights {

HC_HOST_DEVICE inline uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Element idx of the stream: uniform in [-half_range, half_range). Bitwise equal on host and device:
// the 24-bit integer converts exactly and the remaining float ops are single exact-or-rounded steps.
HC_HOST_DEVICE inline float value(uint64_t stream, uint64_t idx, float half_range) {
  const uint64_t h = splitmix64(stream + idx * 0x9E3779B97F4A7C15ULL);
  const float u = static_cast<float>(h >> 40) * (1.0f / 16777216.0f);  // [0, 1), exact
  const float centered = u * 2.0f - 1.0f;                              // exact (fused or not)
  return centered * half_range;
}

uint64_t fnv1a64(const std::string& s);

}  // namespace random_weights

// How one tensor is generated.
struct RandomTensorSpec {
  enum class Kind { Uniform, Ones } kind = Kind::Uniform;
  uint64_t stream = 0;
  float half_range = 0.f;  // std * sqrt(3)
};

class RandomModel : public ModelFile {
 public:
  // Validates the config; `name` shows in path() as "random:<name>".
  RandomModel(ModelConfig config, uint64_t seed, const std::string& name);

  const std::string& path() const override { return path_; }
  std::string format() const override { return "random"; }
  const ModelConfig& config() const override { return config_; }
  // Shapes only: data is null, dtype F32 (the generator's output type).
  const std::map<std::string, TensorInfo>& tensors() const override { return tensors_; }
  std::vector<std::pair<std::string, std::string>> metadata_summary() const override;
  std::vector<float> load_f32(const std::string& name, const std::vector<int64_t>& expected = {}) const override;
  std::string fingerprint() const override;  // sha256 over the config and the seed

  uint64_t seed() const { return seed_; }
  // Throws InputError when `name` is not a tensor of this model.
  RandomTensorSpec spec(const std::string& name) const;

 private:
  ModelConfig config_;
  uint64_t seed_;
  std::string path_;
  std::map<std::string, TensorInfo> tensors_;
};

// Llama-3.1-8B's shape: 32 layers, 32 heads, 8 KV heads, head_dim 128, hidden 4096, MLP 14336,
// vocab 128256, rope theta 500000 with llama3 scaling (factor 8), 131072 context.
ModelConfig llama3_8b_config();
// SmolLM2-135M's shape (30 layers, 9 heads, 3 KV heads, head_dim 64, hidden 576, MLP 1536,
// vocab 49152, tied): timing runs without the GGUF.
ModelConfig smollm2_135m_config();
// A tiny Llama for tests: 2 layers, 4 heads, 2 KV heads, head_dim 64, hidden 256, MLP 512, vocab 512.
ModelConfig tiny_llama_config();
// Phi-3-mini-128K's shape (32 layers, 32 heads, 32 KV heads, head_dim 96, hidden 3072, MLP 8192,
// vocab 32064, LongRoPE from 4096 to 131072). The longrope factors are a smooth stand-in (short 1,
// long rising from 1 to 32), not Microsoft's. The CUDA engine runs its head_dim 96 at 128
// (cuda_attention_head_dim).
ModelConfig phi3_mini_config();
// GLM-4-9B's shape (transformers' Glm4ForCausalLM): 40 layers, 32 heads, 2 KV heads, head_dim 128
// of which the first 64 rotate in interleaved pairs, hidden 4096, MLP 13696, vocab 151552, q/k/v
// biases, RMSNorm on the attention and MLP outputs, rope theta 5e6, 131072 context.
ModelConfig glm4_9b_config();
// Qwen3-8B's shape: 36 layers, 32 heads, 8 KV heads, head_dim 128 with per-head q/k RMSNorm,
// hidden 4096, MLP 12288, vocab 151936, rope theta 1e6 with YaRN factor 4 from 32768 to 131072.
ModelConfig qwen3_8b_config();

// "random:<shape>" for a shape of random_shape_names(), optionally with ":SEED" (default 1).
// Returns nullptr when `spec` does not start with "random:"; throws InputError for an unknown
// shape or a bad seed.
std::unique_ptr<RandomModel> open_random_model(const std::string& spec);
// The shapes open_random_model knows, joined by `separator` ("llama3-8b, smollm2, ...").
std::string random_shape_names(const std::string& separator);

}  // namespace hc

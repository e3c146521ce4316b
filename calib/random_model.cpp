#include "calib/random_model.h"

#include <cmath>
#include <cstdlib>
#include <sstream>
#include <utility>

#include "common/error.h"
#include "io/util/sha256.h"

namespace hc {

namespace random_weights {

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

}  // namespace random_weights

namespace {

void add_tensor(std::map<std::string, TensorInfo>& tensors, const std::string& name, std::vector<int64_t> shape) {
  TensorInfo t;
  t.name = name;
  t.file_name = name;
  t.dtype = DType::F32;
  t.shape = std::move(shape);
  t.data = nullptr;
  t.nbytes = 0;
  tensors[name] = t;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

RandomModel::RandomModel(ModelConfig config, uint64_t seed, const std::string& name)
    : config_(std::move(config)), seed_(seed), path_("random:" + name) {
  config_.validate(path_);
  const ModelConfig& c = config_;
  const int64_t q_out = c.n_heads * c.head_dim, kv_out = c.n_kv_heads * c.head_dim;
  add_tensor(tensors_, tensor_names::embed(), {c.vocab, c.hidden});
  add_tensor(tensors_, tensor_names::final_norm(), {c.hidden});
  if (!c.tie_embeddings) add_tensor(tensors_, tensor_names::lm_head(), {c.vocab, c.hidden});
  for (int i = 0; i < static_cast<int>(c.n_layers); ++i) {
    add_tensor(tensors_, tensor_names::attn_norm(i), {c.hidden});
    add_tensor(tensors_, tensor_names::q_proj(i), {q_out, c.hidden});
    add_tensor(tensors_, tensor_names::k_proj(i), {kv_out, c.hidden});
    add_tensor(tensors_, tensor_names::v_proj(i), {kv_out, c.hidden});
    if (c.qk_norm) {
      add_tensor(tensors_, tensor_names::q_norm(i), {c.head_dim});
      add_tensor(tensors_, tensor_names::k_norm(i), {c.head_dim});
    }
    if (c.qkv_bias) {
      add_tensor(tensors_, tensor_names::q_bias(i), {q_out});
      add_tensor(tensors_, tensor_names::k_bias(i), {kv_out});
      add_tensor(tensors_, tensor_names::v_bias(i), {kv_out});
    }
    add_tensor(tensors_, tensor_names::o_proj(i), {c.hidden, q_out});
    add_tensor(tensors_, tensor_names::mlp_norm(i), {c.hidden});
    add_tensor(tensors_, tensor_names::gate_proj(i), {c.intermediate, c.hidden});
    add_tensor(tensors_, tensor_names::up_proj(i), {c.intermediate, c.hidden});
    add_tensor(tensors_, tensor_names::down_proj(i), {c.hidden, c.intermediate});
    if (c.post_norms) {
      add_tensor(tensors_, tensor_names::post_attn_out_norm(i), {c.hidden});
      add_tensor(tensors_, tensor_names::post_mlp_norm(i), {c.hidden});
    }
  }
}

RandomTensorSpec RandomModel::spec(const std::string& name) const {
  const TensorInfo& info = tensor(name);
  RandomTensorSpec s;
  if (ends_with(name, "norm.weight")) {  // every RMSNorm: input_layernorm, post_*_layernorm, model.norm
    s.kind = RandomTensorSpec::Kind::Ones;
    return s;
  }
  s.stream = random_weights::splitmix64(seed_ ^ random_weights::fnv1a64(name));
  double std_dev;
  if (name == tensor_names::embed()) std_dev = 1.0;
  else if (ends_with(name, ".bias")) std_dev = 0.02;
  else std_dev = 1.0 / std::sqrt(static_cast<double>(info.shape.back()));  // fan_in
  s.half_range = static_cast<float>(std_dev * std::sqrt(3.0));
  return s;
}

std::vector<float> RandomModel::load_f32(const std::string& name, const std::vector<int64_t>& expected) const {
  const TensorInfo& info = tensor(name);
  if (!expected.empty() && expected != info.shape)
    throw InputError(path_, "tensor " + name + ": expected shape " + shape_string(expected) + ", got " +
                                shape_string(info.shape));
  const RandomTensorSpec s = spec(name);
  std::vector<float> out(static_cast<size_t>(info.numel()));
  if (s.kind == RandomTensorSpec::Kind::Ones) {
    std::fill(out.begin(), out.end(), 1.0f);
  } else {
    for (size_t i = 0; i < out.size(); ++i) out[i] = random_weights::value(s.stream, i, s.half_range);
  }
  return out;
}

std::vector<std::pair<std::string, std::string>> RandomModel::metadata_summary() const {
  return {{"generator", "splitmix64 counter-based, uniform, std 1/sqrt(fan_in)"},
          {"seed", std::to_string(seed_)}};
}

std::string RandomModel::fingerprint() const {
  std::ostringstream s;
  const ModelConfig& c = config_;
  s << "headcal-random-model v1 seed=" << seed_ << " arch=" << c.arch << " layers=" << c.n_layers
    << " heads=" << c.n_heads << " kv=" << c.n_kv_heads << " d=" << c.head_dim << " hidden=" << c.hidden
    << " ffn=" << c.intermediate << " vocab=" << c.vocab << " theta=" << c.rope_theta
    << " bias=" << c.qkv_bias << " tie=" << c.tie_embeddings;
  if (c.rope_interleaved || c.post_norms)  // GLM's features; a Llama-family print names neither
    s << " rotary=" << c.rotary_dims() << " interleaved=" << c.rope_interleaved << " post_norms=" << c.post_norms;
  return sha256_hex(s.str());
}

namespace {

// The fields every shape sets; each shape's function adds its own features.
struct ShapeDims {
  const char* arch;
  const char* name;
  int64_t n_layers, n_heads, n_kv_heads, head_dim, hidden, intermediate, vocab, max_context;
  double rms_eps, rope_theta;
  int64_t bos_id, eos_id;
};

ModelConfig shaped(const ShapeDims& s) {
  ModelConfig c;
  c.arch = s.arch;
  c.name = s.name;
  c.n_layers = s.n_layers;
  c.n_heads = s.n_heads;
  c.n_kv_heads = s.n_kv_heads;
  c.head_dim = s.head_dim;
  c.hidden = s.hidden;
  c.intermediate = s.intermediate;
  c.vocab = s.vocab;
  c.max_context = s.max_context;
  c.rms_eps = s.rms_eps;
  c.rope_theta = s.rope_theta;
  c.bos_id = s.bos_id;
  c.eos_id = s.eos_id;
  return c;
}

}  // namespace

ModelConfig llama3_8b_config() {
  ModelConfig c = shaped({"llama", "Llama-3-8B-shaped (random weights)", 32, 32, 8, 128, 4096, 14336, 128256, 131072,
                          1e-5, 500000.0, 128000, 128001});
  c.rope_scaling.type = RopeScalingType::Llama3;
  c.rope_scaling.factor = 8.0;
  c.rope_scaling.low_freq_factor = 1.0;
  c.rope_scaling.high_freq_factor = 4.0;
  c.rope_scaling.original_max_position = 8192;
  return c;
}

ModelConfig tiny_llama_config() {
  return shaped({"llama", "tiny Llama (random weights)", 2, 4, 2, 64, 256, 512, 512, 4096, 1e-5, 10000.0, 1, 2});
}

ModelConfig smollm2_135m_config() {
  ModelConfig c = shaped({"llama", "SmolLM2-135M-shaped (random weights)", 30, 9, 3, 64, 576, 1536, 49152, 8192, 1e-5,
                          100000.0, 1, 2});
  c.tie_embeddings = true;
  return c;
}

ModelConfig qwen3_8b_config() {
  ModelConfig c = shaped({"qwen3", "Qwen3-8B-shaped (random weights)", 36, 32, 8, 128, 4096, 12288, 151936, 131072,
                          1e-6, 1000000.0, 151643, 151645});
  c.qk_norm = true;
  c.rope_scaling.type = RopeScalingType::Yarn;  // the long-context setting Qwen's model card gives
  c.rope_scaling.factor = 4.0;
  c.rope_scaling.original_max_position = 32768;
  return c;
}

ModelConfig glm4_9b_config() {
  ModelConfig c = shaped({"glm4", "GLM-4-9B-shaped (random weights)", 40, 32, 2, 128, 4096, 13696, 151552, 131072,
                          1.5625e-07, 5000000.0, -1, 151329});
  c.rotary_dim = 64;  // partial_rotary_factor 0.5
  c.rope_interleaved = true;
  c.qkv_bias = true;
  c.post_norms = true;
  return c;
}

ModelConfig phi3_mini_config() {
  ModelConfig c = shaped({"phi3", "Phi-3-mini-128K-shaped (random weights)", 32, 32, 32, 96, 3072, 8192, 32064, 131072,
                          1e-5, 10000.0, 1, 32000});
  RopeScaling& s = c.rope_scaling;
  s.type = RopeScalingType::LongRope;
  s.original_max_position = 4096;
  s.factor = 32.0;  // 131072 / 4096
  const size_t pairs = static_cast<size_t>(c.head_dim / 2);
  s.short_factor.assign(pairs, 1.0);
  for (size_t t = 0; t < pairs; ++t)
    s.long_factor.push_back(std::pow(32.0, static_cast<double>(t) / static_cast<double>(pairs - 1)));
  return c;
}

namespace {

constexpr std::pair<const char*, ModelConfig (*)()> kShapes[] = {
    {"llama3-8b", llama3_8b_config}, {"smollm2", smollm2_135m_config}, {"tiny", tiny_llama_config},
    {"phi3-mini", phi3_mini_config}, {"glm4-9b", glm4_9b_config},     {"qwen3-8b", qwen3_8b_config}};

}  // namespace

std::string random_shape_names(const std::string& separator) {
  std::string names;
  for (const auto& shape : kShapes) names += (names.empty() ? "" : separator) + std::string(shape.first);
  return names;
}

std::unique_ptr<RandomModel> open_random_model(const std::string& spec) {
  const std::string prefix = "random:";
  if (spec.compare(0, prefix.size(), prefix) != 0) return nullptr;
  std::string rest = spec.substr(prefix.size());
  uint64_t seed = 1;
  if (auto colon = rest.find(':'); colon != std::string::npos) {
    const std::string seed_text = rest.substr(colon + 1);
    char* end = nullptr;
    seed = std::strtoull(seed_text.c_str(), &end, 10);
    if (seed_text.empty() || *end != '\0')
      throw InputError(spec, "the seed after the shape must be a non-negative integer");
    rest = rest.substr(0, colon);
  }
  for (const auto& [name, config] : kShapes)
    if (rest == name) return std::make_unique<RandomModel>(config(), seed, rest);
  throw InputError(spec, "unknown random model shape '" + rest + "' (" + random_shape_names(", ") + ")");
}

}  // namespace hc

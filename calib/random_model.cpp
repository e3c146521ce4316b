#include "calib/random_model.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

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

ModelConfig llama3_8b_config() {
  ModelConfig c;
  c.arch = "llama";
  c.name = "Llama-3-8B-shaped (random weights)";
  c.n_layers = 32;
  c.n_heads = 32;
  c.n_kv_heads = 8;
  c.head_dim = 128;
  c.hidden = 4096;
  c.intermediate = 14336;
  c.vocab = 128256;
  c.max_context = 131072;
  c.rms_eps = 1e-5;
  c.rope_theta = 500000.0;
  c.rope_scaling.type = RopeScalingType::Llama3;
  c.rope_scaling.factor = 8.0;
  c.rope_scaling.low_freq_factor = 1.0;
  c.rope_scaling.high_freq_factor = 4.0;
  c.rope_scaling.original_max_position = 8192;
  c.bos_id = 128000;
  c.eos_id = 128001;
  return c;
}

ModelConfig tiny_llama_config() {
  ModelConfig c;
  c.arch = "llama";
  c.name = "tiny Llama (random weights)";
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 64;
  c.hidden = 256;
  c.intermediate = 512;
  c.vocab = 512;
  c.max_context = 4096;
  c.rms_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.bos_id = 1;
  c.eos_id = 2;
  return c;
}

ModelConfig smollm2_135m_config() {
  ModelConfig c;
  c.arch = "llama";
  c.name = "SmolLM2-135M-shaped (random weights)";
  c.n_layers = 30;
  c.n_heads = 9;
  c.n_kv_heads = 3;
  c.head_dim = 64;
  c.hidden = 576;
  c.intermediate = 1536;
  c.vocab = 49152;
  c.max_context = 8192;
  c.rms_eps = 1e-5;
  c.rope_theta = 100000.0;
  c.tie_embeddings = true;
  c.bos_id = 1;
  c.eos_id = 2;
  return c;
}

ModelConfig glm4_9b_config() {
  ModelConfig c;
  c.arch = "glm4";
  c.name = "GLM-4-9B-shaped (random weights)";
  c.n_layers = 40;
  c.n_heads = 32;
  c.n_kv_heads = 2;
  c.head_dim = 128;
  c.hidden = 4096;
  c.intermediate = 13696;
  c.vocab = 151552;
  c.max_context = 131072;
  c.rms_eps = 1.5625e-07;
  c.rope_theta = 5000000.0;
  c.rotary_dim = 64;  // partial_rotary_factor 0.5
  c.rope_interleaved = true;
  c.qkv_bias = true;
  c.post_norms = true;
  c.bos_id = -1;
  c.eos_id = 151329;
  return c;
}

ModelConfig phi3_mini_config() {
  ModelConfig c;
  c.arch = "phi3";
  c.name = "Phi-3-mini-128K-shaped (random weights)";
  c.n_layers = 32;
  c.n_heads = 32;
  c.n_kv_heads = 32;
  c.head_dim = 96;
  c.hidden = 3072;
  c.intermediate = 8192;
  c.vocab = 32064;
  c.max_context = 131072;
  c.rms_eps = 1e-5;
  c.rope_theta = 10000.0;
  RopeScaling& s = c.rope_scaling;
  s.type = RopeScalingType::LongRope;
  s.original_max_position = 4096;
  s.factor = 32.0;  // 131072 / 4096
  const size_t pairs = static_cast<size_t>(c.head_dim / 2);
  s.short_factor.assign(pairs, 1.0);
  for (size_t t = 0; t < pairs; ++t)
    s.long_factor.push_back(std::pow(32.0, static_cast<double>(t) / static_cast<double>(pairs - 1)));
  c.bos_id = 1;
  c.eos_id = 32000;
  return c;
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
  if (rest == "llama3-8b") return std::make_unique<RandomModel>(llama3_8b_config(), seed, rest);
  if (rest == "smollm2") return std::make_unique<RandomModel>(smollm2_135m_config(), seed, rest);
  if (rest == "tiny") return std::make_unique<RandomModel>(tiny_llama_config(), seed, rest);
  if (rest == "phi3-mini") return std::make_unique<RandomModel>(phi3_mini_config(), seed, rest);
  if (rest == "glm4-9b") return std::make_unique<RandomModel>(glm4_9b_config(), seed, rest);
  throw InputError(spec, "unknown random model shape '" + rest + "' (llama3-8b, smollm2, tiny, phi3-mini or glm4-9b)");
}

}  // namespace hc

#include "io/model/model_config.h"

#include <cmath>
#include <utility>

#include "common/error.h"

namespace hc {

namespace {

// Far above any real model (Llama-3-405B: hidden 16384, vocab 128256, 126 layers), yet small
// enough that products such as vocab * hidden can never overflow int64 downstream.
constexpr int64_t kMaxSize = int64_t(1) << 24;
constexpr int64_t kMaxContext = int64_t(1) << 31;

void require_size(const std::string& source, const char* field, int64_t value, int64_t limit = kMaxSize) {
  if (value <= 0)
    throw InputError(source, std::string(field) + " must be > 0, got " + std::to_string(value));
  if (value > limit)
    throw InputError(source, std::string(field) + " = " + std::to_string(value) + " is implausibly large (limit " +
                                 std::to_string(limit) + ")");
}

void require_positive_finite(const std::string& source, const char* field, double value) {
  if (!(std::isfinite(value) && value > 0))
    throw InputError(source, std::string(field) + " must be a finite number > 0, got " + std::to_string(value));
}

}  // namespace

namespace {
const char* const kSupportedArchs[] = {"llama", "mistral", "qwen2", "qwen3", "phi3", "glm", "glm4"};
}  // namespace

bool is_supported_arch(const std::string& arch) {
  for (const char* a : kSupportedArchs)
    if (arch == a) return true;
  return false;
}

std::string supported_archs() {
  std::string out;
  for (const char* a : kSupportedArchs) out += (out.empty() ? "" : ", ") + std::string(a);
  return out;
}

void ModelConfig::validate(const std::string& source) const {
  if (!is_supported_arch(arch))
    throw InputError(source, "architecture '" + arch + "' is not supported (" + supported_archs() + ")");
  require_size(source, "n_layers (num_hidden_layers)", n_layers);
  require_size(source, "n_heads (num_attention_heads)", n_heads);
  require_size(source, "n_kv_heads (num_key_value_heads)", n_kv_heads);
  require_size(source, "head_dim", head_dim);
  require_size(source, "hidden (hidden_size)", hidden);
  require_size(source, "intermediate (intermediate_size)", intermediate);
  require_size(source, "vocab (vocab_size)", vocab);
  require_size(source, "max_context (max_position_embeddings)", max_context, kMaxContext);
  if (n_heads % n_kv_heads != 0)
    throw InputError(source, "n_heads (num_attention_heads) " + std::to_string(n_heads) +
                                 " is not a multiple of n_kv_heads (num_key_value_heads) " + std::to_string(n_kv_heads));
  // Rotate-half RoPE pairs dimension i with i + rotary_dim/2.
  if (head_dim % 2 != 0) throw InputError(source, "head_dim must be even for RoPE, got " + std::to_string(head_dim));
  if (rotary_dim < 0 || rotary_dim > head_dim || rotary_dim % 2 != 0)
    throw InputError(source, "rotary_dim (the rotated dimensions of a head) must be even and in [2, head_dim " +
                                 std::to_string(head_dim) + "], got " + std::to_string(rotary_dim));
  require_positive_finite(source, "rms_eps (rms_norm_eps)", rms_eps);
  require_positive_finite(source, "rope_theta", rope_theta);
  if (rope_theta <= 1.0) throw InputError(source, "rope_theta must be > 1, got " + std::to_string(rope_theta));

  if (rope_scaling.type != RopeScalingType::None) {
    require_positive_finite(source, "rope_scaling.factor", rope_scaling.factor);
  }
  if (rope_scaling.type == RopeScalingType::Llama3) {
    require_positive_finite(source, "rope_scaling.low_freq_factor", rope_scaling.low_freq_factor);
    require_positive_finite(source, "rope_scaling.high_freq_factor", rope_scaling.high_freq_factor);
    // The llama3 rule interpolates with 1 / (high_freq_factor - low_freq_factor).
    if (!(rope_scaling.high_freq_factor > rope_scaling.low_freq_factor))
      throw InputError(source, "rope_scaling.high_freq_factor (" + std::to_string(rope_scaling.high_freq_factor) +
                                   ") must be greater than low_freq_factor (" +
                                   std::to_string(rope_scaling.low_freq_factor) + ")");
    require_size(source, "rope_scaling.original_max_position_embeddings", rope_scaling.original_max_position,
                 kMaxContext);
  }
  if (rope_scaling.type == RopeScalingType::Yarn) {
    require_size(source, "rope_scaling.original_max_position_embeddings", rope_scaling.original_max_position,
                 kMaxContext);
    require_positive_finite(source, "rope_scaling.beta_fast", rope_scaling.beta_fast);
    require_positive_finite(source, "rope_scaling.beta_slow", rope_scaling.beta_slow);
    for (const auto& [field, value] : {std::make_pair("rope_scaling.attention_factor", rope_scaling.attention_factor),
                                       std::make_pair("rope_scaling.mscale", rope_scaling.mscale),
                                       std::make_pair("rope_scaling.mscale_all_dim", rope_scaling.mscale_all_dim)})
      if (!(std::isfinite(value) && value >= 0))
        throw InputError(source, std::string(field) + " must be a finite number >= 0, got " + std::to_string(value));
  }

  if (rope_scaling.type == RopeScalingType::LongRope) {
    require_size(source, "rope_scaling.original_max_position_embeddings", rope_scaling.original_max_position,
                 kMaxContext);
    // The default magnitude divides by ln(original_max_position_embeddings).
    if (rope_scaling.original_max_position < 2)
      throw InputError(source, "rope_scaling.original_max_position_embeddings must be at least 2 for longrope, got " +
                                   std::to_string(rope_scaling.original_max_position));
    if (!(std::isfinite(rope_scaling.attention_factor) && rope_scaling.attention_factor >= 0))
      throw InputError(source, "rope_scaling.attention_factor must be a finite number >= 0, got " +
                                   std::to_string(rope_scaling.attention_factor));
    for (const auto& [field, list] : {std::make_pair("rope_scaling.short_factor", &rope_scaling.short_factor),
                                      std::make_pair("rope_scaling.long_factor", &rope_scaling.long_factor)}) {
      if (static_cast<int64_t>(list->size()) != rotary_dims() / 2)
        throw InputError(source, std::string(field) + " has " + std::to_string(list->size()) +
                                     " entries; longrope needs one per rotary pair, " + std::to_string(rotary_dims() / 2));
      for (size_t i = 0; i < list->size(); ++i)
        if (!(std::isfinite((*list)[i]) && (*list)[i] > 0))
          throw InputError(source, std::string(field) + "[" + std::to_string(i) + "] must be a finite number > 0, got " +
                                       std::to_string((*list)[i]));
    }
  }

  if (bos_id < -1 || bos_id >= vocab)
    throw InputError(source, "bos_token_id " + std::to_string(bos_id) + " is outside the vocabulary [0, " +
                                 std::to_string(vocab) + ")");
  if (eos_id < -1 || eos_id >= vocab)
    throw InputError(source, "eos_token_id " + std::to_string(eos_id) + " is outside the vocabulary [0, " +
                                 std::to_string(vocab) + ")");
}

}  // namespace hc

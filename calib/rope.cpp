#include "calib/rope.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "common/error.h"

namespace hc {

std::vector<double> rope_inv_freq_f64(const ModelConfig& config, int64_t seq_len) {
  const int64_t rotary = config.rotary_dims();
  if (rotary <= 0 || rotary % 2 != 0 || rotary > config.head_dim)
    throw InputError("rope: the rotated dimensions must be positive, even and at most head_dim " +
                     std::to_string(config.head_dim) + ", got " + std::to_string(rotary));
  if (!(config.rope_theta > 0.0)) throw InputError("rope: rope_theta must be positive");
  const int64_t half = rotary / 2;
  const double dim = static_cast<double>(rotary);
  std::vector<double> inv_freq(static_cast<size_t>(half));  // [rotary / 2]
  for (int64_t t = 0; t < half; ++t)
    inv_freq[static_cast<size_t>(t)] = 1.0 / std::pow(config.rope_theta, static_cast<double>(2 * t) / dim);

  const RopeScaling& s = config.rope_scaling;
  switch (s.type) {
    case RopeScalingType::None:
      break;
    case RopeScalingType::Linear:
      if (!(s.factor > 0.0)) throw InputError("rope: linear scaling factor must be positive");
      for (double& f : inv_freq) f /= s.factor;
      break;
    case RopeScalingType::Llama3: {
      if (!(s.factor > 0.0) || !(s.high_freq_factor > s.low_freq_factor) || s.low_freq_factor <= 0.0 ||
          s.original_max_position <= 0)
        throw InputError("rope: llama3 scaling needs factor > 0, high_freq_factor > low_freq_factor > 0 "
                         "and original_max_position > 0");
      const double old_len = static_cast<double>(s.original_max_position);
      const double low_freq_wavelen = old_len / s.low_freq_factor;    // longer waves than this: scaled
      const double high_freq_wavelen = old_len / s.high_freq_factor;  // shorter waves than this: kept
      for (double& f : inv_freq) {
        const double wavelen = 2.0 * M_PI / f;
        if (wavelen < high_freq_wavelen) continue;
        if (wavelen > low_freq_wavelen) {
          f /= s.factor;
          continue;
        }
        const double smooth = (old_len / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1.0 - smooth) * f / s.factor + smooth * f;
      }
      break;
    }
    case RopeScalingType::Yarn: {
      if (!(s.factor > 0.0) || s.original_max_position <= 0 || !(s.beta_fast > 0.0) || !(s.beta_slow > 0.0))
        throw InputError("rope: yarn scaling needs factor, original_max_position, beta_fast and beta_slow > 0");
      // The dimension index whose pair turns `rotations` times over the pretraining context:
      // solving original_max * theta^(-idx/dim) = rotations * 2 pi for idx.
      const double orig = static_cast<double>(s.original_max_position);
      auto dim_for_rotations = [&](double rotations) {
        return dim * std::log(orig / (rotations * 2.0 * M_PI)) / (2.0 * std::log(config.rope_theta));
      };
      double low = dim_for_rotations(s.beta_fast);   // fast-turning pairs below low keep inv_freq
      double high = dim_for_rotations(s.beta_slow);  // slow pairs above high are divided by factor
      if (s.yarn_truncate) {
        low = std::floor(low);
        high = std::ceil(high);
      }
      low = std::max(low, 0.0);
      high = std::min(high, dim - 1.0);
      if (low == high) high += 0.001;  // a zero-width ramp becomes a step
      for (int64_t t = 0; t < half; ++t) {
        // ramp: 0 at or below low, 1 at or above high; the weight of the interpolated frequency.
        const double ramp = std::clamp((static_cast<double>(t) - low) / (high - low), 0.0, 1.0);
        double& f = inv_freq[static_cast<size_t>(t)];
        f = ramp * (f / s.factor) + (1.0 - ramp) * f;
      }
      break;
    }
    case RopeScalingType::LongRope: {
      const std::vector<double>& ext = seq_len > s.original_max_position ? s.long_factor : s.short_factor;
      if (static_cast<int64_t>(ext.size()) != half)
        throw InputError("rope: longrope needs one factor per rotary pair (" + std::to_string(half) + "), got " +
                         std::to_string(ext.size()));
      for (int64_t t = 0; t < half; ++t) inv_freq[static_cast<size_t>(t)] /= ext[static_cast<size_t>(t)];
      break;
    }
  }
  return inv_freq;
}

namespace {
// YaRN's magnitude correction 0.1 * m * ln(scale) + 1, and 1 when the context is not stretched.
double yarn_mscale(double scale, double m) { return scale <= 1.0 ? 1.0 : 0.1 * m * std::log(scale) + 1.0; }
}  // namespace

double rope_attention_factor(const ModelConfig& config) {
  const RopeScaling& s = config.rope_scaling;
  if (s.type == RopeScalingType::LongRope) {
    if (s.attention_factor > 0.0) return s.attention_factor;
    if (s.factor <= 1.0) return 1.0;
    return std::sqrt(1.0 + std::log(s.factor) / std::log(static_cast<double>(s.original_max_position)));
  }
  if (s.type != RopeScalingType::Yarn) return 1.0;
  if (s.attention_factor > 0.0) return s.attention_factor;
  if (s.mscale > 0.0 && s.mscale_all_dim > 0.0)
    return yarn_mscale(s.factor, s.mscale) / yarn_mscale(s.factor, s.mscale_all_dim);
  return yarn_mscale(s.factor, 1.0);
}

std::vector<float> rope_inv_freq(const ModelConfig& config, int64_t seq_len) {
  std::vector<double> f64 = rope_inv_freq_f64(config, seq_len);
  return std::vector<float>(f64.begin(), f64.end());
}

RopeTable rope_table(const ModelConfig& config, int64_t n_positions) {
  if (n_positions < 0) throw InputError("rope: negative number of positions");
  const std::vector<double> inv_freq = rope_inv_freq_f64(config, n_positions);
  const double magnitude = rope_attention_factor(config);
  RopeTable table;
  table.n_positions = n_positions;
  table.half_dim = static_cast<int64_t>(inv_freq.size());
  const size_t n = static_cast<size_t>(n_positions * table.half_dim);
  table.cos.resize(n);
  table.sin.resize(n);
  for (int64_t p = 0; p < n_positions; ++p) {
    for (int64_t t = 0; t < table.half_dim; ++t) {
      // The angle is formed in double: at position 1e5 a float product would be off by ~4e-3 rad.
      const double angle = static_cast<double>(p) * inv_freq[static_cast<size_t>(t)];
      const size_t at = static_cast<size_t>(p * table.half_dim + t);
      table.cos[at] = static_cast<float>(magnitude * std::cos(angle));
      table.sin[at] = static_cast<float>(magnitude * std::sin(angle));
    }
  }
  return table;
}

namespace {

// Rotates pair t of every head: (x[t * stride], x[t * stride + partner]) by the table's angle.
void apply_rope_pairs(const RopeTable& table, float* x, int64_t n_tokens, int64_t n_heads, int64_t head_dim,
                      int64_t stride, int64_t partner) {
  HC_ASSERT(table.half_dim > 0 && table.half_dim * 2 <= head_dim, "rope table wider than a head");
  HC_ASSERT(table.n_positions >= n_tokens, "rope table shorter than the sequence");
  const int64_t half = table.half_dim;
  for (int64_t tok = 0; tok < n_tokens; ++tok) {
    const float* c = table.cos.data() + tok * half;  // [half]
    const float* s = table.sin.data() + tok * half;  // [half]
    for (int64_t h = 0; h < n_heads; ++h) {
      float* v = x + (tok * n_heads + h) * head_dim;  // [head_dim]
      for (int64_t t = 0; t < half; ++t) {
        float& first = v[t * stride];
        float& second = v[t * stride + partner];
        const float a = first, b = second;
        first = a * c[t] - b * s[t];
        second = b * c[t] + a * s[t];
      }
    }
  }
}

}  // namespace

void apply_rope_rotate_half(const RopeTable& table, float* x, int64_t n_tokens, int64_t n_heads,
                            int64_t head_dim) {
  apply_rope_pairs(table, x, n_tokens, n_heads, head_dim, 1, table.half_dim);
}

void apply_rope_interleaved(const RopeTable& table, float* x, int64_t n_tokens, int64_t n_heads,
                            int64_t head_dim) {
  apply_rope_pairs(table, x, n_tokens, n_heads, head_dim, 2, 1);
}

}  // namespace hc

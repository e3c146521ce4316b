#pragma once
// Rotary position embedding, rotate-half convention (Hugging Face Llama): for a head vector x whose
// first r = config.rotary_dims() dimensions rotate (r = head_dim except for partial rotary) and
// pair index t < r/2, with angle a = pos * inv_freq[t]:
//   x'[t]       = x[t] * cos(a) - x[t + r/2] * sin(a)
//   x'[t + r/2] = x[t + r/2] * cos(a) + x[t] * sin(a)
// and x'[i] = x[i] for i >= r. Interleaved (GLM; config.rope_interleaved) pairs 2t with 2t + 1 by
// the same rule. The frequency table is host-side and shared by the CPU and CUDA backends.
#include <cstdint>
#include <vector>

#include "io/model/model_config.h"

namespace hc {

// inv_freq[t] = theta^(-2t/r) for t in [0, r/2) (r = rotary_dims()), then the config's scaling:
//  - Linear: divided by factor.
//  - Llama3 (Llama 3.1 reference): wavelen = 2*pi/inv_freq; wavelen < original_max/high_freq_factor
//    keeps inv_freq; wavelen > original_max/low_freq_factor divides it by factor; in between,
//    smooth = (original_max/wavelen - low) / (high - low) and
//    inv_freq = (1 - smooth) * inv_freq / factor + smooth * inv_freq.
//  - Yarn (YaRN, as transformers computes it): with low/high the dimension indices whose pairs
//    turn beta_fast / beta_slow times over original_max (floored / ceiled when yarn_truncate,
//    clamped to [0, r - 1]) and ramp = clamp((t - low) / (high - low), 0, 1),
//    inv_freq = ramp * inv_freq / factor + (1 - ramp) * inv_freq.
//  - LongRope (Phi-3): inv_freq[t] / long_factor[t] when seq_len > original_max, else
//    inv_freq[t] / short_factor[t]. seq_len is the length of the sequence being prefilled: like
//    transformers (max(position_ids) + 1), one set serves every position of a prefill.
// Computed in double, returned as float. [r / 2]
std::vector<float> rope_inv_freq(const ModelConfig& config, int64_t seq_len = 0);
std::vector<double> rope_inv_freq_f64(const ModelConfig& config, int64_t seq_len = 0);

// The factor cos and sin are multiplied by: 1, except for yarn: attention_factor when set, else
// mscale(factor, mscale) / mscale(factor, mscale_all_dim) when both are set, else mscale(factor, 1),
// with mscale(s, m) = 0.1 * m * ln(s) + 1 (1 for s <= 1); and for longrope: attention_factor when
// set, else sqrt(1 + ln(factor) / ln(original_max)) (1 for factor <= 1), at every sequence length.
// Scaling q and k both scales the logits by its square.
double rope_attention_factor(const ModelConfig& config);

// cos/sin tables for positions [0, n_positions) of a prefill of n_positions tokens (which picks
// longrope's factor set): both [n_positions, r/2], multiplied by rope_attention_factor.
// Angles are formed in double (pos * inv_freq) so large positions keep their precision.
struct RopeTable {
  int64_t n_positions = 0;
  int64_t half_dim = 0;
  std::vector<float> cos;  // [n_positions, half_dim]
  std::vector<float> sin;  // [n_positions, half_dim]
};
RopeTable rope_table(const ModelConfig& config, int64_t n_positions);

// Rotates in place the first 2 * table.half_dim dimensions of each head of `x` [n_tokens, n_heads,
// head_dim]; token t uses position t of `table`. Requires table.n_positions >= n_tokens and
// table.half_dim * 2 <= head_dim.
void apply_rope_rotate_half(const RopeTable& table, float* x, int64_t n_tokens, int64_t n_heads,
                            int64_t head_dim);
// The same with interleaved pairs (2t, 2t + 1), t < table.half_dim.
void apply_rope_interleaved(const RopeTable& table, float* x, int64_t n_tokens, int64_t n_heads,
                            int64_t head_dim);

}  // namespace hc

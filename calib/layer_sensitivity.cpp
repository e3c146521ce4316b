#include "calib/layer_sensitivity.h"

#include <algorithm>

#include "common/error.h"

namespace hc {

Profile profile_with_one_layer(const Profile& profile, int64_t layer) {
  Profile one = profile;
  for (ProfileHead& h : one.heads) {
    if (h.layer == layer) continue;
    h.pattern = Pattern::dense;
    h.p1 = h.p2 = 0;
    h.recall = h.density = 1;
    h.out_err = 0;
  }
  return one;
}

LayerWeights measure_layer_sensitivity(Engine& engine, const std::string& model_fingerprint, const Profile& profile,
                                       const std::vector<ValidationPrompt>& prompts, const ValidateOptions& options,
                                       const std::function<void(const LayerWeight&)>& on_layer) {
  if (prompts.empty()) throw InputError("sensitivity", "no prompt to measure on");
  LayerWeights result;
  result.model_fingerprint = profile.model.fingerprint;
  result.model_layers = profile.model.layers;
  double weight_sum = 0;
  for (const ValidationPrompt& p : prompts) {
    weight_sum += p.weight;
    result.tokens = std::max<int64_t>(result.tokens, static_cast<int64_t>(p.tokens.size()));
  }
  // One dense run per prompt, reused by every layer's validation ([P] x [N, hidden] host memory).
  std::vector<DenseReference> references(prompts.size());
  for (int64_t layer = 0; layer < profile.model.layers; ++layer) {
    LayerWeight lw;
    lw.layer = layer;
    bool sparse = false;
    for (int64_t h = 0; h < profile.model.heads; ++h) sparse = sparse || profile.at(layer, h).pattern != Pattern::dense;
    if (sparse) {
      const Profile one = profile_with_one_layer(profile, layer);
      for (size_t i = 0; i < prompts.size(); ++i) {
        const ValidationPrompt& p = prompts[i];
        const ValidationReport r = validate_profile_run(engine, model_fingerprint, one, p.tokens, options, &references[i]);
        double err = 0;
        for (const HeadValidation& h : r.heads)
          if (h.layer == layer) err += h.out_err;
        lw.kl += p.weight * r.mean_kl;
        lw.out_err += p.weight * err;
      }
      lw.kl /= weight_sum;
      lw.out_err /= weight_sum;
    }
    result.layers.push_back(lw);
    if (on_layer) on_layer(lw);
  }
  normalise_layer_weights(result.layers);
  return result;
}

}  // namespace hc

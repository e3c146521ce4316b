#pragma once
// Layer sensitivity (DESIGN.md "Layer weights"): for each layer of a profile, the next-token KL
// when that layer alone runs its profiled sparse heads (every other layer dense), over a set of
// prompts, and the summed output error of its heads in that run. Their ratio, normalised over the
// layers, is the layer's weight: what search --layer-weights multiplies a head's output error by.
// One dense prefill per prompt (kept on the host, [N, hidden] each) and one sparse prefill per
// (layer, prompt).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "calib/engine.h"
#include "calib/validate.h"
#include "io/calibration/layer_weights.h"
#include "io/calibration/profile.h"

namespace hc {

// `profile` with every head outside `layer` set to dense (the heads of `layer` as they are).
Profile profile_with_one_layer(const Profile& profile, int64_t layer);

// Measures every layer that has a sparse head (the others: kl 0, out_err 0, weight 1, unmeasured)
// on `prompts` (weights as in validate_prompt_set) and normalises (normalise_layer_weights).
// `on_layer` (optional) sees each layer's kl and out_err as it is done (the weights come once all
// layers are). The result's profile/prompts/tokens
// descriptions are left to the caller.
LayerWeights measure_layer_sensitivity(Engine& engine, const std::string& model_fingerprint, const Profile& profile,
                                       const std::vector<ValidationPrompt>& prompts, const ValidateOptions& options,
                                       const std::function<void(const LayerWeight&)>& on_layer = {});

}  // namespace hc

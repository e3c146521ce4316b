#pragma once
// The report's "Budget per layer" section: where a profile spends its budget (each layer's density,
// the mean over its heads, which share one dense cost) and, given layer weights (headcal
// sensitivity), what a unit of head output error costs in next-token KL in each layer.
#include <string>

#include "io/calibration/layer_weights.h"
#include "io/calibration/profile.h"

namespace hc::report {

// HTML: a heading, a sentence, one or two inline SVG charts and, with weights, a table of each
// layer's KL, output error and weight. `weights` may be null.
std::string layer_budget_section(const Profile& shown, const LayerWeights* weights);

}  // namespace hc::report

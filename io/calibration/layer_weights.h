#pragma once
// Layer weights (YAML, format headcal-layer-weights, version 1): how much next-token KL a unit of
// head output error costs in each layer, measured by `headcal sensitivity` (calib/layer_sensitivity.h)
// and read by `search --layer-weights`, which scales each head's output-error term by its layer's
// weight. An error early in the model passes through every later layer; one in a layer whose
// output the residual stream barely carries changes little: the same head output error is worth
// different amounts of KL in different layers.
#include <cstdint>
#include <string>
#include <vector>

namespace hc {

struct LayerWeight {
  int64_t layer = 0;
  double kl = 0;       // mean next-token KL with only this layer sparse, nats (weighted over prompts)
  double out_err = 0;  // sum over the layer's heads of their output error in that run (weighted mean)
  double weight = 1;   // (kl / out_err) over the mean of that ratio across measured layers; 1 if unmeasured
  bool measured = false;  // false: every head dense, or no output error to weigh
};

struct LayerWeights {
  std::string model_fingerprint;
  int64_t model_layers = 0;
  std::string profile;   // the profile whose per-layer choices were measured (path)
  std::string prompts;   // what it was measured on (prompt set description)
  int64_t tokens = 0;    // the longest prompt's length
  std::vector<LayerWeight> layers;  // ascending layer, each at most once

  // The weight of `layer`: its entry's, 1 when the file has none.
  double weight_of(int64_t layer) const;
};

// Below these a layer's sparse heads are exact to rounding (fp32 output error ~1e-7 per head, KL of
// near-identical logits ~1e-13 nats), and kl / out_err would be a ratio of noise.
constexpr double kMinMeasuredOutErr = 1e-5;
constexpr double kMinMeasuredKl = 1e-10;

// Sets `weight` from kl and out_err: layers with out_err >= kMinMeasuredOutErr and kl >=
// kMinMeasuredKl get kl / out_err divided by the mean of that ratio over them (so the weights
// average 1 and an objective's mix keeps its scale); the others get 1 and measured = false.
void normalise_layer_weights(std::vector<LayerWeight>& layers);

// Empty when `weights` were measured on the model with this fingerprint and layer count, else what
// differs ("of another model (fingerprint ..., the atlas's ...)", "for 30 layers, ... has 24"); the
// one check search and report make before using them.
std::string layer_weights_mismatch(const LayerWeights& weights, const std::string& model_fingerprint,
                                   int64_t model_layers);

std::string layer_weights_to_yaml(const LayerWeights& weights);
// Format name and version, a model fingerprint, layers ascending and inside the model, finite
// non-negative numbers, weights > 0: else InputError(source, ...).
LayerWeights parse_layer_weights_yaml(const std::string& text, const std::string& source);
LayerWeights read_layer_weights(const std::string& path);
// Written to a temporary file in the same folder and renamed onto `path`.
void write_layer_weights(const LayerWeights& weights, const std::string& path);

}  // namespace hc

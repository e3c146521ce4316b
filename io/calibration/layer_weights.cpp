#include "io/calibration/layer_weights.h"

#include <yaml-cpp/yaml.h>

#include <cmath>

#include "common/error.h"
#include "io/calibration/profile.h"
#include "io/util/mapped_file.h"
#include "io/util/yaml_util.h"

namespace hc {

namespace {

constexpr const char* kFormat = "headcal-layer-weights";
constexpr int kVersion = 1;
// As the profile and atlas readers: above any real model, below what a corrupt count could make.
constexpr int64_t kMaxLayers = 4096;

double finite_number(const YAML::Node& node, const char* key, const std::string& source, const std::string& where) {
  if (!node[key]) throw InputError(source, where + ": missing '" + key + "'");
  const double v = node[key].as<double>();
  if (!std::isfinite(v) || v < 0) throw InputError(source, where + ": '" + key + "' must be a finite number >= 0");
  return v;
}

LayerWeights parse_impl(const std::string& text, const std::string& source) {
  const YAML::Node root = load_yaml_text(text, source);
  if (!root.IsMap()) throw InputError(source, "not a layer weights file (expected a YAML mapping)");
  if (!root["format"] || root["format"].as<std::string>() != kFormat)
    throw InputError(source, std::string("not a layer weights file (format must be '") + kFormat + "')");
  if (!root["version"] || root["version"].as<int>() != kVersion)
    throw InputError(source, "unsupported layer weights version (expected " + std::to_string(kVersion) + ")");
  LayerWeights w;
  const YAML::Node model = root["model"];
  if (!model || !model["fingerprint"] || !model["layers"]) throw InputError(source, "model: needs fingerprint and layers");
  w.model_fingerprint = model["fingerprint"].as<std::string>();
  w.model_layers = model["layers"].as<int64_t>();
  if (w.model_layers < 1 || w.model_layers > kMaxLayers)
    throw InputError(source, "model: layers must be in [1, " + std::to_string(kMaxLayers) + "]");
  if (const YAML::Node m = root["measured"]) {
    if (m["profile"]) w.profile = m["profile"].as<std::string>();
    if (m["prompts"]) w.prompts = m["prompts"].as<std::string>();
    if (m["tokens"]) w.tokens = m["tokens"].as<int64_t>();
  }
  const YAML::Node layers = root["layers"];
  if (!layers || !layers.IsSequence()) throw InputError(source, "layers: expected a list");
  for (const YAML::Node& e : layers) {
    LayerWeight l;
    if (!e["layer"]) throw InputError(source, "layers entry without 'layer'");
    l.layer = e["layer"].as<int64_t>();
    const std::string where = "layers entry (layer " + std::to_string(l.layer) + ")";
    if (l.layer < 0 || l.layer >= w.model_layers)
      throw InputError(source, where + ": outside the model's " + std::to_string(w.model_layers) + " layers");
    if (!w.layers.empty() && l.layer <= w.layers.back().layer)
      throw InputError(source, where + ": layers must be listed once each, in ascending order");
    l.kl = finite_number(e, "kl", source, where);
    l.out_err = finite_number(e, "out_err", source, where);
    l.weight = finite_number(e, "weight", source, where);
    if (!(l.weight > 0)) throw InputError(source, where + ": 'weight' must be > 0");
    l.measured = e["measured"] ? e["measured"].as<bool>() : true;
    w.layers.push_back(l);
  }
  return w;
}

}  // namespace

double LayerWeights::weight_of(int64_t layer) const {
  for (const LayerWeight& l : layers)
    if (l.layer == layer) return l.weight;
  return 1.0;
}

void normalise_layer_weights(std::vector<LayerWeight>& layers) {
  double sum = 0;
  int64_t n = 0;
  for (LayerWeight& l : layers) {
    l.measured = l.out_err >= kMinMeasuredOutErr && l.kl >= kMinMeasuredKl;
    if (l.measured) sum += l.kl / l.out_err, ++n;
  }
  const double mean = n > 0 ? sum / static_cast<double>(n) : 1.0;
  for (LayerWeight& l : layers) l.weight = l.measured ? (l.kl / l.out_err) / mean : 1.0;
}

std::string layer_weights_mismatch(const LayerWeights& w, const std::string& model_fingerprint,
                                   int64_t model_layers) {
  if (w.model_fingerprint != model_fingerprint)
    return "of another model (fingerprint " + w.model_fingerprint.substr(0, 12) + ", the atlas's " +
           model_fingerprint.substr(0, 12) + ")";
  if (w.model_layers != model_layers)
    return "for " + std::to_string(w.model_layers) + " layers, the atlas's model has " + std::to_string(model_layers);
  return "";
}

std::string layer_weights_to_yaml(const LayerWeights& w) {
  YAML::Emitter out;
  out.SetDoublePrecision(10);
  out << YAML::Comment("headcal layer weights: next-token KL per unit of head output error, per layer; see DESIGN.md");
  out << YAML::BeginMap;
  out << YAML::Key << "format" << YAML::Value << kFormat;
  out << YAML::Key << "version" << YAML::Value << kVersion;
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap << YAML::Key << "fingerprint" << YAML::Value
      << w.model_fingerprint << YAML::Key << "layers" << YAML::Value << w.model_layers << YAML::EndMap;
  out << YAML::Key << "measured" << YAML::Value << YAML::BeginMap << YAML::Key << "profile" << YAML::Value << w.profile
      << YAML::Key << "prompts" << YAML::Value << w.prompts << YAML::Key << "tokens" << YAML::Value << w.tokens
      << YAML::EndMap;
  out << YAML::Key << "layers" << YAML::Value << YAML::BeginSeq;
  for (const LayerWeight& l : w.layers)
    out << YAML::Flow << YAML::BeginMap << YAML::Key << "layer" << YAML::Value << l.layer << YAML::Key << "kl"
        << YAML::Value << l.kl << YAML::Key << "out_err" << YAML::Value << l.out_err << YAML::Key << "weight"
        << YAML::Value << l.weight << YAML::Key << "measured" << YAML::Value << l.measured << YAML::EndMap;
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

LayerWeights parse_layer_weights_yaml(const std::string& text, const std::string& source) {
  try {
    return parse_impl(text, source);
  } catch (const YAML::Exception& e) {
    throw InputError(source, std::string("malformed layer weights: ") + e.what());
  }
}

LayerWeights read_layer_weights(const std::string& path) {
  return parse_layer_weights_yaml(read_whole_file(path, "cannot open layer weights"), path);
}

void write_layer_weights(const LayerWeights& weights, const std::string& path) {
  write_file_atomic(path, layer_weights_to_yaml(weights));
}

}  // namespace hc

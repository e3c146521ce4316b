// Layer weights files: normalisation, the YAML round trip, and every bad input named.
#include <fstream>
#include <string>
#include <vector>

#include "catch.h"
#include "common/error.h"
#include "io/calibration/layer_weights.h"
#include "support/test_support.h"

namespace {

hc::LayerWeights three_layers() {
  hc::LayerWeights w;
  w.model_fingerprint = "abc123";
  w.model_layers = 3;
  w.profile = "p.yaml";
  w.prompts = "prompt set default-calibration";
  w.tokens = 8192;
  // Layer 0: 0.2 nats for error 0.5 (ratio 0.4); layer 1 all dense; layer 2: ratio 0.1.
  w.layers = {{0, 0.2, 0.5, 0, false}, {1, 0, 0, 0, false}, {2, 0.05, 0.5, 0, false}};
  hc::normalise_layer_weights(w.layers);
  return w;
}

std::string good_yaml() { return hc::layer_weights_to_yaml(three_layers()); }

// The good file with `from` replaced by `to` (which must occur).
std::string edited(const std::string& from, const std::string& to) {
  std::string text = good_yaml();
  const size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  return text.replace(at, from.size(), to);
}

}  // namespace

TEST_CASE("layer weights: KL per unit of output error over its mean across measured layers", "[layer_weights]") {
  const hc::LayerWeights w = three_layers();
  REQUIRE(w.layers.size() == 3);
  // Ratios 0.4 and 0.1, mean 0.25: weights 1.6 and 0.4; the dense layer 1, unmeasured.
  CHECK(w.layers[0].weight == Approx(1.6));
  CHECK(w.layers[2].weight == Approx(0.4));
  CHECK(w.layers[1].weight == 1.0);
  CHECK(w.layers[0].measured);
  CHECK_FALSE(w.layers[1].measured);
  CHECK(w.weight_of(2) == Approx(0.4));
  CHECK(w.weight_of(7) == 1.0);  // no entry: neutral
  CHECK(hc::layer_weights_mismatch(w, "abc123", 3).empty());
  CHECK(hc::layer_weights_mismatch(w, "other", 3).find("of another model") == 0);
  CHECK(hc::layer_weights_mismatch(w, "abc123", 24) == "for 3 layers, the atlas's model has 24");

  // Nothing measured (every layer dense, no error, or errors at rounding level): all 1.
  std::vector<hc::LayerWeight> none = {{0, 0, 0, 0, false}, {1, 0.1, 0, 0, false}, {2, 1e-13, 2e-6, 0, false}};
  hc::normalise_layer_weights(none);
  for (const hc::LayerWeight& l : none) {
    CHECK(l.weight == 1.0);
    CHECK_FALSE(l.measured);
  }
  // A rounding-level layer beside a real one is left out of the mean.
  std::vector<hc::LayerWeight> mixed = {{0, 0.2, 0.5, 0, false}, {1, 1e-13, 1e-6, 0, false}, {2, 0.05, 0.5, 0, false}};
  hc::normalise_layer_weights(mixed);
  CHECK(mixed[0].weight == Approx(1.6));
  CHECK(mixed[1].weight == 1.0);
  CHECK(mixed[2].weight == Approx(0.4));
}

TEST_CASE("layer weights: YAML round trip", "[layer_weights]") {
  const hc::LayerWeights w = three_layers();
  const hc::LayerWeights back = hc::parse_layer_weights_yaml(good_yaml(), "w.yaml");
  CHECK(back.model_fingerprint == "abc123");
  CHECK(back.model_layers == 3);
  CHECK(back.profile == "p.yaml");
  CHECK(back.prompts == w.prompts);
  CHECK(back.tokens == 8192);
  REQUIRE(back.layers.size() == 3);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(back.layers[i].layer == w.layers[i].layer);
    CHECK(back.layers[i].kl == Approx(w.layers[i].kl));
    CHECK(back.layers[i].out_err == Approx(w.layers[i].out_err));
    CHECK(back.layers[i].weight == Approx(w.layers[i].weight));
    CHECK(back.layers[i].measured == w.layers[i].measured);
  }

  const std::string dir = hc::test::make_temp_dir("layer_weights");
  hc::write_layer_weights(w, dir + "/w.yaml");
  CHECK(hc::read_layer_weights(dir + "/w.yaml").layers[0].weight == Approx(1.6));
}

TEST_CASE("layer weights: bad files name the file and what is wrong", "[layer_weights]") {
  auto refused = [](const std::string& text, const std::string& needle) {
    return hc::test::throws_input_error_containing([&] { hc::parse_layer_weights_yaml(text, "w.yaml"); }, needle);
  };
  CHECK(refused(edited("headcal-layer-weights", "headcal-profile"), "not a layer weights file"));
  CHECK(refused(edited("version: 1", "version: 2"), "version"));
  CHECK(refused(edited("layers: 3", "layers: 0"), "layers must be"));
  CHECK(refused(edited("{layer: 2,", "{layer: 3,"), "outside the model"));
  CHECK(refused(edited("{layer: 2,", "{layer: 0,"), "ascending"));
  CHECK(refused(edited("kl: 0.2,", "kl: -0.2,"), "'kl'"));
  CHECK(refused(edited("kl: 0.2,", "kl: .nan,"), "'kl'"));
  CHECK(refused(edited("weight: 1,", "weight: 0,"), "'weight' must be > 0"));
  CHECK(refused(edited("fingerprint: abc123", "name: x"), "fingerprint"));
  CHECK(refused("format: [unclosed", "w.yaml"));
  CHECK(refused("- a\n- b\n", "mapping"));
  CHECK(hc::test::throws_input_error_containing([] { hc::read_layer_weights("/nonexistent/w.yaml"); },
                                                "/nonexistent/w.yaml"));
}

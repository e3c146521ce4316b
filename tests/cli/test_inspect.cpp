// `headcal inspect` end to end: exit codes and what it prints for good and bad model files.
#include <fstream>
#include <string>

#include "catch.h"
#include "io/model/gguf.h"

using hc::test::data_path;
using hc::test::run_headcal;

namespace {
bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }
}  // namespace

TEST_CASE("inspect a good GGUF prints its config, dtypes and fingerprint", "[cli][inspect]") {
  const std::string path = data_path("good_tiny_llama.gguf");
  const auto r = run_headcal("inspect '" + path + "'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.output, "format:          gguf v3"));
  CHECK(contains(r.output, "arch:            llama"));
  CHECK(contains(r.output, "name:            tiny-llama-test"));
  CHECK(contains(r.output, "layers:          2"));
  CHECK(contains(r.output, "kv heads:        2 (GQA group 2)"));
  CHECK(contains(r.output, "head_dim:        8"));
  CHECK(contains(r.output, "vocab:           64"));
  CHECK(contains(r.output, "context length:  256"));
  CHECK(contains(r.output, "rope theta:      10000"));
  CHECK(contains(r.output, "tensors:         20"));
  CHECK(contains(r.output, "dtypes:          BF16 2, F16 1, F32 6, Q4_0 3, Q4_1 3, Q4_K 1, Q6_K 1, Q8_0 3"));
  CHECK(contains(r.output, "fingerprint:     " + hc::GgufFile(path).fingerprint()));
  CHECK_FALSE(contains(r.output, "model.layers.0.self_attn.q_proj.weight"));  // only with --tensors
}

TEST_CASE("inspect --tensors lists name, dtype and shape", "[cli][inspect]") {
  const auto r = run_headcal("inspect --tensors '" + data_path("good_tiny_qwen2.gguf") + "'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.output, "arch:            qwen2"));
  CHECK(contains(r.output, "rope scaling:    linear (factor 2)"));
  CHECK(contains(r.output, "qkv bias:        yes"));
  CHECK(contains(r.output, "model.layers.1.self_attn.q_proj.bias  F32  [32]  (blk.1.attn_q.bias)"));
  CHECK(contains(r.output, "lm_head.weight  Q8_0  [64, 32]  (output.weight)"));
}

TEST_CASE("inspect --metadata shows the GGUF key/values", "[cli][inspect]") {
  const auto r = run_headcal("inspect --metadata '" + data_path("good_tiny_llama3.gguf") + "'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.output, "rope scaling:    llama3 (factor 8, low_freq_factor 1, high_freq_factor 128, original 4096)"));
  CHECK(contains(r.output, "llama.rope.scaling.original_context_length = 4096"));
}

TEST_CASE("inspect a Hugging Face directory through open_model", "[cli][inspect]") {
  const auto r = run_headcal("inspect '" + data_path("good_hf_tiny_llama") + "'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.output, "format:          safetensors"));
  CHECK(contains(r.output, "arch:            llama"));
  CHECK(contains(r.output, "fingerprint:"));
}

TEST_CASE("inspect of bad files exits 2 naming the file and the problem", "[cli][inspect]") {
  for (const auto& [file, needle] : {std::pair<std::string, std::string>{"bad_magic.gguf", "GGUF magic"},
                                     {"bad_arch.gguf", "architecture 'gptneox'"},
                                     {"bad_offset.gguf", "runs past end of file"},
                                     {"bad_missing_tensor.gguf", "missing tensor model.layers.1.mlp.down_proj.weight"}}) {
    const std::string path = data_path(file);
    const auto r = run_headcal("inspect '" + path + "'");
    INFO(r.output);
    CHECK(r.exit_code == 2);
    CHECK(contains(r.output, "headcal: error: " + path));
    CHECK(contains(r.output, needle));
  }
  const auto missing = run_headcal("inspect '" + data_path("does_not_exist.gguf") + "'");
  CHECK(missing.exit_code == 2);
  const auto usage = run_headcal("inspect");
  CHECK(usage.exit_code == 2);
}

TEST_CASE("inspect and check take random:<shape> models", "[cli][inspect]") {
  auto r = run_headcal("inspect random:llama3-8b");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.output, "format:          random"));
  CHECK(contains(r.output, "layers:          32"));
  CHECK(contains(r.output, "kv heads:        8 (GQA group 4)"));
  CHECK(contains(r.output, "head_dim:        128"));

  const std::string profile = std::string(HEADCAL_SOURCE_DIR) + "/profiles/smollm2-135m-instruct/profile.yaml";
  r = run_headcal("check '" + profile + "' --model random:smollm2");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "ok (headcal-profile v1, 30 layers x 9 heads"));
  r = run_headcal("check '" + profile + "' --model random:llama3-8b");
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "does not fit model random:llama3-8b: layers: profile 30, model 32"));

  r = run_headcal("inspect random:bogus");
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "unknown random model shape 'bogus'"));
}

TEST_CASE("inspect tells a profile from layer weights by the format key", "[cli][inspect][layer_weights]") {
  const std::string dir = std::string(HEADCAL_SOURCE_DIR) + "/profiles/qwen2.5-coder-0.5b-instruct/";
  auto r = run_headcal("inspect '" + dir + "layer-weights.yaml'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.output, "format:          headcal-layer-weights"));
  CHECK(contains(r.output, "model layers:    24"));
  CHECK(contains(r.output, "   11  "));  // one row per layer
  CHECK(contains(r.output, "   23  "));
  r = run_headcal("inspect '" + dir + "profile.yaml'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(contains(r.output, "format:          headcal-profile"));
  CHECK(contains(r.output, "objective:       mixed:1 with layer weights"));
  // A YAML file of neither kind: the profile reader names the file and what is wrong.
  const std::string dir2 = hc::test::make_temp_dir("inspect_yaml");
  std::ofstream(dir2 + "/x.yaml") << "format: something-else\n";
  r = run_headcal("inspect '" + dir2 + "/x.yaml'");
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, "x.yaml"));
}

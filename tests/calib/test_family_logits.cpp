// The CPU engine against transformers on tiny random-weight models of the newer families
// (scripts/make_family_fixtures.py), from Hugging Face directories and GGUF files: Qwen2 with
// YaRN rope scaling, and Qwen3 (per-head q/k RMSNorm, head_dim * heads != hidden). The fixture holds transformers'
// float32 logits at every position; each test also runs a control with the feature switched off,
// which must miss the same bounds, so a wrong or absent implementation fails.
//
// Bound: both sides run float32 with different summation orders. The logits reach ~12; float32
// rounding (6e-8 relative per operation) grown over 2 layers and sharp attention leaves them
// within ~1e-5 of the logit scale (measured 6e-5 for the yarn model, 5e-6 for qwen3). 1e-3 keeps
// a 15x margin, while every control misses by more than 1.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "calib/cpu_engine.h"
#include "calib/cuda_engine.h"
#include "calib/engine.h"
#include "calib/llama_weights.h"
#include "catch.h"
#include "io/model/model_file.h"
#include "support/vector_compare.h"

namespace {

constexpr double kLogitBound = 1e-3;

struct Reference {
  std::vector<int32_t> tokens;  // [N]
  std::vector<float> logits;    // [N, vocab]
};

Reference read_reference(const std::string& dir, int64_t vocab) {
  std::ifstream in(dir + "/reference.json");
  REQUIRE(in);
  const nlohmann::json j = nlohmann::json::parse(in);
  Reference ref;
  for (const auto& t : j.at("tokens")) ref.tokens.push_back(t.get<int32_t>());
  for (const auto& row : j.at("logits")) {
    REQUIRE(static_cast<int64_t>(row.size()) == vocab);
    for (const auto& v : row) ref.logits.push_back(v.get<float>());
  }
  REQUIRE(ref.logits.size() == ref.tokens.size() * static_cast<size_t>(vocab));
  return ref;
}

std::vector<float> cpu_logits(hc::LlamaWeights weights, const std::vector<int32_t>& tokens) {
  hc::CpuEngine engine(std::move(weights), 2);
  hc::PrefillRequest req;
  req.tokens = tokens;
  return engine.prefill(req).logits;
}

// Top-1 identical at every position where transformers' own top two are apart by more than the
// bound (a closer pair could swap under float32 rounding alone); returns how many such positions.
size_t check_top1(const std::vector<float>& got, const std::vector<float>& want, int64_t vocab) {
  size_t decided = 0;
  for (size_t r = 0; r < want.size() / static_cast<size_t>(vocab); ++r) {
    std::vector<float> row(want.begin() + static_cast<std::ptrdiff_t>(r * vocab),
                           want.begin() + static_cast<std::ptrdiff_t>((r + 1) * vocab));
    const auto best = std::max_element(row.begin(), row.end()) - row.begin();
    std::vector<float> sorted = row;
    std::partial_sort(sorted.begin(), sorted.begin() + 2, sorted.end(), std::greater<float>());
    if (sorted[0] - sorted[1] <= 2 * kLogitBound) continue;
    ++decided;
    const float* g = got.data() + r * vocab;
    INFO("position " << r);
    CHECK(std::max_element(g, g + vocab) - g == best);
  }
  return decided;
}

}  // namespace

TEST_CASE("qwen2 with yarn rope scaling matches transformers", "[calib][family][yarn]") {
  const std::string dir = std::string(HEADCAL_TEST_DATA) + "/good_hf_tiny_qwen2_yarn";
  const auto model = hc::open_model(dir);
  const hc::ModelConfig& c = model->config();
  REQUIRE(c.rope_scaling.type == hc::RopeScalingType::Yarn);
  REQUIRE(c.rope_scaling.original_max_position == 64);
  const Reference ref = read_reference(dir, c.vocab);
  REQUIRE(ref.tokens.size() > 64);  // positions past the original context exercise the scaling

  const std::vector<float> got = cpu_logits(hc::load_llama_weights(*model), ref.tokens);
  const double err = hc::test::max_abs_diff(got, ref.logits);
  INFO("max abs logit error " << err);
  CHECK(err < kLogitBound);
  CHECK(check_top1(got, ref.logits, c.vocab) >= ref.tokens.size() * 9 / 10);

  // Control: plain RoPE (no frequency correction, no magnitude) misses by far.
  hc::LlamaWeights plain = hc::load_llama_weights(*model);
  plain.config.rope_scaling = hc::RopeScaling{};
  CHECK(hc::test::max_abs_diff(cpu_logits(std::move(plain), ref.tokens), ref.logits) > 100 * kLogitBound);
  // Control: the corrected frequencies without the attention factor miss too.
  hc::LlamaWeights no_mscale = hc::load_llama_weights(*model);
  no_mscale.config.rope_scaling.attention_factor = 1.0;
  CHECK(hc::test::max_abs_diff(cpu_logits(std::move(no_mscale), ref.tokens), ref.logits) > 100 * kLogitBound);
}

TEST_CASE("qwen2 GGUF with yarn metadata loads the same scaling and logits", "[calib][family][yarn][gguf]") {
  const std::string data = HEADCAL_TEST_DATA;
  const auto model = hc::open_model(data + "/good_tiny_qwen2_yarn.gguf");
  const hc::RopeScaling& s = model->config().rope_scaling;
  CHECK(s.type == hc::RopeScalingType::Yarn);
  CHECK(s.factor == 4.0);
  CHECK(s.original_max_position == 64);
  CHECK(s.beta_fast == 32.0);
  CHECK(s.beta_slow == 1.0);
  const Reference ref = read_reference(data + "/good_hf_tiny_qwen2_yarn", model->config().vocab);
  const double err = hc::test::max_abs_diff(cpu_logits(hc::load_llama_weights(*model), ref.tokens), ref.logits);
  INFO("max abs logit error " << err);
  CHECK(err < kLogitBound);
}

namespace {

void check_qwen3(const hc::ModelFile& model, const std::string& ref_dir) {
  const hc::ModelConfig& c = model.config();
  CHECK(c.arch == "qwen3");
  CHECK(c.qk_norm);
  CHECK_FALSE(c.qkv_bias);
  CHECK(c.head_dim == 64);
  CHECK(c.head_dim * c.n_heads != c.hidden);  // o_proj maps 256 attention features back to 64
  const Reference ref = read_reference(ref_dir, c.vocab);
  const std::vector<float> got = cpu_logits(hc::load_llama_weights(model), ref.tokens);
  const double err = hc::test::max_abs_diff(got, ref.logits);
  INFO("max abs logit error " << err);
  CHECK(err < kLogitBound);
  CHECK(check_top1(got, ref.logits, c.vocab) >= ref.tokens.size() * 9 / 10);

  // Control: the same weights without the q/k norms miss by far.
  hc::LlamaWeights no_norm = hc::load_llama_weights(model);
  no_norm.config.qk_norm = false;
  CHECK(hc::test::max_abs_diff(cpu_logits(std::move(no_norm), ref.tokens), ref.logits) > 100 * kLogitBound);
}

}  // namespace

TEST_CASE("qwen3 from safetensors matches transformers", "[calib][family][qwen3]") {
  const std::string dir = std::string(HEADCAL_TEST_DATA) + "/good_hf_tiny_qwen3";
  const auto model = hc::open_model(dir);
  check_qwen3(*model, dir);
}

TEST_CASE("qwen3 from GGUF (attn_q_norm / attn_k_norm) matches transformers", "[calib][family][qwen3][gguf]") {
  const std::string data = HEADCAL_TEST_DATA;
  const auto model = hc::open_model(data + "/good_tiny_qwen3.gguf");
  check_qwen3(*model, data + "/good_hf_tiny_qwen3");
}

TEST_CASE("CUDA engine on the family fixtures agrees with transformers", "[calib][family][gpu]") {
  HC_REQUIRE_GPU();
  const std::string data = HEADCAL_TEST_DATA;
  for (const char* name : {"good_hf_tiny_qwen2_yarn", "good_hf_tiny_qwen3"}) {
    INFO(name);
    const auto model = hc::open_model(data + "/" + name);
    const Reference ref = read_reference(data + "/" + name, model->config().vocab);
    hc::PrefillRequest req;
    req.tokens = ref.tokens;
    const std::vector<float> got = hc::make_cuda_engine(*model)->prefill(req).logits;
    // bf16 weights and activations: transformers itself in bf16 lands at relative error 0.042
    // (yarn) and 0.014 (qwen3), top-1 0.96 and 1.0; yarn without its attention factor lands at
    // 0.28 and 0.71, plain RoPE at 1.07 and 0.21.
    CHECK(hc::test::rel_error(got, ref.logits) < 0.1);
    CHECK(hc::test::top1_agreement(got, ref.logits, model->config().vocab) >= 0.85);
  }
}

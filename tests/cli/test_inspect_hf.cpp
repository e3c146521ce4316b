// `headcal inspect` on Hugging Face directories: exit 0 with the config shown, exit 2 with the
// file and the defect named for a bad one.
#include <string>

#include "catch.h"

namespace {
bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }
std::string quoted(const std::string& s) { return "'" + s + "'"; }
}  // namespace

TEST_CASE("headcal inspect reads a Hugging Face directory", "[cli][hf]") {
  const std::string dir = hc::test::data_path("good_hf_tiny_llama");
  auto r = hc::test::run_headcal("inspect " + quoted(dir));
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "llama"));
  CHECK(contains(r.output, "safetensors"));
  CHECK(contains(r.output, "headcal/tiny-llama"));

  auto q = hc::test::run_headcal("inspect " + quoted(hc::test::data_path("good_hf_tiny_qwen2")));
  INFO(q.output);
  CHECK(q.exit_code == 0);
  CHECK(contains(q.output, "qwen2"));
  CHECK(contains(q.output, "rope pairs:      rotate-half"));
  CHECK(contains(q.output, "post norms:      no"));

  // GLM-4: half of each head rotates in interleaved pairs; the fused gate_up_proj shows as its parts.
  auto g = hc::test::run_headcal("inspect --tensors " + quoted(hc::test::data_path("good_hf_tiny_glm4")));
  INFO(g.output);
  CHECK(g.exit_code == 0);
  CHECK(contains(g.output, "arch:            glm4"));
  CHECK(contains(g.output, "head_dim:        64 (RoPE on the first 32)"));
  CHECK(contains(g.output, "rope pairs:      interleaved"));
  CHECK(contains(g.output, "post norms:      yes"));
  CHECK(contains(g.output, "model.layers.0.mlp.gate_proj.weight  F32  [96, 64]  (model.layers.0.mlp.gate_up_proj.weight rows 0-95)"));
  CHECK(contains(g.output, "model.layers.0.mlp.up_proj.weight  F32  [96, 64]  (model.layers.0.mlp.gate_up_proj.weight rows 96-191)"));
}

TEST_CASE("headcal inspect on bad HF input exits 2 naming the file", "[cli][hf]") {
  const std::string bad = hc::test::data_path("bad_hf_model_type");
  auto r = hc::test::run_headcal("inspect " + quoted(bad));
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(contains(r.output, bad + "/config.json"));
  CHECK(contains(r.output, "gpt_neox"));

  const std::string lone = hc::test::data_path("good_hf_tiny_llama/model.safetensors");
  auto s = hc::test::run_headcal("inspect " + quoted(lone));
  INFO(s.output);
  CHECK(s.exit_code == 2);
  CHECK(contains(s.output, "pass the directory"));

  auto t = hc::test::run_headcal("inspect " + quoted(hc::test::data_path("bad_hf_truncated")));
  INFO(t.output);
  CHECK(t.exit_code == 2);
  CHECK(contains(t.output, "model.safetensors"));
}

// The CPU engine on the real Qwen2.5-Coder-0.5B-Instruct GGUF against an independent numpy
// forward pass (float64, written from the Qwen2 architecture), stored in
// tests/data/qwen2.5_coder_logits.json by scripts/make_qwen_logits_fixture.py. Covers what the
// qwen2 path adds to SmolLM2's: Q/K/V biases, RoPE base 1e6 over Hugging Face-ordered rows, GQA
// groups of 7, an untied output head, Q5_0 weights. Skipped when the GGUF is absent.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <vector>

#include "calib/engine.h"
#include "catch.h"
#include "support/qwen_model.h"
#include "io/model_file.h"
#include "io/sha256.h"

namespace {

// headcal runs float32 over the same dequantised weights; the reference float64. Differences come
// from float32 accumulation over 24 layers: measured worst |logit diff| 1.6e-5 and |logsumexp
// diff| 6.5e-6 over 8 positions x top-10, logits of magnitude 14-26. The tolerances leave a ~100x
// margin for other CPUs and SIMD paths; a real bug (a missing bias, the wrong RoPE base or
// pairing, a tied head) moves logits by whole units.
constexpr double kLogitTolerance = 2e-3;
constexpr double kLogsumexpTolerance = 1e-3;

}  // namespace

TEST_CASE("cpu engine reproduces a numpy Qwen2 forward on Qwen2.5-Coder", "[calib][cpu_engine][model][qwen]") {
  const std::string model_path = hc::test::qwen_gguf_path();
  if (model_path.empty()) {
    if (std::getenv("HEADCAL_QWEN_MODEL"))
      FAIL("HEADCAL_QWEN_MODEL is set to '" << std::getenv("HEADCAL_QWEN_MODEL") << "' but no model file is there");
    WARN("skipped: Qwen2.5-Coder GGUF not found (run scripts/get-model.sh qwen2.5-coder-0.5b or set HEADCAL_QWEN_MODEL)");
    return;
  }
  std::ifstream in(hc::test::data_path("qwen2.5_coder_logits.json"));
  REQUIRE(in.good());
  const nlohmann::json fx = nlohmann::json::parse(in);

  REQUIRE(fx.at("model_sha256").get<std::string>() == hc::test::file_sha256(model_path));
  const auto model = hc::open_model(model_path);
  const auto engine = hc::make_cpu_engine(*model);
  hc::PrefillRequest req;
  req.tokens = fx.at("tokens").get<std::vector<int32_t>>();
  req.logit_positions = fx.at("positions").get<std::vector<int64_t>>();
  const int64_t vocab = engine->config().vocab;
  REQUIRE(req.tokens.size() >= 64);
  const hc::PrefillResult res = engine->prefill(req);
  REQUIRE(res.logits.size() == req.logit_positions.size() * static_cast<size_t>(vocab));

  double worst_logit = 0, worst_lse = 0;
  size_t checked = 0;
  for (size_t e = 0; e < fx.at("entries").size(); ++e) {
    const auto& entry = fx.at("entries")[e];
    const int64_t pos = entry.at("position").get<int64_t>();
    REQUIRE(req.logit_positions[e] == pos);
    const float* row = res.logits.data() + e * static_cast<size_t>(vocab);
    const auto ids = entry.at("ids").get<std::vector<int64_t>>();
    const auto ref = entry.at("logits").get<std::vector<double>>();
    REQUIRE(ids.size() == ref.size());
    REQUIRE(!ids.empty());
    CAPTURE(pos);
    const int64_t our_top = std::max_element(row, row + vocab) - row;
    CHECK(our_top == ids[0]);
    for (size_t r = 0; r < ids.size(); ++r) {
      CAPTURE(r, ids[r], row[ids[r]], ref[r]);
      const double err = std::abs(row[ids[r]] - ref[r]);
      worst_logit = std::max(worst_logit, err);
      CHECK(err <= kLogitTolerance);
    }
    double mx = *std::max_element(row, row + vocab), sum = 0;
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - mx);
    const double lse_err = std::abs(mx + std::log(sum) - entry.at("logsumexp").get<double>());
    worst_lse = std::max(worst_lse, lse_err);
    CHECK(lse_err <= kLogsumexpTolerance);
    ++checked;
  }
  CHECK(checked == req.logit_positions.size());
  WARN("Qwen2.5-Coder logits vs numpy float64: " << checked << " positions, worst |logit diff| " << worst_logit
                                                 << ", worst |logsumexp diff| " << worst_lse);
}

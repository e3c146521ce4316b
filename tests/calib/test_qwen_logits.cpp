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
#include "support/logits_fixture.h"
#include "support/qwen_model.h"
#include "io/model/model_file.h"
#include "io/util/sha256.h"

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

  hc::test::check_engine_against_logits_fixture(model_path, fx, kLogitTolerance, kLogsumexpTolerance,
                                                "Qwen2.5-Coder logits vs numpy float64");
}

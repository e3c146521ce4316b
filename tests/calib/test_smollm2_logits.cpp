// The CPU engine on the real SmolLM2-135M-Instruct GGUF against logits from Hugging Face
// transformers (an independent implementation), stored in tests/data/smollm2_logits.json by
// scripts/make_logits_fixture.py.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>

#include "calib/engine.h"
#include "catch.h"
#include "support/logits_fixture.h"
#include "io/model/model_file.h"
#include "io/util/sha256.h"

namespace {

// Both sides dequantise the same Q4_1 blocks to the same float32 weights and run the same
// float32 graph, so differences come only from accumulation order (Eigen's blocked GEMMs vs
// cuBLAS/PyTorch, our row-wise softmax vs eager attention) compounded over 30 layers. Measured
// against the committed fixture (transformers on an H100, float32): worst |logit diff| 3.1e-5 and
// worst |logsumexp diff| 1.0e-5 over 8 positions x top-10, logits of magnitude 12-27. The
// tolerances leave a ~60x margin for other CPUs and Eigen's SIMD paths, and stay far below what
// a real bug (wrong RoPE pair, wrong GQA head, a missing norm weight, an un-undone Q/K
// permutation) does, which shifts logits by whole units; the smallest top-1/top-2 gap in the
// fixture is 0.068, so top-1 agreement is not at the mercy of rounding either.
constexpr double kLogitTolerance = 2e-3;
constexpr double kLogsumexpTolerance = 1e-3;

}  // namespace

TEST_CASE("cpu engine reproduces transformers' SmolLM2 logits", "[calib][cpu_engine][model]") {
  const std::string model_path = hc::test::smollm2_gguf_path();
  if (model_path.empty()) {
    if (std::getenv("HEADCAL_MODEL"))
      FAIL("HEADCAL_MODEL is set to '" << std::getenv("HEADCAL_MODEL") << "' but no model file is there");
    WARN("skipped: SmolLM2 GGUF not found (run scripts/get-model.sh or set HEADCAL_MODEL)");
    return;
  }
  // HEADCAL_LOGITS_FIXTURE lets a developer try a freshly made fixture before it is committed.
  const char* fixture_env = std::getenv("HEADCAL_LOGITS_FIXTURE");
  const std::string fixture_path = fixture_env ? fixture_env : hc::test::data_path("smollm2_logits.json");
  if (!std::filesystem::exists(fixture_path)) {
    WARN("skipped: " << fixture_path << " missing (make it with scripts/make_logits_fixture.py)");
    return;
  }
  std::ifstream in(fixture_path);
  const nlohmann::json fx = nlohmann::json::parse(in);
  hc::test::check_engine_against_logits_fixture(model_path, fx, kLogitTolerance, kLogsumexpTolerance,
                                                "SmolLM2 logits vs transformers");
}

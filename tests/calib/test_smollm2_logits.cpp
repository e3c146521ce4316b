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
#include "io/model_file.h"
#include "io/sha256.h"

namespace {

// Both sides dequantise the same Q4_1 blocks to the same float32 weights and run the same
// float32 graph, so differences come only from accumulation order (Eigen's blocked GEMMs vs
// PyTorch's, our row-wise softmax vs eager attention) compounded over 30 layers. float32 carries
// ~7 digits; logits here are of magnitude ~10-25, and residual-stream rounding of ~1e-6 relative
// per op over ~100 ops/layer x 30 layers gives ~1e-3 absolute in the worst case. 2e-2 leaves a
// 10x margin yet is far below the logit gaps a real bug (wrong RoPE pair, wrong GQA head, a
// missing norm weight, an un-undone Q/K permutation) produces, which shift logits by whole units.
constexpr double kLogitTolerance = 2e-2;
// The log-partition sums 49152 exponentials; the same argument applies.
constexpr double kLogsumexpTolerance = 2e-2;

std::string file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  hc::Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return h.hex_digest();
}

}  // namespace

TEST_CASE("cpu engine reproduces transformers' SmolLM2 logits", "[calib][cpu_engine][model]") {
  const std::string model_path = hc::test::smollm2_gguf_path();
  if (model_path.empty()) {
    if (std::getenv("HEADCAL_MODEL"))
      FAIL("HEADCAL_MODEL is set to '" << std::getenv("HEADCAL_MODEL") << "' but no model file is there");
    WARN("skipped: SmolLM2 GGUF not found (run scripts/get-model.sh or set HEADCAL_MODEL)");
    return;
  }
  const std::string fixture_path = hc::test::data_path("smollm2_logits.json");
  if (!std::filesystem::exists(fixture_path)) {
    WARN("skipped: " << fixture_path << " missing (make it with scripts/make_logits_fixture.py)");
    return;
  }
  std::ifstream in(fixture_path);
  const nlohmann::json fx = nlohmann::json::parse(in);
  REQUIRE(fx.at("model_sha256").get<std::string>() == file_sha256(model_path));

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
  for (const auto& entry : fx.at("entries")) {
    const int64_t pos = entry.at("position").get<int64_t>();
    const auto row_it = std::find(req.logit_positions.begin(), req.logit_positions.end(), pos);
    REQUIRE(row_it != req.logit_positions.end());
    const float* row = res.logits.data() + (row_it - req.logit_positions.begin()) * vocab;  // [vocab]
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
    const double lse = mx + std::log(sum);
    const double lse_err = std::abs(lse - entry.at("logsumexp").get<double>());
    worst_lse = std::max(worst_lse, lse_err);
    CHECK(lse_err <= kLogsumexpTolerance);
    ++checked;
  }
  CHECK(checked == req.logit_positions.size());
  WARN("SmolLM2 logits vs transformers: " << checked << " positions, worst |logit diff| " << worst_logit
                                          << ", worst |logsumexp diff| " << worst_lse);
}

#pragma once
// The CPU engine on a real GGUF against a logits fixture made by an independent implementation
// (tests/data/*_logits.json: model_sha256, tokens, positions, and per position the reference
// top-k ids, their logits and the row's logsumexp). Shared by the SmolLM2 and Qwen2.5 tests.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "calib/engine.h"
#include "catch.h"
#include "io/model/model_file.h"

namespace hc::test {

// Every entry: our argmax equals the reference top id, each reference logit within
// logit_tolerance, the row's logsumexp within lse_tolerance. Reports the worst errors as a WARN.
inline void check_engine_against_logits_fixture(const std::string& model_path, const nlohmann::json& fx,
                                                double logit_tolerance, double lse_tolerance,
                                                const std::string& label) {
  REQUIRE(fx.at("model_sha256").get<std::string>() == file_sha256(model_path));
  const auto model = open_model(model_path);
  const auto engine = make_cpu_engine(*model);
  PrefillRequest req;
  req.tokens = fx.at("tokens").get<std::vector<int32_t>>();
  req.logit_positions = fx.at("positions").get<std::vector<int64_t>>();
  const int64_t vocab = engine->config().vocab;
  REQUIRE(req.tokens.size() >= 64);
  const PrefillResult res = engine->prefill(req);
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
      CHECK(err <= logit_tolerance);
    }
    double mx = *std::max_element(row, row + vocab), sum = 0;
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - mx);
    const double lse_err = std::abs(mx + std::log(sum) - entry.at("logsumexp").get<double>());
    worst_lse = std::max(worst_lse, lse_err);
    CHECK(lse_err <= lse_tolerance);
    ++checked;
  }
  CHECK(checked == req.logit_positions.size());
  WARN(label << ": " << checked << " positions, worst |logit diff| " << worst_logit << ", worst |logsumexp diff| "
             << worst_lse);
}

}  // namespace hc::test

// Every shipped profile (profiles/*/profile.yaml) passes `headcal check` against its model and a CPU
// `headcal validate` on the held-out prompt set at a small length: what CI guarantees about what we ship.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "catch.h"
#include "io/calibration/profile.h"

namespace fs = std::filesystem;
using hc::test::run_headcal;

namespace {

std::vector<std::string> shipped_profiles() {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(std::string(HEADCAL_SOURCE_DIR) + "/profiles")) {
    const fs::path p = entry.path() / "profile.yaml";
    if (fs::exists(p)) out.push_back(p.string());
  }
  return out;
}

bool model_required() { return std::getenv("HEADCAL_MODEL") != nullptr; }

}  // namespace

TEST_CASE("shipped profiles: schema and model shapes", "[cli][profiles]") {
  const auto profiles = shipped_profiles();
  REQUIRE_FALSE(profiles.empty());
  const std::string model = hc::test::smollm2_gguf_path();
  for (const std::string& path : profiles) {
    INFO(path);
    const hc::Profile profile = hc::read_profile(path);  // throws on any schema problem
    CHECK(profile.heads.size() == static_cast<size_t>(profile.model.layers * profile.model.heads));
    CHECK(profile.calibration.achieved_density <= profile.calibration.budget_value + 1e-6);
    if (model.empty()) {
      if (model_required()) FAIL("HEADCAL_MODEL is set but the model file is missing");
      WARN("skipped the model check: SmolLM2 not found (run scripts/get-model.sh)");
      continue;
    }
    const auto r = run_headcal("check '" + path + "' --model '" + model + "'");
    INFO(r.output);
    CHECK(r.exit_code == 0);
  }
}

TEST_CASE("shipped profiles: CPU validate on the held-out set at 512 tokens keeps the next-token distribution",
          "[cli][profiles][prompt_set]") {
  const std::string model = hc::test::smollm2_gguf_path();
  if (model.empty()) {
    if (model_required()) FAIL("HEADCAL_MODEL is set but the model file is missing");
    WARN("skipped: SmolLM2 not found (run scripts/get-model.sh)");
    return;
  }
  for (const std::string& path : shipped_profiles()) {
    INFO(path);
    // Every held-out prompt (prompts no calibration set uses), thresholds on each. At 512 tokens the
    // profile's windows cover most keys, so recall stays high; the thresholds catch a profile that no
    // longer matches the model or a kernel that computes the wrong set.
    const auto r = run_headcal("validate --model '" + model + "' --profile '" + path + "' --prompt-set '" +
                               HEADCAL_SOURCE_DIR + "/prompts/held-out.yaml' --length 512 --device cpu"
                               " --min-recall 0.9 --max-kl 0.05");
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(r.output.find("over 6 prompts") != std::string::npos);
    CHECK(r.output.find("thresholds (every prompt): min recall 0.9000 max KL 5.000e-02: PASS") != std::string::npos);
  }
}

// Every shipped profile (profiles/*/profile.yaml) passes `headcal check` against its model and a CPU
// `headcal validate` on the held-out prompt set at a small length: what CI guarantees about what we ship.
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "catch.h"
#include "io/calibration/profile.h"
#include "support/qwen_model.h"

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

// The model file of each shipped profile's folder (profiles/<folder>/), as get-model.sh names it.
struct ShippedModel {
  const char* folder;
  std::string (*path)();  // "" when absent
  const char* env;        // set by scripts/test.sh: the model must then be present
  const char* get_model;  // scripts/get-model.sh's name for it
};
constexpr ShippedModel kShippedModels[] = {
    {"smollm2-135m-instruct", hc::test::smollm2_gguf_path, "HEADCAL_MODEL", "smollm2-135m"},
    {"qwen2.5-coder-0.5b-instruct", hc::test::qwen_gguf_path, "HEADCAL_QWEN_MODEL", "qwen2.5-coder-0.5b"}};

// The profile's model file; "" (with a warning) when it is absent and not required. A folder
// missing from the table fails: every shipped profile is checked against its model.
std::string model_of(const std::string& profile_path) {
  const std::string folder = fs::path(profile_path).parent_path().filename().string();
  for (const ShippedModel& m : kShippedModels) {
    if (folder != m.folder) continue;
    const std::string path = m.path();
    if (path.empty()) {
      if (std::getenv(m.env) != nullptr) FAIL(m.env << " is set but the model file is missing");
      WARN("skipped: the model of profiles/" << folder << " is not fetched (scripts/get-model.sh " << m.get_model
                                              << ")");
    }
    return path;
  }
  FAIL("profiles/" << folder << " has no model in this test's table (kShippedModels)");
  return "";
}

}  // namespace

TEST_CASE("shipped profiles: schema and model shapes", "[cli][profiles]") {
  const auto profiles = shipped_profiles();
  REQUIRE_FALSE(profiles.empty());
  for (const std::string& path : profiles) {
    INFO(path);
    const hc::Profile profile = hc::read_profile(path);  // throws on any schema problem
    CHECK(profile.heads.size() == static_cast<size_t>(profile.model.layers * profile.model.heads));
    CHECK(profile.calibration.achieved_density <= profile.calibration.budget_value + 1e-6);
    const std::string model = model_of(path);
    if (model.empty()) continue;
    const auto r = run_headcal("check '" + path + "' --model '" + model + "'");
    INFO(r.output);
    CHECK(r.exit_code == 0);
  }
}

TEST_CASE("shipped profiles: CPU validate on the held-out set at 512 tokens keeps the next-token distribution",
          "[cli][profiles][prompt_set]") {
  for (const std::string& path : shipped_profiles()) {
    INFO(path);
    const std::string model = model_of(path);
    if (model.empty()) continue;
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

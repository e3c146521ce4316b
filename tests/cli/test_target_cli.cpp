// --target through the built `headcal`: search writes a profile that records its target and exports
// to that runtime without --force; validate runs each head as the target does (CPU, random:tiny);
// unknown targets and targets that would run everything dense are bad input (exit 2).
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "calib/record.h"
#include "catch.h"
#include "io/calibration/profile.h"
#include "search/atlas_fixture.h"

namespace fs = std::filesystem;
using namespace hc;
using hc::test::run_headcal;

namespace {

std::string q(const std::string& s) { return "'" + s + "'"; }

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return nlohmann::json::parse(s.str());
}

// Every head of random:tiny (2 layers x 4 heads) on `c`.
Profile tiny_profile(const GridCandidate& c, Target target) {
  std::unique_ptr<ModelFile> model = open_model_spec("random:tiny");
  const ModelConfig& m = model->config();
  Profile p;
  p.model = {m.name, m.arch, m.n_layers, m.n_heads, m.n_kv_heads, m.head_dim, model->fingerprint()};
  p.calibration.prompt = "test";
  p.calibration.tokens = 333;
  p.calibration.budget_mode = "imported";
  p.calibration.tool_version = "test";
  p.calibration.target = target;
  for (int64_t l = 0; l < m.n_layers; ++l)
    for (int64_t h = 0; h < m.n_heads; ++h) {
      ProfileHead e;
      e.layer = l;
      e.head = h;
      e.pattern = c.pattern;
      e.p1 = c.p1;
      e.p2 = c.p2;
      e.recall = 0.9;
      e.density = 0.5;
      p.heads.push_back(e);
    }
  return p;
}

}  // namespace

TEST_CASE("search --target minference: a profile that records it and exports without --force", "[cli][target]") {
  const std::string dir = test::make_temp_dir("target_search_cli");
  test::SyntheticSpec spec;
  spec.tokens = 8001;
  spec.extra = {{Pattern::block_sparse, 100, 0}};
  test::write_synthetic_atlas(dir + "/a.h5", spec);

  const auto s = run_headcal("search --atlas " + q(dir + "/a.h5") + " -o " + q(dir + "/m.yaml") +
                             " --global-density 0.3 --target minference");
  INFO(s.output);
  REQUIRE(s.exit_code == 0);
  CHECK(s.output.find("--target minference: ") != std::string::npos);  // the candidates it left out
  CHECK(s.output.find("target minference") != std::string::npos);
  const Profile p = read_profile(dir + "/m.yaml");
  CHECK(p.calibration.target == Target::minference);
  for (const ProfileHead& e : p.heads) {
    CHECK(e.pattern != Pattern::dense);
    if (e.pattern == Pattern::block_sparse) CHECK(e.p1 == 100);
  }
  const auto e = run_headcal("export " + q(dir + "/m.yaml") + " --format minference -o " + q(dir + "/m.json"));
  INFO(e.output);
  CHECK(e.exit_code == 0);
  CHECK(fs::exists(dir + "/m.json"));
  CHECK(e.output.find("would not run") == std::string::npos);

  // The same atlas searched for headcal: export refuses, and says how to search for MInference.
  REQUIRE(run_headcal("search --atlas " + q(dir + "/a.h5") + " -o " + q(dir + "/h.yaml") + " --global-density 0.3")
              .exit_code == 0);
  const auto refused = run_headcal("export " + q(dir + "/h.yaml") + " --format minference -o " + q(dir + "/h.json"));
  INFO(refused.output);
  CHECK(refused.exit_code == 2);
  CHECK(refused.output.find("search --target minference chooses only what it runs exactly") != std::string::npos);
  CHECK_FALSE(fs::exists(dir + "/h.json"));
  fs::remove_all(dir);
}

TEST_CASE("--target: an unknown target, or one that runs every head dense, exits 2 naming --target",
          "[cli][target]") {
  const std::string dir = test::make_temp_dir("target_errors_cli");
  test::SyntheticSpec spec;
  test::write_synthetic_atlas(dir + "/a.h5", spec);
  write_profile(tiny_profile({Pattern::block_sparse, 2, 0}, Target::headcal), dir + "/p.yaml");
  for (const std::string& args :
       {"search --atlas " + q(dir + "/a.h5") + " -o " + q(dir + "/x.yaml") + " --density 0.3 --target vllm",
        "calibrate --model random:tiny --length 128 --device cpu -o " + q(dir + "/x.yaml") + " --target vllm",
        "validate --model random:tiny --profile " + q(dir + "/p.yaml") + " --length 333 --device cpu --target vllm"}) {
    const auto r = run_headcal(args);
    INFO(args << "\n" << r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("--target") != std::string::npos);
    CHECK(r.output.find("unknown target 'vllm'") != std::string::npos);
    CHECK_FALSE(fs::exists(dir + "/x.yaml"));
  }
  // dual-chunk on a Llama model (random:tiny) or at 4000 tokens: every head would run dense.
  for (const std::string& args :
       {"search --atlas " + q(dir + "/a.h5") + " -o " + q(dir + "/x.yaml") + " --density 0.3 --target dual-chunk",
        "calibrate --model random:tiny --length 128 --device cpu -o " + q(dir + "/x.yaml") + " --target dual-chunk",
        "validate --model random:tiny --profile " + q(dir + "/p.yaml") +
            " --length 333 --device cpu --target dual-chunk"}) {
    const auto r = run_headcal(args);
    INFO(args << "\n" << r.output);
    CHECK(r.exit_code == 2);
    CHECK(r.output.find("--target") != std::string::npos);
    CHECK(r.output.find("dense") != std::string::npos);
    CHECK(r.output.find("recorded") == std::string::npos);  // refused before any recording
    CHECK_FALSE(fs::exists(dir + "/x.yaml"));
  }
  fs::remove_all(dir);
}

TEST_CASE("validate --target minference runs block_sparse(2) heads as block_sparse(100) (CPU)", "[cli][target]") {
  const std::string dir = test::make_temp_dir("target_validate_cli");
  write_profile(tiny_profile({Pattern::block_sparse, 2, 0}, Target::headcal), dir + "/two.yaml");
  write_profile(tiny_profile({Pattern::block_sparse, 100, 0}, Target::headcal), dir + "/hundred.yaml");
  const std::string common = " --model random:tiny --length 333 --seed 2 --device cpu --per-head --json ";

  const auto as_minference =
      run_headcal("validate --profile " + q(dir + "/two.yaml") + common + q(dir + "/m.json") + " --target minference");
  INFO(as_minference.output);
  REQUIRE(as_minference.exit_code == 0);
  CHECK(as_minference.output.find("8 head(s) run differently") != std::string::npos);
  CHECK(as_minference.output.find("block_sparse k != 100: 8 head(s)") != std::string::npos);
  CHECK(as_minference.output.find("target minference") != std::string::npos);
  const auto as_headcal = run_headcal("validate --profile " + q(dir + "/two.yaml") + common + q(dir + "/h.json"));
  REQUIRE(as_headcal.exit_code == 0);
  CHECK(as_headcal.output.find("run differently") == std::string::npos);
  const auto hundred = run_headcal("validate --profile " + q(dir + "/hundred.yaml") + common + q(dir + "/c.json"));
  REQUIRE(hundred.exit_code == 0);

  const nlohmann::json m = read_json(dir + "/m.json"), h = read_json(dir + "/h.json"), c = read_json(dir + "/c.json");
  REQUIRE(m["heads"].size() == 8);
  for (size_t i = 0; i < 8; ++i) {
    INFO("head entry " << i);
    CHECK(m["heads"][i]["pattern"] == "block_sparse");
    CHECK(m["heads"][i]["p1"] == 100);
    // What MInference runs: the density of 100 blocks (here all 6 of a 333-token prompt), not of 2.
    CHECK(m["heads"][i]["density"].get<double>() == c["heads"][i]["density"].get<double>());
    CHECK(m["heads"][i]["density"].get<double>() > h["heads"][i]["density"].get<double>() + 0.1);
    CHECK(h["heads"][i]["p1"] == 2);
  }
  CHECK(m["summary"]["density"].get<double>() == c["summary"]["density"].get<double>());

  // A profile searched for MInference validates as MInference by default: its heads unchanged.
  write_profile(tiny_profile({Pattern::block_sparse, 2, 0}, Target::minference), dir + "/recorded.yaml");
  const auto by_default = run_headcal("validate --profile " + q(dir + "/recorded.yaml") + common + q(dir + "/d.json"));
  INFO(by_default.output);
  REQUIRE(by_default.exit_code == 0);
  CHECK(read_json(dir + "/d.json")["heads"][0]["p1"] == 100);
  // --target headcal overrides the recorded target.
  const auto overridden = run_headcal("validate --profile " + q(dir + "/recorded.yaml") + common + q(dir + "/o.json") +
                                      " --target headcal");
  REQUIRE(overridden.exit_code == 0);
  CHECK(read_json(dir + "/o.json")["heads"][0]["p1"] == 2);
  fs::remove_all(dir);
}

// The search-side subcommands end to end through the built `headcal`: search, check, export,
// import, report; exit codes 0 / 2 and the files they write.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "catch.h"
#include "io/model/model_file.h"
#include "io/calibration/layer_weights.h"
#include "io/calibration/profile.h"
#include "search/atlas_fixture.h"

namespace fs = std::filesystem;
using namespace hc;

namespace {

std::string q(const std::string& s) { return "'" + s + "'"; }

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

struct Fixture {
  std::string dir = test::make_temp_dir("search_cli");
  std::string atlas = dir + "/a.h5";
  std::string other_atlas = dir + "/other.h5";
  std::string profile = dir + "/p.yaml";
  Fixture() {
    test::SyntheticSpec spec;
    test::write_synthetic_atlas(atlas, spec);
    test::SyntheticSpec other = spec;
    other.heads = 8;
    other.fingerprint = "fp-other";
    test::write_synthetic_atlas(other_atlas, other);
  }
  ~Fixture() { fs::remove_all(dir); }
};

}  // namespace

TEST_CASE("headcal search: each budget mode writes a profile; bad budgets exit 2", "[cli][search]") {
  Fixture f;
  auto r = test::run_headcal("search --atlas " + q(f.atlas) + " --out " + q(f.profile) + " --global-density 0.3");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("mean recall") != std::string::npos);
  CHECK(r.output.find("  all ") != std::string::npos);
  Profile p = read_profile(f.profile);
  CHECK(p.calibration.budget_mode == "global-density");
  CHECK(p.at(0, 3).pattern == Pattern::dense);  // the synthetic head no pattern fits

  CHECK(test::run_headcal("search --atlas " + q(f.atlas) + " --out " + q(f.dir + "/d.yaml") + " --density 0.2").exit_code == 0);
  CHECK(test::run_headcal("search --atlas " + q(f.atlas) + " --out " + q(f.dir + "/r.yaml") + " --min-recall 0.9").exit_code == 0);
  CHECK(read_profile(f.dir + "/r.yaml").calibration.budget_mode == "min-recall");

  for (const char* bad : {"--global-density 1.5", "--density 0", "--min-recall -0.2", "--density abc"}) {
    auto b = test::run_headcal("search --atlas " + q(f.atlas) + " --out " + q(f.dir + "/bad.yaml") + " " + bad);
    INFO(bad << ": " << b.output);
    CHECK(b.exit_code == 2);
    CHECK_FALSE(fs::exists(f.dir + "/bad.yaml"));
  }
  auto none = test::run_headcal("search --atlas " + q(f.atlas) + " --out " + q(f.dir + "/bad.yaml"));
  CHECK(none.exit_code == 2);
  CHECK(none.output.find("give one budget") != std::string::npos);
  CHECK(test::run_headcal("search --atlas " + q(f.atlas) + " --out x.yaml --density 0.2 --min-recall 0.9").exit_code == 2);
  auto missing = test::run_headcal("search --atlas " + q(f.dir + "/nope.h5") + " --out " + q(f.dir + "/bad.yaml") +
                                   " --density 0.2");
  CHECK(missing.exit_code == 2);
  CHECK(missing.output.find("no such atlas") != std::string::npos);
  auto filter = test::run_headcal("search --atlas " + q(f.atlas) + " --out " + q(f.dir + "/bad.yaml") +
                                  " --density 0.2 --patterns streaming");
  CHECK(filter.exit_code == 2);
}

TEST_CASE("headcal check: schema, version, atlas and model shapes", "[cli][search]") {
  Fixture f;
  REQUIRE(test::run_headcal("search --atlas " + q(f.atlas) + " --out " + q(f.profile) + " --density 0.3").exit_code == 0);
  auto ok = test::run_headcal("check " + q(f.profile));
  INFO(ok.output);
  CHECK(ok.exit_code == 0);
  CHECK(ok.output.find(": ok (headcal-profile v1, 4 layers x 6 heads") != std::string::npos);
  CHECK(test::run_headcal("check " + q(f.profile) + " --atlas " + q(f.atlas)).exit_code == 0);
  auto other = test::run_headcal("check " + q(f.profile) + " --atlas " + q(f.other_atlas));
  CHECK(other.exit_code == 2);
  CHECK(other.output.find("heads: profile 6, atlas 8") != std::string::npos);

  std::string text = slurp(f.profile);
  std::string v2 = text;
  v2.replace(v2.find("version: 1"), 10, "version: 7");
  std::ofstream(f.dir + "/v2.yaml") << v2;
  auto bad_version = test::run_headcal("check " + q(f.dir + "/v2.yaml"));
  CHECK(bad_version.exit_code == 2);
  CHECK(bad_version.output.find("version 7") != std::string::npos);
  std::string dup = text;
  dup.replace(dup.find("{layer: 0, head: 1,"), 19, "{layer: 0, head: 0,");
  std::ofstream(f.dir + "/dup.yaml") << dup;
  CHECK(test::run_headcal("check " + q(f.dir + "/dup.yaml")).exit_code == 2);
  CHECK(test::run_headcal("check " + q(f.dir + "/absent.yaml")).exit_code == 2);
}

TEST_CASE("headcal check --model compares shapes with a real model file", "[cli][search]") {
  std::string gguf = test::data_path("good_tiny_llama.gguf");
  if (!fs::exists(gguf)) {
    WARN("skipped: " << gguf << " is missing");
    return;
  }
  const ModelConfig config = open_model(gguf)->config();
  std::string dir = test::make_temp_dir("check_model");
  test::SyntheticSpec spec;
  spec.layers = config.n_layers;
  spec.heads = config.n_heads;
  spec.kv_heads = config.n_kv_heads;
  spec.head_dim = config.head_dim;
  spec.tokens = 300;
  test::write_synthetic_atlas(dir + "/a.h5", spec);
  REQUIRE(test::run_headcal("search --atlas " + q(dir + "/a.h5") + " --out " + q(dir + "/p.yaml") + " --density 0.5")
              .exit_code == 0);
  auto ok = test::run_headcal("check " + q(dir + "/p.yaml") + " --model " + q(gguf));
  INFO(ok.output);
  CHECK(ok.exit_code == 0);
  CHECK(ok.output.find("other weights") != std::string::npos);  // synthetic fingerprint: a note, not an error

  test::SyntheticSpec wrong = spec;
  wrong.layers = config.n_layers + 1;
  test::write_synthetic_atlas(dir + "/w.h5", wrong);
  REQUIRE(test::run_headcal("search --atlas " + q(dir + "/w.h5") + " --out " + q(dir + "/w.yaml") + " --density 0.5")
              .exit_code == 0);
  auto bad = test::run_headcal("check " + q(dir + "/w.yaml") + " --model " + q(gguf));
  CHECK(bad.exit_code == 2);
  CHECK(bad.output.find("layers: profile " + std::to_string(wrong.layers)) != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("headcal export and import round trip through MInference JSON", "[cli][search]") {
  Fixture f;
  REQUIRE(test::run_headcal("search --atlas " + q(f.atlas) + " --out " + q(f.profile) + " --global-density 0.3").exit_code == 0);
  std::string json = f.dir + "/p.json";
  // The synthetic profile holds a dense head, which MInference cannot run as dense at every length.
  auto refused = test::run_headcal("export " + q(f.profile) + " --format minference --out " + q(json));
  CHECK(refused.exit_code == 2);
  CHECK(refused.output.find("dense written as vertical_and_slash(N, N)") != std::string::npos);
  CHECK(refused.output.find("--force") != std::string::npos);
  CHECK_FALSE(fs::exists(json));
  auto ex = test::run_headcal("export " + q(f.profile) + " --format minference --force --out " + q(json));
  INFO(ex.output);
  REQUIRE(ex.exit_code == 0);
  CHECK(ex.output.find("dense written as vertical_and_slash(N, N)") != std::string::npos);
  nlohmann::json j = nlohmann::json::parse(slurp(json));
  REQUIRE(j.size() == 4);
  CHECK(j[0]["3"][0] == "vertical_and_slash");  // the dense head, as MInference has no dense type
  CHECK(j[0]["3"][1] == 4000);
  CHECK(test::run_headcal("export " + q(f.profile) + " --format onnx --out " + q(json)).exit_code == 2);
  auto dual = test::run_headcal("export " + q(f.profile) + " --format dual-chunk " + q(f.dir) + " --force");
  CHECK(dual.exit_code == 2);  // the profile holds a_shape and block_sparse heads: not even with --force
  CHECK(dual.output.find("not vertical_slash") != std::string::npos);
  CHECK_FALSE(fs::exists(f.dir + "/sparse_attention_config.json"));
  CHECK(test::run_headcal("export " + q(f.profile) + " --format dual-chunk").exit_code == 2);  // no MODEL_DIR
  CHECK(test::run_headcal("export " + q(f.profile) + " --format minference " + q(f.dir)).exit_code == 2);

  std::string back = f.dir + "/back.yaml";
  auto im = test::run_headcal("import " + q(json) + " --atlas " + q(f.atlas) + " --out " + q(back));
  INFO(im.output);
  REQUIRE(im.exit_code == 0);
  Profile p = read_profile(f.profile), b = read_profile(back);
  REQUIRE(b.heads.size() == p.heads.size());
  for (size_t i = 0; i < p.heads.size(); ++i) CHECK(b.heads[i].candidate() == p.heads[i].candidate());
  CHECK(b.calibration.budget_mode == "imported");
  CHECK(test::run_headcal("check " + q(back) + " --atlas " + q(f.atlas)).exit_code == 0);

  CHECK(test::run_headcal("import " + q(json) + " --atlas " + q(f.other_atlas) + " --out " + q(back)).exit_code == 2);
  CHECK(test::run_headcal("import " + q(json) + " --out " + q(back)).exit_code == 2);  // no model given
  std::ofstream(f.dir + "/broken.json") << "[{\"0\": [\"vertical_and_slash\", 30]}]";
  CHECK(test::run_headcal("import " + q(f.dir + "/broken.json") + " --atlas " + q(f.atlas) + " --out " + q(back))
            .exit_code == 2);
}

TEST_CASE("headcal report writes the page; a profile of another model exits 2", "[cli][search]") {
  Fixture f;
  REQUIRE(test::run_headcal("search --atlas " + q(f.atlas) + " --out " + q(f.profile) + " --min-recall 0.9").exit_code == 0);
  auto r = test::run_headcal("report --atlas " + q(f.atlas) + " --profile " + q(f.profile) + " --out " + q(f.dir + "/rep"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(fs::exists(f.dir + "/rep/report.html"));
  CHECK(fs::exists(f.dir + "/rep/candidates.csv"));
  CHECK(fs::exists(f.dir + "/rep/heads.csv"));
  CHECK(slurp(f.dir + "/rep/report.html").find("budget min-recall 0.9") != std::string::npos);
  auto other = test::run_headcal("report --atlas " + q(f.other_atlas) + " --profile " + q(f.profile) + " --out " +
                                 q(f.dir + "/rep2"));
  CHECK(other.exit_code == 2);
  CHECK(other.output.find("another model") != std::string::npos);
}

TEST_CASE("layer weights end to end: calibrate --weigh-layers, sensitivity, search --layer-weights; bad input exits 2",
          "[cli][search][layer_weights]") {
  Fixture f;
  const std::string profile = f.dir + "/t.yaml", weights = f.dir + "/t.layer-weights.yaml";
  auto r = test::run_headcal("calibrate --model random:tiny --length 150 --device cpu --global-density 0.5 "
                             "--weigh-layers 0.4 -o " + q(profile));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("layer weights") != std::string::npos);
  CHECK(r.output.find("--layer-weights " + weights + " -o") != std::string::npos);  // the next: report command
  const LayerWeights w = read_layer_weights(weights);
  REQUIRE(w.layers.size() == 2);
  CHECK(w.model_layers == 2);
  CHECK(w.tokens == 150);
  double sum = 0;
  int measured = 0;
  for (const LayerWeight& l : w.layers)
    if (l.measured) sum += l.weight, ++measured;
  REQUIRE(measured > 0);
  CHECK(sum / measured == Approx(1.0));
  CHECK(read_profile(profile).calibration.objective == "mixed:1 with layer weights " + weights);

  // The same measurement as its own command, and search with it.
  const std::string w2 = f.dir + "/w2.yaml";
  auto s = test::run_headcal("sensitivity --model random:tiny --profile " + q(profile) + " --length 100 --device cpu -o " +
                             q(w2));
  INFO(s.output);
  REQUIRE(s.exit_code == 0);
  CHECK(read_layer_weights(w2).tokens == 100);
  auto searched = test::run_headcal("search --atlas " + q(f.dir + "/t.atlas.h5") + " --global-density 0.5 --layer-weights " +
                                    q(w2) + " -o " + q(f.dir + "/s.yaml"));
  CHECK(searched.exit_code == 0);

  // Weights of another model, a missing file, a budget they do not fit, a profile of another model.
  auto other = test::run_headcal("search --atlas " + q(f.atlas) + " --global-density 0.5 --layer-weights " + q(w2) +
                                 " -o " + q(f.dir + "/bad.yaml"));
  CHECK(other.exit_code == 2);
  CHECK(other.output.find(w2) != std::string::npos);
  CHECK(other.output.find("another model") != std::string::npos);
  auto missing = test::run_headcal("search --atlas " + q(f.atlas) + " --global-density 0.5 --layer-weights " +
                                   q(f.dir + "/nope.yaml") + " -o " + q(f.dir + "/bad.yaml"));
  CHECK(missing.exit_code == 2);
  CHECK(missing.output.find("nope.yaml") != std::string::npos);
  CHECK_FALSE(fs::exists(f.dir + "/bad.yaml"));
  auto density = test::run_headcal("calibrate --model random:tiny --length 150 --device cpu --density 0.5 "
                                   "--weigh-layers 0.4 -o " + q(f.dir + "/bad.yaml"));
  CHECK(density.exit_code == 2);
  CHECK(density.output.find("--weigh-layers") != std::string::npos);
  auto foreign = test::run_headcal("sensitivity --model random:smollm2 --profile " + q(profile) +
                                   " --length 100 --device cpu -o " + q(f.dir + "/bad.yaml"));
  CHECK(foreign.exit_code == 2);
  CHECK_FALSE(fs::exists(f.dir + "/bad.yaml"));
}

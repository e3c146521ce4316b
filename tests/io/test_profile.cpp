// Profile YAML: round trip, validation of every rule the reader enforces, atomic writing.
#include <filesystem>
#include <fstream>
#include <functional>

#include "catch.h"
#include "common/error.h"
#include "io/calibration/profile.h"

namespace fs = std::filesystem;
using namespace hc;

namespace {

Profile sample_profile(int64_t layers = 3, int64_t heads = 4, int64_t kv_heads = 2) {
  Profile p;
  p.model = {"tiny \"model\": test", "llama", layers, heads, kv_heads, 128, "abc123"};
  p.calibration.prompt = "prompt: with 'quotes' and # hash";
  p.calibration.tokens = 1000;
  p.calibration.sha256 = "deadbeef";
  p.calibration.budget_mode = "global-density";
  p.calibration.budget_value = 0.3;
  p.calibration.achieved_density = 0.29876;
  p.calibration.mean_recall = 0.9712345678;
  p.calibration.tool_version = "0.1.0";
  const GridCandidate kinds[] = {{Pattern::dense, 0, 0},
                                 {Pattern::a_shape, 64, 512},
                                 {Pattern::vertical_slash, 30, 800},
                                 {Pattern::block_sparse, 8, 0}};
  for (int64_t l = 0; l < layers; ++l)
    for (int64_t h = 0; h < heads; ++h) {
      GridCandidate c = kinds[(l + h) % 4];
      ProfileHead e;
      e.layer = l;
      e.head = h;
      e.pattern = c.pattern;
      e.p1 = c.p1;
      e.p2 = c.p2;
      e.recall = c.pattern == Pattern::dense ? 1.0 : 0.9 + 0.01 * h + 1e-7 * l;
      e.density = c.pattern == Pattern::dense ? 1.0 : 0.1 * (1 + h);
      e.out_err = c.pattern == Pattern::dense ? 0.0 : 0.0123456789;
      p.heads.push_back(e);
    }
  return p;
}


// Replaces the first occurrence of `from` in the YAML of `p` and parses it.
std::function<void()> parse_edited(const Profile& p, const std::string& from, const std::string& to) {
  std::string text = profile_to_yaml(p);
  size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  text.replace(at, from.size(), to);
  return [text] { parse_profile_yaml(text, "edited.yaml"); };
}

}  // namespace

TEST_CASE("profile YAML round trip keeps every field", "[profile]") {
  Profile p = sample_profile();
  std::string text = profile_to_yaml(p);
  CHECK(text.find("format: headcal-profile") != std::string::npos);
  CHECK(text.find("version: 1") != std::string::npos);
  Profile q = parse_profile_yaml(text, "mem");
  CHECK(q.model.name == p.model.name);
  CHECK(q.model.arch == "llama");
  CHECK(q.model.layers == 3);
  CHECK(q.model.heads == 4);
  CHECK(q.model.kv_heads == 2);
  CHECK(q.model.head_dim == 128);
  CHECK(q.model.fingerprint == "abc123");
  CHECK(q.calibration.prompt == p.calibration.prompt);
  CHECK(q.calibration.tokens == 1000);
  CHECK(q.calibration.sha256 == "deadbeef");
  CHECK(q.calibration.budget_mode == "global-density");
  CHECK(q.calibration.budget_value == Approx(0.3));
  CHECK(q.calibration.achieved_density == Approx(0.29876));
  CHECK(q.calibration.mean_recall == Approx(0.9712345678).epsilon(1e-9));
  CHECK(q.calibration.tool_version == "0.1.0");
  CHECK(q.defaults.block == 64);
  CHECK(q.defaults.v_sink == 30);
  REQUIRE(q.heads.size() == p.heads.size());
  for (size_t i = 0; i < p.heads.size(); ++i) {
    CHECK(q.heads[i].layer == p.heads[i].layer);
    CHECK(q.heads[i].head == p.heads[i].head);
    CHECK(q.heads[i].pattern == p.heads[i].pattern);
    CHECK(q.heads[i].p1 == p.heads[i].p1);
    CHECK(q.heads[i].p2 == p.heads[i].p2);
    CHECK(q.heads[i].recall == Approx(p.heads[i].recall).epsilon(1e-9));
    CHECK(q.heads[i].density == Approx(p.heads[i].density).epsilon(1e-9));
    CHECK(q.heads[i].out_err == Approx(p.heads[i].out_err).epsilon(1e-9));
  }
  CHECK(q.at(2, 3).pattern == p.heads[2 * 4 + 3].pattern);
  // Empty strings survive too.
  p.model.fingerprint = "";
  p.calibration.prompt = "";
  Profile r = parse_profile_yaml(profile_to_yaml(p), "mem");
  CHECK(r.model.fingerprint.empty());
  CHECK(r.calibration.prompt.empty());
}

TEST_CASE("profile writer is atomic and validates first", "[profile]") {
  std::string dir = test::make_temp_dir("profile_write");
  std::string path = dir + "/p.yaml";
  Profile p = sample_profile(1, 1, 1);  // smallest model: one layer, one head
  write_profile(p, path);
  CHECK(read_profile(path).heads.size() == 1);
  Profile bad = sample_profile();
  bad.heads.pop_back();
  CHECK_THROWS_AS(write_profile(bad, path), InputError);
  CHECK(read_profile(path).heads.size() == 1);  // the old file is untouched
  for (const auto& entry : fs::directory_iterator(dir)) CHECK(entry.path().filename() == "p.yaml");
  fs::remove_all(dir);
}

TEST_CASE("profile reader refuses wrong format, version and structure", "[profile]") {
  Profile p = sample_profile();
  CHECK(hc::test::throws_input_error_containing(parse_edited(p, "version: 1", "version: 2"), "version 2"));
  CHECK(hc::test::throws_input_error_containing(parse_edited(p, "format: headcal-profile", "format: headcal-atlas"), "format"));
  CHECK(hc::test::throws_input_error_containing(parse_edited(p, "pattern: a_shape", "pattern: streaming"), "unknown pattern 'streaming'"));
  CHECK(hc::test::throws_input_error_containing(parse_edited(p, "sink: 64", "sink: -1"), "sink = -1"));
  CHECK(hc::test::throws_input_error_containing(parse_edited(p, "v: 30", "v: 10"), "below v_sink"));
  CHECK(hc::test::throws_input_error_containing(parse_edited(p, "k: 8", "k: 1"), "k = 1"));
  CHECK(hc::test::throws_input_error_containing(parse_edited(p, "sink: 64", "sink: 64, v: 3"), "unknown key 'v'"));
  CHECK(hc::test::throws_input_error_containing(parse_edited(p, "{layer: 0, head: 1,", "{layer: 0, head: 0,"), "more than once"));
  CHECK(hc::test::throws_input_error_containing(parse_edited(p, "{layer: 2, head: 3,", "{layer: 3, head: 3,"), "outside the model"));
  CHECK(hc::test::throws_input_error_containing(parse_edited(p, "{mode: global-density, value: 0.3}", "{mode: global-density, value: 1.5}"),
                          "(0, 1]"));
  CHECK(hc::test::throws_input_error_containing(parse_edited(p, "{mode: global-density", "{mode: cheapest"), "budget.mode"));
  CHECK(hc::test::throws_input_error_containing(parse_edited(p, "kv_heads: 2", "kv_heads: 3"), "multiple of"));
  CHECK(hc::test::throws_input_error_containing(parse_edited(p, "tokens: 1000", "tokens: lots"), "wrong type"));
  CHECK(hc::test::throws_input_error_containing(parse_edited(p, "recall: 1,", "recall: 2,"), "recall"));
  CHECK(hc::test::throws_input_error_containing([] { parse_profile_yaml("heads: [", "x.yaml"); }, "YAML"));
  CHECK(hc::test::throws_input_error_containing([] { parse_profile_yaml("- 1\n- 2\n", "x.yaml"); }, "mapping"));
  CHECK(hc::test::throws_input_error_containing([] { read_profile("/nonexistent/p.yaml"); }, "cannot open"));

  Profile missing = sample_profile();
  missing.heads.erase(missing.heads.begin() + 5);
  CHECK(hc::test::throws_input_error_containing([&] { validate_profile(missing, "m"); }, "layer 1, head 1"));
  Profile unsorted = sample_profile();
  std::swap(unsorted.heads[0], unsorted.heads[1]);
  CHECK(hc::test::throws_input_error_containing([&] { validate_profile(unsorted, "u"); }, "sorted"));
}

TEST_CASE("profile shapes are compared with a model and with another profile", "[profile]") {
  Profile p = sample_profile();
  ModelConfig c;
  c.n_layers = 3;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 128;
  CHECK(profile_shape_mismatch(p.model, c).empty());
  c.n_kv_heads = 4;
  CHECK(profile_shape_mismatch(p.model, c) == "kv_heads: profile 2, model 4");
  c.n_kv_heads = 2;
  c.head_dim = 64;
  CHECK(profile_shape_mismatch(p.model, c).find("head_dim") == 0);
  ProfileModel other = p.model;
  CHECK(profile_model_mismatch(p.model, other, "profile", "atlas").empty());
  other.fingerprint = "zzz";
  CHECK(profile_model_mismatch(p.model, other, "profile", "atlas") == "model fingerprint: profile abc123, atlas zzz");
}

TEST_CASE("the profile's target: written when not headcal, read back, absent means headcal", "[profile][target]") {
  Profile p = sample_profile();
  // A headcal profile carries no target key: older readers read it as before.
  CHECK(profile_to_yaml(p).find("target") == std::string::npos);
  CHECK(parse_profile_yaml(profile_to_yaml(p), "p.yaml").calibration.target == Target::headcal);
  for (Target t : {Target::minference, Target::dual_chunk}) {
    p.calibration.target = t;
    const std::string text = profile_to_yaml(p);
    CHECK(text.find(std::string("target: ") + target_name(t)) != std::string::npos);
    CHECK(parse_profile_yaml(text, "p.yaml").calibration.target == t);
  }
  CHECK(test::throws_input_error_containing(parse_edited(p, "target: dual-chunk", "target: vllm"),
                                            "calibration.target 'vllm' is not one of headcal, minference, dual-chunk"));

  Target t = Target::headcal;
  CHECK(parse_target("dual-chunk", &t));
  CHECK(t == Target::dual_chunk);
  CHECK_FALSE(parse_target("dual_chunk", &t));  // the option spelling only
  CHECK(std::string(target_name(Target::minference)) == "minference");
}

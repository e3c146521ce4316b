// MInference JSON export/import: the mapping documented in io/calibration/minference_json.h, round trips,
// a config in MInference's own shipped style, and bad input.
#include <nlohmann/json.hpp>

#include <functional>

#include "catch.h"
#include "common/error.h"
#include "io/calibration/minference_json.h"

using namespace hc;

namespace {

Profile four_pattern_profile() {
  Profile p;
  p.model = {"m", "llama", 2, 4, 2, 64, "fp"};
  p.calibration = {"prompt", 2000, "sha", "global-density", 0.3, 0.3, 0.95, "0.1.0", "", 1};
  const GridCandidate kinds[] = {{Pattern::dense, 0, 0},
                                 {Pattern::a_shape, 64, 512},
                                 {Pattern::vertical_slash, 30, 800},
                                 {Pattern::block_sparse, 8, 0}};
  for (int64_t l = 0; l < 2; ++l)
    for (int64_t h = 0; h < 4; ++h) {
      ProfileHead e;
      e.layer = l;
      e.head = h;
      GridCandidate c = kinds[(l + h) % 4];
      e.pattern = c.pattern;
      e.p1 = c.p1;
      e.p2 = c.p2;
      e.recall = c.pattern == Pattern::dense ? 1 : 0.9;
      e.density = c.pattern == Pattern::dense ? 1 : 0.2;
      p.heads.push_back(e);
    }
  return p;
}

MInferenceImportOptions import_options(int64_t layers, int64_t heads, int64_t tokens) {
  MInferenceImportOptions o;
  o.model = {"m", "llama", layers, heads, heads, 64, "fp"};
  o.tokens = tokens;
  o.prompt = "imported";
  o.tool_version = "test";
  return o;
}


}  // namespace

TEST_CASE("export writes MInference's list of per-layer head dicts", "[minference]") {
  Profile p = four_pattern_profile();
  MInferenceExport ex = export_minference(p);
  nlohmann::json j = nlohmann::json::parse(ex.json);
  REQUIRE(j.is_array());
  REQUIRE(j.size() == 2);
  REQUIRE(j[0].size() == 4);
  // layer 0: head 0 dense, 1 a_shape, 2 vertical_slash, 3 block_sparse
  CHECK(j[0]["0"] == nlohmann::json({"vertical_and_slash", 2000, 2000, 1.0}));
  CHECK(j[0]["1"] == nlohmann::json({"stream_llm", 64, 512, 0.9}));
  CHECK(j[0]["2"] == nlohmann::json({"vertical_and_slash", 30, 800, 0.9}));
  CHECK(j[0]["3"] == nlohmann::json({"block_sparse", 8, 64, 0.9}));
  CHECK(j[1]["0"][0] == "stream_llm");  // layer 1 is shifted by one
  // The changes MInference would make: the two dense heads and the two block_sparse k = 8 heads;
  // the a_shape and vertical_slash(30, 800) heads run as they are.
  REQUIRE(ex.changes.size() == 4);
  CHECK(ex.changes[0].layer == 0);
  CHECK(ex.changes[0].head == 0);
  CHECK(ex.changes[0].kind.find("dense") != std::string::npos);
  CHECK(ex.changes[1].kind == "block_sparse k != 100");
  CHECK(ex.changes[1].layer == 0);
  CHECK(ex.changes[1].head == 3);
}

TEST_CASE("export for vLLM's dual-chunk backend refuses non vertical-slash heads", "[minference]") {
  Profile p = four_pattern_profile();
  MInferenceExportOptions dual{Target::dual_chunk};
  CHECK(hc::test::throws_input_error_containing([&] { export_minference(p, dual); }, "only vertical_and_slash"));
  for (ProfileHead& h : p.heads)
    if (h.pattern == Pattern::a_shape || h.pattern == Pattern::block_sparse) {
      h.pattern = Pattern::vertical_slash;
      h.p1 = 30;
      h.p2 = 100;
    }
  MInferenceExport ex = export_minference(p, dual);
  CHECK(nlohmann::json::parse(ex.json)[0]["1"][0] == "vertical_and_slash");
  bool bump_listed = false;
  for (const auto& c : ex.changes) bump_listed |= c.runtime.find("130") != std::string::npos;
  CHECK(bump_listed);
}

TEST_CASE("export then import gives the same patterns back", "[minference]") {
  Profile p = four_pattern_profile();
  MInferenceImport im = import_minference(export_minference(p).json, "rt.json", import_options(2, 4, 2000));
  REQUIRE(im.profile.heads.size() == p.heads.size());
  for (size_t i = 0; i < p.heads.size(); ++i) {
    INFO("head " << i);
    CHECK(im.profile.heads[i].pattern == p.heads[i].pattern);
    CHECK(im.profile.heads[i].p1 == p.heads[i].p1);
    CHECK(im.profile.heads[i].p2 == p.heads[i].p2);
  }
  CHECK(im.profile.calibration.budget_mode == "imported");
  CHECK(im.profile.at(0, 0).recall == 1.0);  // dense is known
  CHECK(im.profile.at(0, 1).recall == 0.0);  // the rest: not measured
  // With a longer reference length the exported "dense" is only vertical_slash(2000, 2000).
  MInferenceImport longer = import_minference(export_minference(p).json, "rt.json", import_options(2, 4, 4096));
  CHECK(longer.profile.at(0, 0).pattern == Pattern::vertical_slash);
}

TEST_CASE("import reads a config written the way MInference ships them", "[minference]") {
  // Integer scores, head keys as strings, layer objects in a list (Llama-3-8B-262K style).
  std::string text =
      R"([{"0": ["vertical_and_slash", 1000, 6096, 336], "1": ["vertical_and_slash", 30, 800, 26473],
           "2": ["vertical_and_slash", 3500, 100, 0], "3": ["stream_llm", 100, 800, 5]},
          {"3": ["block_sparse", 8, 1, 7], "2": ["vertical_and_slash", 10, 50, 1],
           "1": ["vertical_and_slash", 500, 700, 95889], "0": ["vertical_and_slash", 100, 750, 1.5]}])";
  MInferenceImport im = import_minference(text, "llama.json", import_options(2, 4, 8192));
  const Profile& p = im.profile;
  CHECK(p.at(0, 0).candidate() == GridCandidate{Pattern::vertical_slash, 1000, 6096});
  CHECK(p.at(0, 2).candidate() == GridCandidate{Pattern::vertical_slash, 3500, 100});
  CHECK(p.at(0, 3).candidate() == GridCandidate{Pattern::a_shape, 100, 800});
  CHECK(p.at(1, 3).candidate() == GridCandidate{Pattern::block_sparse, 100, 0});  // MInference's fixed top-k
  CHECK(p.at(1, 2).candidate() == GridCandidate{Pattern::vertical_slash, 30, 100});  // raised to the forced sets
  CHECK(im.notes.size() == 3);  // v raised, s raised, block top-k
}

TEST_CASE("import bad input names the problem", "[minference]") {
  auto opts = import_options(2, 2, 1000);
  auto imp = [&](const std::string& text) { return [=] { import_minference(text, "x.json", opts); }; };
  CHECK(hc::test::throws_input_error_containing(imp("{"), "not valid JSON"));
  CHECK(hc::test::throws_input_error_containing(imp("{}"), "expected a list"));
  CHECK(hc::test::throws_input_error_containing(imp(R"([{"0": ["stream_llm", 1, 2, 0], "1": ["stream_llm", 1, 2, 0]}])"),
                          "has 1 layers, the model has 2"));
  std::string ok_layer = R"({"0": ["stream_llm", 1, 2, 0], "1": ["stream_llm", 1, 2, 0]})";
  CHECK(hc::test::throws_input_error_containing(imp("[" + ok_layer + R"(, {"0": ["stream_llm", 1, 2, 0]}])"), "no entry for head 1"));
  CHECK(hc::test::throws_input_error_containing(imp("[" + ok_layer + R"(, {"0": ["stream_llm", 1, 2, 0], "2": ["stream_llm", 1, 2, 0]}])"),
                          "outside the model"));
  CHECK(hc::test::throws_input_error_containing(imp("[" + ok_layer + R"(, {"0": ["dilated", 1, 2, 0], "1": ["stream_llm", 1, 2, 0]}])"),
                          "unknown type 'dilated'"));
  CHECK(hc::test::throws_input_error_containing(imp("[" + ok_layer + R"(, {"0": ["stream_llm", 1.5, 2, 0], "1": ["stream_llm", 1, 2, 0]}])"),
                          "not a non-negative integer"));
  CHECK(hc::test::throws_input_error_containing(imp("[" + ok_layer + R"(, {"0": ["stream_llm", -1, 2, 0], "1": ["stream_llm", 1, 2, 0]}])"),
                          "outside"));
  CHECK(hc::test::throws_input_error_containing(imp("[" + ok_layer + R"(, {"0": ["stream_llm", 1, 2], "1": ["stream_llm", 1, 2, 0]}])"),
                          "[type, p1, p2, score]"));
  CHECK(hc::test::throws_input_error_containing(imp("[" + ok_layer + R"(, {"x": ["stream_llm", 1, 2, 0], "1": ["stream_llm", 1, 2, 0]}])"),
                          "integers"));
  CHECK(hc::test::throws_input_error_containing(imp("[" + ok_layer + R"(, {"0": ["stream_llm", 1, 0, 0], "1": ["stream_llm", 1, 2, 0]}])"),
                          "n_local"));
}

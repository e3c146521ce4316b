// Candidate grids: the default grid scaled to N, the YAML grid file, and its bad inputs.
#include <functional>
#include <algorithm>
#include <filesystem>
#include <fstream>

#include "catch.h"
#include "common/error.h"
#include "io/calibration/grid.h"

using namespace hc;

namespace {

int count_of(const Grid& g, Pattern k) {
  return static_cast<int>(std::count_if(g.candidates.begin(), g.candidates.end(),
                                        [&](const GridCandidate& c) { return c.pattern == k; }));
}


}  // namespace

TEST_CASE("pattern names round trip and unknown names are refused", "[grid]") {
  for (int v = 0; v < kNumPatterns; ++v) {
    Pattern k;
    REQUIRE(find_pattern(pattern_name(static_cast<Pattern>(v)), &k));
    CHECK(static_cast<int>(k) == v);
  }
  Pattern k;
  CHECK_FALSE(find_pattern("streaming", &k));
  CHECK(describe_candidate({Pattern::vertical_slash, 30, 800}) == "vertical_slash(v=30, s=800)");
  CHECK(describe_candidate({Pattern::block_sparse, 8, 0}) == "block_sparse(k=8)");
  CHECK(describe_candidate({}) == "dense");
}

TEST_CASE("parameter ranges follow DESIGN.md", "[grid]") {
  PatternDefaults d;
  CHECK(candidate_problem({Pattern::a_shape, 0, 1}, d).empty());
  CHECK_FALSE(candidate_problem({Pattern::a_shape, -1, 64}, d).empty());
  CHECK_FALSE(candidate_problem({Pattern::a_shape, 64, 0}, d).empty());
  CHECK(candidate_problem({Pattern::vertical_slash, 30, 100}, d).empty());
  CHECK_FALSE(candidate_problem({Pattern::vertical_slash, 29, 100}, d).empty());
  CHECK_FALSE(candidate_problem({Pattern::vertical_slash, 30, 99}, d).empty());
  CHECK(candidate_problem({Pattern::block_sparse, 2, 0}, d).empty());
  CHECK_FALSE(candidate_problem({Pattern::block_sparse, 1, 0}, d).empty());
  CHECK_FALSE(candidate_problem({Pattern::dense, 1, 0}, d).empty());
}

TEST_CASE("default grid scales with N, is sorted, unique and valid", "[grid]") {
  PatternDefaults d;
  for (int64_t n : {1, 40, 1000, 8192, 131072}) {
    Grid g = default_grid(n, d);
    INFO("N = " << n);
    REQUIRE_FALSE(g.candidates.empty());
    CHECK(std::is_sorted(g.candidates.begin(), g.candidates.end()));
    CHECK(std::adjacent_find(g.candidates.begin(), g.candidates.end()) == g.candidates.end());
    CHECK(count_of(g, Pattern::dense) == 0);
    CHECK(count_of(g, Pattern::a_shape) >= 1);
    CHECK(count_of(g, Pattern::vertical_slash) >= 1);
    CHECK(count_of(g, Pattern::block_sparse) >= 1);
    for (const GridCandidate& c : g.candidates) CHECK(candidate_problem(c, d).empty());
  }
  // At 8K: a_shape windows reach N/2, vertical-slash offsets N/2, block-sparse k up to nb/2.
  Grid g = default_grid(8192, d);
  auto has = [&](GridCandidate c) { return std::find(g.candidates.begin(), g.candidates.end(), c) != g.candidates.end(); };
  CHECK(has({Pattern::a_shape, 64, 4096}));
  CHECK(has({Pattern::a_shape, 128, 128}));
  CHECK(has({Pattern::vertical_slash, 30, 100}));
  CHECK(has({Pattern::vertical_slash, 1024, 4096}));
  CHECK(has({Pattern::block_sparse, 2, 0}));
  CHECK(has({Pattern::block_sparse, 64, 0}));
  // Longer prompts get larger parameters.
  Grid big = default_grid(131072, d);
  CHECK(big.candidates.back().p1 > g.candidates.back().p1);
  CHECK(g.candidates.size() > 40);
  CHECK_THROWS_AS(default_grid(0, d), InputError);
}

TEST_CASE("grid YAML: lists expand, fractions of N resolve", "[grid]") {
  std::string text =
      "format: headcal-grid\nversion: 1\ncandidates:\n"
      "  - {pattern: a_shape, sink: 64, local: [512, 0.25N]}\n"
      "  - {pattern: vertical_slash, v: [30, 1000], s: [100, 800]}\n"
      "  - {pattern: block_sparse, k: 4}\n"
      "  - {pattern: block_sparse, k: 4}\n";
  Grid g = parse_grid_yaml(text, "g.yaml", 4000);
  CHECK(g.candidates.size() == 2 + 4 + 1);  // duplicate block_sparse merged
  CHECK(g.candidates[0] == GridCandidate{Pattern::a_shape, 64, 512});
  CHECK(g.candidates[1] == GridCandidate{Pattern::a_shape, 64, 1000});
  CHECK(g.candidates.back() == GridCandidate{Pattern::block_sparse, 4, 0});
}

TEST_CASE("grid YAML bad input: unknown pattern, keys, ranges, version", "[grid]") {
  auto parse = [](const std::string& body, const std::string& head = "format: headcal-grid\nversion: 1\n") {
    return [=] { parse_grid_yaml(head + body, "g.yaml", 1000); };
  };
  CHECK(hc::test::throws_input_error_containing(parse("candidates:\n  - {pattern: streaming, sink: 4, local: 64}\n"), "unknown pattern 'streaming'"));
  CHECK(hc::test::throws_input_error_containing(parse("candidates:\n  - {pattern: a_shape, sink: 4, window: 64}\n"), "unknown key 'window'"));
  CHECK(hc::test::throws_input_error_containing(parse("candidates:\n  - {pattern: a_shape, sink: 4}\n"), "needs 'local'"));
  CHECK(hc::test::throws_input_error_containing(parse("candidates:\n  - {pattern: vertical_slash, v: 10, s: 800}\n"), "below v_sink"));
  CHECK(hc::test::throws_input_error_containing(parse("candidates:\n  - {pattern: block_sparse, k: 1}\n"), "k = 1"));
  CHECK(hc::test::throws_input_error_containing(parse("candidates:\n  - {pattern: block_sparse, k: abc}\n"), "not an integer"));
  CHECK(hc::test::throws_input_error_containing(parse("candidates:\n  - {pattern: block_sparse, k: -0.5N}\n"), "fraction"));
  CHECK(hc::test::throws_input_error_containing(parse("candidates:\n  - {pattern: dense}\n"), "always a candidate"));
  CHECK(hc::test::throws_input_error_containing(parse("candidates: []\n"), "non-empty"));
  CHECK(hc::test::throws_input_error_containing(parse("candidates:\n  - {pattern: a_shape, sink: 4, local: 8}\n",
                                "format: headcal-grid\nversion: 2\n"),
                          "version"));
  CHECK(hc::test::throws_input_error_containing(parse("candidates:\n  - {pattern: a_shape, sink: 4, local: 8}\n", "format: other\nversion: 1\n"),
                          "format"));
  CHECK(hc::test::throws_input_error_containing(parse("candidates: [ {pattern: a_shape\n"), "YAML"));
  CHECK(hc::test::throws_input_error_containing([] { read_grid_file("/nonexistent/grid.yaml", 100); }, "cannot open"));
}

TEST_CASE("grid fixture files parse or fail as named", "[grid]") {
  std::string good = test::data_path("good_grid.yaml");
  std::string bad = test::data_path("bad_grid_unknown_pattern.yaml");
  REQUIRE(std::filesystem::exists(good));
  REQUIRE(std::filesystem::exists(bad));
  Grid g = read_grid_file(good, 8192);
  CHECK(g.candidates.size() >= 3);
  CHECK_THROWS_AS(read_grid_file(bad, 8192), InputError);
}

// search::run on synthetic atlases whose right answer is known, the summary, and the speed on
// a Llama-3-8B-sized table (32 layers x 32 heads x 200 candidates).
#include <chrono>
#include <filesystem>
#include <sstream>

#include "catch.h"
#include "common/error.h"
#include "search/atlas_fixture.h"
#include "search/search.h"

namespace fs = std::filesystem;
using namespace hc;

namespace {

search::SearchOptions opts(search::BudgetMode mode, double value) {
  search::SearchOptions o;
  o.mode = mode;
  o.value = value;
  return o;
}

}  // namespace

TEST_CASE("search picks each head's own pattern and dense where nothing fits", "[search]") {
  std::string dir = test::make_temp_dir("search_run");
  test::SyntheticSpec spec;  // 4 layers x 6 heads (GQA 2), N = 1000
  std::string path = dir + "/a.h5";
  test::write_synthetic_atlas(path, spec);
  Atlas atlas = Atlas::open(path);

  SECTION("global density") {
    std::vector<std::string> notes;
    Profile p = search::run(atlas, opts(search::BudgetMode::global_density, 0.3), &notes);
    for (const ProfileHead& e : p.heads) {
      INFO("layer " << e.layer << " head " << e.head);
      Pattern kind = test::synthetic_kind(e.layer, e.head);
      CHECK(e.pattern == kind);  // dense-kind heads get dense, the others their own pattern
    }
    CHECK(p.calibration.budget_mode == "global-density");
    CHECK(p.calibration.budget_value == 0.3);
    CHECK(p.calibration.achieved_density <= 0.3 + 1e-9);
    CHECK(p.calibration.achieved_density > 0.25);  // the budget is used, not wasted
    CHECK(p.model.fingerprint == "fp-synthetic");
    CHECK(p.calibration.tokens == spec.tokens);
    REQUIRE_FALSE(notes.empty());
    CHECK(notes.back().find("of dense attention's cost, used ") != std::string::npos);
  }
  SECTION("per-head density") {
    Profile p = search::run(atlas, opts(search::BudgetMode::density, 0.2));
    for (const ProfileHead& e : p.heads) {
      INFO("layer " << e.layer << " head " << e.head);
      CHECK(e.density <= 0.2 + 1e-12);
      Pattern kind = test::synthetic_kind(e.layer, e.head);
      if (kind != Pattern::dense) CHECK(e.pattern == kind);
      else CHECK(e.pattern != Pattern::dense);
    }
  }
  SECTION("min recall") {
    Profile p = search::run(atlas, opts(search::BudgetMode::min_recall, 0.8));
    for (const ProfileHead& e : p.heads) {
      CHECK(e.recall >= 0.8);
      Pattern kind = test::synthetic_kind(e.layer, e.head);
      if (kind != Pattern::dense) CHECK(e.pattern == kind);
    }
  }
  SECTION("the profile it builds writes and reads back") {
    Profile p = search::run(atlas, opts(search::BudgetMode::global_density, 0.5));
    write_profile(p, dir + "/p.yaml");
    Profile q = read_profile(dir + "/p.yaml");
    REQUIRE(q.heads.size() == p.heads.size());
    for (size_t i = 0; i < p.heads.size(); ++i) CHECK(q.heads[i].candidate() == p.heads[i].candidate());
  }
  SECTION("budgets outside (0, 1] are bad input") {
    CHECK_THROWS_AS(search::run(atlas, opts(search::BudgetMode::global_density, 0)), InputError);
    CHECK_THROWS_AS(search::run(atlas, opts(search::BudgetMode::min_recall, 1.5)), InputError);
  }
  SECTION("a pattern filter keeps other patterns out") {
    search::SearchOptions o = opts(search::BudgetMode::global_density, 0.3);
    o.patterns = search::parse_pattern_filter("vertical_slash");
    Profile p = search::run(atlas, o);
    for (const ProfileHead& e : p.heads)
      CHECK((e.pattern == Pattern::vertical_slash || e.pattern == Pattern::dense));
    CHECK_THROWS_AS(search::parse_pattern_filter("vertical_slash,streaming"), InputError);
  }
  fs::remove_all(dir);
}

TEST_CASE("layers the atlas did not record are dense in the profile", "[search]") {
  std::string dir = test::make_temp_dir("search_subset");
  test::SyntheticSpec spec;
  spec.layers = 5;
  spec.recorded = {1, 3};
  test::write_synthetic_atlas(dir + "/a.h5", spec);
  Atlas atlas = Atlas::open(dir + "/a.h5");
  std::vector<std::string> notes;
  Profile p = search::run(atlas, opts(search::BudgetMode::density, 0.3), &notes);
  REQUIRE(p.heads.size() == 5u * 6u);
  for (int64_t h = 0; h < 6; ++h) {
    CHECK(p.at(0, h).pattern == Pattern::dense);
    CHECK(p.at(4, h).pattern == Pattern::dense);
  }
  CHECK(p.at(1, 0).pattern == Pattern::vertical_slash);  // synthetic_kind(1, 0)
  bool noted = false;
  for (const auto& n : notes) noted |= n.find("3 layer(s) not recorded") != std::string::npos;
  CHECK(noted);
  fs::remove_all(dir);
}

TEST_CASE("print_summary shows per-layer counts, recall and density", "[search]") {
  std::string dir = test::make_temp_dir("search_summary");
  test::SyntheticSpec spec;
  test::write_synthetic_atlas(dir + "/a.h5", spec);
  Profile p = search::run(Atlas::open(dir + "/a.h5"), opts(search::BudgetMode::global_density, 0.3));
  std::ostringstream out;
  search::print_summary(p, out);
  std::string s = out.str();
  CHECK(s.find("a_shape  vertical_slash  block_sparse  mean recall") != std::string::npos);
  // Layer 0 of the synthetic model: heads 0..5 are a_shape, vertical_slash, block_sparse, dense,
  // a_shape, vertical_slash.
  CHECK(s.find("    0      1        2               2             1") != std::string::npos);
  CHECK(s.find("  all ") != std::string::npos);
  CHECK(s.find("budget: global-density 0.3") != std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("search takes well under seconds on 32 layers x 32 heads x 200 candidates", "[search][perf]") {
  std::string dir = test::make_temp_dir("search_perf");
  test::SyntheticSpec spec;
  spec.layers = 32;
  spec.heads = 32;
  spec.kv_heads = 8;
  spec.head_dim = 128;
  spec.tokens = 2048;
  spec.map_size = 4;
  AtlasMeta meta = test::synthetic_meta(spec);
  Grid grid;
  for (int sink : {64, 128})
    for (int local = 64; local <= 2048; local += 64) grid.candidates.push_back({Pattern::a_shape, sink, local});
  for (int v : {30, 64, 128, 256, 512, 1024})
    for (int s = 128; s <= 2048; s += 128) grid.candidates.push_back({Pattern::vertical_slash, v, s});
  for (int k = 2; k <= 40; ++k) grid.candidates.push_back({Pattern::block_sparse, k, 0});
  REQUIRE(grid.candidates.size() + 1 >= 200);  // + dense
  {
    std::vector<int32_t> tokens(static_cast<size_t>(spec.tokens), 7);
    AtlasWriter w(dir + "/big.h5", meta, tokens);
    for (int64_t l = 0; l < spec.layers; ++l) w.write_layer(test::synthetic_layer(meta, l, grid));
    w.finalize();
  }
  auto t0 = std::chrono::steady_clock::now();
  Atlas atlas = Atlas::open(dir + "/big.h5");
  Profile p = search::run(atlas, opts(search::BudgetMode::global_density, 0.2));
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  WARN("open + global-density search, 32 x 32 heads x " << grid.candidates.size() + 1 << " options: " << seconds
                                                        << " s");
  CHECK(p.heads.size() == 1024u);
  CHECK(p.calibration.achieved_density <= 0.2 + 1e-9);
  CHECK(seconds < 5.0);
  fs::remove_all(dir);
}

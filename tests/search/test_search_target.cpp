// search --target: only candidates the runtime runs exactly (io/calibration/export_changes.h), the fallbacks
// where none fits a budget, the refusals (dual-chunk at or below 32768 tokens, unrecorded layers),
// and profiles that export to their runtime without --force.
#include <filesystem>
#include <string>
#include <vector>

#include "catch.h"
#include "common/error.h"
#include "io/calibration/export_changes.h"
#include "search/atlas_fixture.h"
#include "search/search.h"

namespace fs = std::filesystem;
using namespace hc;

namespace {

search::SearchOptions opts(search::BudgetMode mode, double value, Target target) {
  search::SearchOptions o;
  o.mode = mode;
  o.value = value;
  o.target = target;
  return o;
}

bool any_contains(const std::vector<std::string>& notes, const std::string& needle) {
  for (const std::string& n : notes)
    if (n.find(needle) != std::string::npos) return true;
  return false;
}

// Every head as MInference runs it: no dense, block_sparse only with 100 blocks, vertical_slash
// with v >= 30 and s >= 50; and the export check finds nothing.
void check_minference_exact(const Profile& p) {
  for (const ProfileHead& e : p.heads) {
    INFO("layer " << e.layer << " head " << e.head << ": " << describe_candidate(e.candidate()));
    CHECK(e.pattern != Pattern::dense);
    if (e.pattern == Pattern::block_sparse) CHECK(e.p1 == 100);
    if (e.pattern == Pattern::vertical_slash) {
      CHECK(e.p1 >= 30);
      CHECK(e.p2 >= 50);
    }
  }
  CHECK(p.calibration.target == Target::minference);
  CHECK(export_changes(p, Target::minference).empty());
}

}  // namespace

TEST_CASE("search --target minference chooses only what MInference runs exactly", "[search][target]") {
  const std::string dir = test::make_temp_dir("search_target_minference");
  test::SyntheticSpec spec;
  spec.tokens = 8001;  // 126 key blocks: block_sparse(100) is sparse; the MInference candidates are in the grid
  spec.extra = {{Pattern::block_sparse, 100, 0}};
  test::write_synthetic_atlas(dir + "/a.h5", spec);
  const Atlas atlas = Atlas::open(dir + "/a.h5");

  // The headcal search of the same atlas uses block_sparse k != 100 or dense: the filter matters.
  const Profile free = search::run(atlas, opts(search::BudgetMode::global_density, 0.3, Target::headcal));
  bool other_blocks = false, dense = false;
  for (const ProfileHead& e : free.heads) {
    other_blocks |= e.pattern == Pattern::block_sparse && e.p1 != 100;
    dense |= e.pattern == Pattern::dense;
  }
  CHECK((other_blocks || dense));  // what MInference would run differently (which of the two: the budget's call)
  CHECK_FALSE(export_changes(free, Target::minference).empty());

  for (search::BudgetMode mode :
       {search::BudgetMode::global_density, search::BudgetMode::density, search::BudgetMode::min_recall}) {
    const double value = mode == search::BudgetMode::min_recall ? 0.9 : 0.3;
    INFO(search::budget_mode_name(mode));
    std::vector<std::string> notes;
    const Profile p = search::run(atlas, opts(mode, value, Target::minference), &notes);
    check_minference_exact(p);
    // The note says how many grid candidates remain and what was left out.
    CHECK(any_contains(notes, "--target minference: "));
    CHECK(any_contains(notes, "block_sparse k != 100"));
    CHECK(any_contains(notes, "dense written as vertical_and_slash(N, N)"));
    // A block-sparse head of the synthetic atlas reaches the recall only with the one block_sparse
    // MInference runs (the other patterns' recall is their density, at most about 0.6 here).
    if (mode == search::BudgetMode::min_recall) {
      CHECK(p.at(0, 2).pattern == Pattern::block_sparse);
      CHECK(p.at(0, 2).p1 == 100);
    }
  }

  SECTION("a head no candidate of which reaches the recall asked for takes its most recall, named in a note") {
    std::vector<std::string> notes;
    const Profile p = search::run(atlas, opts(search::BudgetMode::min_recall, 0.999, Target::minference), &notes);
    check_minference_exact(p);
    // Head 3 of layer 0 follows no pattern (synthetic_kind: dense); headcal gives it dense.
    CHECK(any_contains(notes, "no candidate reaches recall"));
    CHECK(any_contains(notes, "L0H3"));
    CHECK(p.at(0, 3).recall < 0.999);
  }
  SECTION("a per-head density below every exact candidate: the cheapest, named in a note") {
    std::vector<std::string> notes;
    const Profile p = search::run(atlas, opts(search::BudgetMode::density, 0.001, Target::minference), &notes);
    check_minference_exact(p);
    CHECK(any_contains(notes, "no candidate within density"));
  }
  SECTION("the profile records its target, written and read back") {
    const Profile p = search::run(atlas, opts(search::BudgetMode::global_density, 0.3, Target::minference));
    write_profile(p, dir + "/p.yaml");
    CHECK(read_profile(dir + "/p.yaml").calibration.target == Target::minference);
  }
  SECTION("MInference's own rule for MInference: what it chose runs exactly") {
    search::SearchOptions o;
    o.rule = search::SearchRule::minference;
    o.target = Target::minference;
    const Profile p = search::run(atlas, o);
    check_minference_exact(p);
  }
  fs::remove_all(dir);
}

TEST_CASE("search --target minference: no exact candidate at all, or unrecorded layers, is bad input",
          "[search][target]") {
  const std::string dir = test::make_temp_dir("search_target_none");
  test::SyntheticSpec spec;  // N = 4000: no block_sparse(100) in the default grid
  test::write_synthetic_atlas(dir + "/a.h5", spec);
  search::SearchOptions o = opts(search::BudgetMode::global_density, 0.3, Target::minference);
  o.patterns = search::parse_pattern_filter("block_sparse");
  CHECK(test::throws_input_error_containing([&] { search::run(Atlas::open(dir + "/a.h5"), o); },
                                            "MInference runs exactly"));

  test::SyntheticSpec partial = spec;
  partial.recorded = {0, 1};
  test::write_synthetic_atlas(dir + "/partial.h5", partial);
  CHECK(test::throws_input_error_containing(
      [&] { search::run(Atlas::open(dir + "/partial.h5"), opts(search::BudgetMode::density, 0.3, Target::minference)); },
      "record every layer"));
  // headcal still fills them with dense.
  CHECK(search::run(Atlas::open(dir + "/partial.h5"), opts(search::BudgetMode::density, 0.3, Target::headcal))
            .at(3, 0)
            .pattern == Pattern::dense);
  fs::remove_all(dir);
}

TEST_CASE("search --target dual-chunk: vertical_slash only, no v = 30, and only above 32768 tokens",
          "[search][target]") {
  const std::string dir = test::make_temp_dir("search_target_dual");
  test::SyntheticSpec spec;
  spec.layers = 2;
  spec.heads = 4;
  spec.arch = "qwen2";
  spec.tokens = 32769;  // one token above the threshold
  test::write_synthetic_atlas(dir + "/a.h5", spec);
  for (search::BudgetMode mode :
       {search::BudgetMode::global_density, search::BudgetMode::density, search::BudgetMode::min_recall}) {
    INFO(search::budget_mode_name(mode));
    const Profile p = search::run(Atlas::open(dir + "/a.h5"), opts(mode, mode == search::BudgetMode::min_recall ? 0.9 : 0.3,
                                                                   Target::dual_chunk));
    for (const ProfileHead& e : p.heads) {
      INFO("layer " << e.layer << " head " << e.head << ": " << describe_candidate(e.candidate()));
      CHECK(e.pattern == Pattern::vertical_slash);
      CHECK(e.p1 != 30);
    }
    CHECK(p.calibration.target == Target::dual_chunk);
    CHECK(export_changes(p, Target::dual_chunk).empty());
  }

  // At the threshold every head would run dense: refused, naming --target and 32768.
  test::SyntheticSpec at = spec;
  at.tokens = 32768;
  test::write_synthetic_atlas(dir + "/at.h5", at);
  try {
    search::run(Atlas::open(dir + "/at.h5"), opts(search::BudgetMode::density, 0.3, Target::dual_chunk));
    FAIL("no error at 32768 tokens");
  } catch (const InputError& e) {
    const std::string what = e.what();
    CHECK(what.find("--target") != std::string::npos);
    CHECK(what.find("32768") != std::string::npos);
    CHECK(what.find("dense") != std::string::npos);
  }
  // A model type without the backend: refused too.
  test::SyntheticSpec llama = spec;
  llama.arch = "llama";
  test::write_synthetic_atlas(dir + "/llama.h5", llama);
  CHECK(test::throws_input_error_containing(
      [&] { search::run(Atlas::open(dir + "/llama.h5"), opts(search::BudgetMode::density, 0.3, Target::dual_chunk)); },
      "model type 'llama' has no dual-chunk attention"));
  fs::remove_all(dir);
}

// Atlases of several prompts: the file round trip, candidate tables aggregated over prompts under
// each objective, search over them, and MInference's own rule on the same tables.
#include <cmath>
#include <string>
#include <vector>

#include "catch.h"
#include "common/error.h"
#include "io/calibration/atlas.h"
#include "search/minference_rule.h"
#include "search/search.h"
#include "search/tables.h"

namespace {

using hc::CandidateRow;
using hc::GridCandidate;
using hc::Pattern;

constexpr int64_t kHeads = 2;
constexpr int64_t kHeadDim = 64;

double dense_cost(int64_t n) { return 4.0 * kHeadDim * n * (n + 1) / 2.0; }

hc::AtlasMeta meta_for(int64_t longest) {
  hc::AtlasMeta m;
  m.model_fingerprint = "fp";
  m.model_name = "two-prompt-model";
  m.arch = "llama";
  m.layers = 1;
  m.heads = kHeads;
  m.kv_heads = 1;
  m.head_dim = kHeadDim;
  m.tokens = longest;
  m.prompt_sha256 = "set-sha";
  m.prompt_description = "two prompts";
  m.tool_version = "test";
  m.map_size = 8;
  return m;
}

// Rows of one prompt: for each head, dense plus the given (candidate, density, recall, out_err).
struct Row {
  int32_t head;
  GridCandidate c;
  double density, recall, out_err;
};

hc::AtlasLayer layer_of(int64_t n, int64_t map, const std::vector<Row>& rows) {
  hc::AtlasLayer L;
  L.layer = 0;
  L.colmass.assign(static_cast<size_t>(kHeads * n), 1.0f);
  L.diagmass.assign(static_cast<size_t>(kHeads * n), 2.0f);
  L.map.assign(static_cast<size_t>(kHeads * map * map), 0.5f);
  for (int32_t h = 0; h < kHeads; ++h) L.candidates.push_back({h, Pattern::dense, 0, 0, dense_cost(n), 1, 1, 0});
  for (const Row& r : rows)
    L.candidates.push_back({r.head, r.c.pattern, r.c.p1, r.c.p2, r.density * dense_cost(n), r.density, r.recall, r.out_err});
  return L;
}

const GridCandidate kA{Pattern::a_shape, 64, 512};
const GridCandidate kV{Pattern::vertical_slash, 30, 800};

// Prompt "prose" (N = 1000, weight 3) and prompt "kv" (N = 700, weight 1). Head 0: a_shape is
// good on prose, poor on kv; vertical_slash is middling on both. Head 1: both fine.
std::string write_two_prompt_atlas(const std::string& dir) {
  const std::string path = dir + "/two.h5";
  std::vector<hc::AtlasPrompt> prompts = {
      {"prose", "prose text", "sha-prose", 3.0, 0, std::vector<int32_t>(1000, 7)},
      {"kv", "kv_retrieval", "sha-kv", 1.0, 0, std::vector<int32_t>(700, 9)},
  };
  hc::AtlasWriter w(path, meta_for(1000), prompts);
  w.write_layer(layer_of(1000, 8, {{0, kA, 0.10, 0.99, 0.02}, {0, kV, 0.20, 0.95, 0.10},
                                   {1, kA, 0.10, 0.97, 0.05}, {1, kV, 0.20, 0.98, 0.04}}),
                0);
  w.write_layer(layer_of(700, 8, {{0, kA, 0.14, 0.60, 0.80}, {0, kV, 0.26, 0.93, 0.12},
                                  {1, kA, 0.14, 0.96, 0.06}, {1, kV, 0.26, 0.99, 0.03}}),
                1);
  w.finalize();
  return path;
}

const hc::search::Option& option(const hc::search::HeadTable& t, const GridCandidate& c) {
  for (const auto& o : t.options)
    if (o.candidate == c) return o;
  FAIL("candidate missing from the table");
  return t.options.front();
}

}  // namespace

TEST_CASE("atlas: several prompts of different lengths round-trip", "[atlas][prompt_set]") {
  const std::string dir = hc::test::make_temp_dir("atlas_prompts");
  const hc::Atlas a = hc::Atlas::open(write_two_prompt_atlas(dir));
  CHECK(a.version() == 2);
  REQUIRE(a.prompt_count() == 2);
  CHECK(a.prompt(0).name == "prose");
  CHECK(a.prompt(1).name == "kv");
  CHECK(a.prompt(0).weight == 3.0);
  CHECK(a.prompt(1).description == "kv_retrieval");
  CHECK(a.prompt(1).tokens.size() == 700);
  CHECK(a.prompt(1).tokens[5] == 9);
  CHECK(a.tokens().size() == 1000);  // the first prompt's
  CHECK(a.meta().tokens == 1000);
  REQUIRE(a.recorded_layers() == std::vector<int64_t>{0});
  CHECK(a.candidates(0, 1).size() == 6);
  CHECK(a.candidates(0, 1)[2].recall == Approx(0.60));
  const hc::AtlasLayer kv = a.read_layer(0, 1);
  CHECK(kv.colmass.size() == static_cast<size_t>(kHeads * 700));
  CHECK(kv.map.size() == static_cast<size_t>(kHeads * 8 * 8));
  CHECK_THROWS_AS(a.candidates(0, 2), hc::InputError);
}

TEST_CASE("atlas writer: prompt sets are checked", "[atlas][prompt_set]") {
  const std::string dir = hc::test::make_temp_dir("atlas_prompts_bad");
  const std::string path = dir + "/bad.h5";
  std::vector<hc::AtlasPrompt> twice = {{"a", "", "s", 1, 0, {1, 2}}, {"a", "", "s", 1, 0, {1, 2}}};
  CHECK(hc::test::throws_input_error_containing([&] { hc::AtlasWriter(path, meta_for(2), twice); }, "used twice"));
  std::vector<hc::AtlasPrompt> zero = {{"a", "", "s", 0, 0, {1, 2}}};
  CHECK(hc::test::throws_input_error_containing([&] { hc::AtlasWriter(path, meta_for(2), zero); }, "weight"));
  std::vector<hc::AtlasPrompt> shorter = {{"a", "", "s", 1, 0, {1, 2}}};
  CHECK(hc::test::throws_input_error_containing([&] { hc::AtlasWriter(path, meta_for(5), shorter); }, "longest"));

  // Every prompt must record the same layers; prompts are written in order.
  std::vector<hc::AtlasPrompt> two = {{"a", "", "s", 1, 0, std::vector<int32_t>(100, 1)},
                                      {"b", "", "s", 1, 0, std::vector<int32_t>(80, 1)}};
  hc::AtlasMeta m = meta_for(100);
  m.layers = 2;
  {
    hc::AtlasWriter w(path, m, two);
    hc::AtlasLayer l0 = layer_of(100, 8, {});
    w.write_layer(l0, 0);
    hc::AtlasLayer l1 = layer_of(80, 8, {});
    l1.layer = 1;
    w.write_layer(l1, 1);
    CHECK(hc::test::throws_input_error_containing([&] { w.write_layer(l0, 0); }, "in order"));
    CHECK(hc::test::throws_input_error_containing([&] { w.finalize(); }, "recorded layers differ"));
  }
  {
    hc::AtlasWriter w(path, m, two);
    CHECK(hc::test::throws_input_error_containing([&] { w.write_layer(layer_of(100, 8, {}), 1); }, "H*N"));
  }
}

TEST_CASE("search tables: candidates aggregated over prompts under each objective", "[search][prompt_set]") {
  const std::string dir = hc::test::make_temp_dir("objectives");
  const hc::Atlas atlas = hc::Atlas::open(write_two_prompt_atlas(dir));
  using hc::search::ObjectiveKind;

  const hc::search::Objective mean_recall = hc::search::parse_objective("mean-recall");
  const auto mean = hc::search::build_tables(atlas, {}, mean_recall);
  REQUIRE(mean.size() == 2);
  const double dense = (3 * dense_cost(1000) + dense_cost(700)) / 4;
  CHECK(mean[0].dense_cost == Approx(dense));
  const auto& a0 = option(mean[0], kA);
  CHECK(a0.cost == Approx((3 * 0.10 * dense_cost(1000) + 0.14 * dense_cost(700)) / 4));
  CHECK(a0.density == Approx(a0.cost / dense));
  CHECK(a0.recall == Approx((3 * 0.99 + 0.60) / 4));
  CHECK(a0.score == Approx(a0.recall));
  CHECK(a0.out_err == Approx((3 * 0.02 + 0.80) / 4));
  CHECK(mean[0].options.front().score == 1.0);  // dense

  hc::search::Objective worst;
  worst.kind = ObjectiveKind::worst_recall;
  const auto& w0 = option(hc::search::build_tables(atlas, {}, worst)[0], kA);
  CHECK(w0.recall == Approx(0.60));
  CHECK(w0.score == Approx(0.60));

  hc::search::Objective floor = hc::search::parse_objective("recall-floor:0.9");
  const auto floored = hc::search::build_tables(atlas, {}, floor);
  for (const auto& o : floored[0].options) CHECK(o.candidate != kA);  // 0.60 on kv: dropped
  CHECK(floored[1].options.size() == 3);                              // head 1 keeps both

  const auto err = hc::search::build_tables(atlas, {}, hc::search::parse_objective("output-error"));
  CHECK(option(err[0], kV).score == Approx(1 - (3 * 0.10 + 0.12) / 4));
  const auto mixed = hc::search::build_tables(atlas, {}, hc::search::parse_objective("mixed:0.5"));
  CHECK(option(mixed[0], kV).score == Approx((3 * 0.95 + 0.93) / 4 - 0.5 * (3 * 0.10 + 0.12) / 4));

  // worst-mixed: the prompt where recall - A x error is lowest. a_shape: prose 0.99 - 0.02 = 0.97,
  // kv 0.60 - 0.80 = -0.20; vertical_slash: prose 0.95 - 0.10 = 0.85, kv 0.93 - 0.12 = 0.81.
  const auto worst_mixed = hc::search::build_tables(atlas, {}, hc::search::parse_objective("worst-mixed:1"));
  CHECK(option(worst_mixed[0], kA).score == Approx(-0.20));
  CHECK(option(worst_mixed[0], kV).score == Approx(0.81));
  CHECK(option(worst_mixed[0], kV).recall == Approx((3 * 0.95 + 0.93) / 4));  // recall stays the mean
  CHECK(hc::search::objective_name(hc::search::parse_objective("worst-mixed:0.5")) == "worst-mixed:0.5");
  CHECK_THROWS_AS(hc::search::parse_objective("worst-mixed"), hc::InputError);

  // Layer weights multiply every output-error term of the layer's heads, recall untouched.
  hc::search::Objective weighted = hc::search::parse_objective("mixed:0.5");
  weighted.layer_weight = {3.0};
  const auto heavy = hc::search::build_tables(atlas, {}, weighted);
  CHECK(option(heavy[0], kV).score == Approx((3 * 0.95 + 0.93) / 4 - 3 * 0.5 * (3 * 0.10 + 0.12) / 4));
  CHECK(option(heavy[0], kV).out_err == Approx((3 * 0.10 + 0.12) / 4));  // as recorded
  hc::search::Objective err_weighted = hc::search::parse_objective("output-error");
  err_weighted.layer_weight = {2.0};
  CHECK(option(hc::search::build_tables(atlas, {}, err_weighted)[0], kV).score == Approx(1 - 2 * (3 * 0.10 + 0.12) / 4));
  weighted.layer_weight = {1.0, 1.0};  // the atlas's model has one layer
  CHECK(hc::test::throws_input_error_containing([&] { hc::search::build_tables(atlas, {}, weighted); }, "model has 1"));

  CHECK(hc::search::objective_name(floor) == "recall-floor:0.9");
  CHECK_THROWS_AS(hc::search::parse_objective("best"), hc::InputError);
  CHECK_THROWS_AS(hc::search::parse_objective("recall-floor"), hc::InputError);
  CHECK_THROWS_AS(hc::search::parse_objective("recall-floor:1.5"), hc::InputError);
  CHECK_THROWS_AS(hc::search::parse_objective("mean-recall:1"), hc::InputError);

  // Per-head density 0.25: both fit and mean recall prefers vertical_slash (0.945 against a_shape's
  // 0.8925); at 0.13 only a_shape (density 0.106) fits.
  hc::search::SearchOptions opts;
  opts.mode = hc::search::BudgetMode::density;
  opts.value = 0.25;
  opts.objective = mean_recall;
  hc::Profile p = hc::search::run(atlas, opts);
  CHECK(p.at(0, 0).candidate() == kV);
  CHECK(p.calibration.prompts == 2);
  CHECK(p.calibration.objective == "mean-recall");
  // The default objective, mixed:1, also charges a_shape's output error on kv (0.80).
  CHECK(hc::search::objective_name(hc::search::SearchOptions{}.objective) == "mixed:1");
  opts.value = 0.13;
  CHECK(hc::search::run(atlas, opts).at(0, 0).candidate() == kA);
  // With a floor of 0.9 a_shape is out (0.60 on kv); nothing is left within 0.13, so the head takes
  // its cheapest remaining option.
  opts.objective = floor;
  CHECK(hc::search::run(atlas, opts).at(0, 0).candidate() == kV);

  // Layer weights from a file's struct: checked against the atlas's model, named in the profile.
  opts.objective = hc::search::parse_objective("mixed:1");
  opts.value = 0.25;
  opts.layer_weights.model_fingerprint = "fp";
  opts.layer_weights.model_layers = 1;
  opts.layer_weights.layers = {{0, 0.1, 0.5, 0.2, true}};
  opts.layer_weights_source = "w.yaml";
  const hc::Profile light = hc::search::run(atlas, opts);
  CHECK(light.calibration.objective == "mixed:1 with layer weights w.yaml");
  // mixed:1 with weight 0.2: a_shape 0.8925 - 0.2 x 0.215 = 0.8495 against vertical_slash
  // 0.945 - 0.2 x 0.105 = 0.924: vertical_slash, as without weights.
  CHECK(light.at(0, 0).candidate() == kV);
  opts.layer_weights.model_fingerprint = "other";
  CHECK(hc::test::throws_input_error_containing([&] { hc::search::run(atlas, opts); }, "w.yaml"));
  opts.layer_weights.model_fingerprint = "fp";
  opts.layer_weights.model_layers = 3;
  CHECK(hc::test::throws_input_error_containing([&] { hc::search::run(atlas, opts); }, "3 layers"));
}

TEST_CASE("MInference's rule: most attention kept among its six, then its relabelling", "[search][minference]") {
  const std::string dir = hc::test::make_temp_dir("minference_rule");
  const std::string path = dir + "/m.h5";
  const int64_t n = 8192;
  const GridCandidate vs_stream{Pattern::vertical_slash, 100, 800}, vs_block{Pattern::vertical_slash, 1000, 6096};
  std::vector<Row> rows;
  for (int32_t h = 0; h < kHeads; ++h) {
    for (const GridCandidate& c : hc::search::minference_search_candidates()) rows.push_back({h, c, 0.1, 0.5, 0.5});
    rows.push_back({h, vs_stream, 0.12, 0.7, 0.3});
    rows.push_back({h, vs_block, 0.9, 0.99, 0.01});
  }
  // Head 0: stream_llm keeps most; head 1: block_sparse does (a cheaper vertical_slash ties lower).
  rows[4].recall = 0.9;
  rows[8 + 5].recall = 0.95;
  rows[8 + 3].recall = 0.94;
  {
    hc::AtlasWriter w(path, meta_for(n), std::vector<int32_t>(n, 1));
    w.write_layer(layer_of(n, 8, rows));
    w.finalize();
  }
  const hc::Atlas atlas = hc::Atlas::open(path);
  hc::search::SearchOptions opts;
  opts.rule = hc::search::SearchRule::minference;
  const hc::Profile p = hc::search::run(atlas, opts);
  CHECK(p.at(0, 0).candidate() == vs_stream);
  CHECK(p.at(0, 0).recall == Approx(0.7));
  CHECK(p.at(0, 1).candidate() == vs_block);
  CHECK(p.calibration.budget_mode == "minference-rule");
  CHECK(p.calibration.budget_value == 0);

  // Without the relabelling targets the rule cannot say what MInference would run.
  const std::string short_path = dir + "/short.h5";
  {
    std::vector<Row> partial(rows.begin(), rows.begin() + 6);
    hc::AtlasWriter w(short_path, meta_for(n), std::vector<int32_t>(n, 1));
    w.write_layer(layer_of(n, 8, partial));
    w.finalize();
  }
  CHECK(hc::test::throws_input_error_containing([&] { hc::search::run(hc::Atlas::open(short_path), opts); },
                                                "MInference's rule needs its eight candidates"));
}

TEST_CASE("default grid: MInference's eight candidates from 4K tokens on", "[grid][minference]") {
  const hc::Grid small = hc::default_grid(4095);
  const hc::Grid big = hc::default_grid(4096);
  auto has = [](const hc::Grid& g, const GridCandidate& c) {
    for (const GridCandidate& x : g.candidates)
      if (x == c) return true;
    return false;
  };
  for (const GridCandidate& c : hc::search::minference_search_candidates()) CHECK(has(big, c));
  CHECK_FALSE(has(small, {Pattern::vertical_slash, 3500, 100}));
  CHECK_FALSE(has(small, {Pattern::a_shape, 100, 800}));
  CHECK(has(big, {Pattern::vertical_slash, 1000, 6096}));
  CHECK(has(big, {Pattern::vertical_slash, 100, 800}));
}

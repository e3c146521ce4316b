// Index builders against brute-force pattern sets written straight from DESIGN.md.
#include <algorithm>
#include <string>
#include <vector>

#include "catch.h"
#include "common/error.h"
#include "kernels/sparse/coverage.h"
#include "kernels/sparse/index_ref.h"
#include "kernels/sparse/pattern.h"
#include "sparse_test_inputs.h"

using namespace hc::kernels;
using sparse_test::Dims;
using sparse_test::RowSets;

namespace {

AttentionDims to_dims(const Dims& m) { return {m.n, m.h, m.hkv, m.d}; }

// Every row of `head` covers exactly `expected[i]`, both through covered_keys and covered().
void require_rows_equal(const SparseIndex& index, int64_t head, const RowSets& expected,
                        const std::string& label) {
  INFO(label << " head " << head);
  validate_index(index.view());
  std::vector<int32_t> keys;
  for (int64_t i = 0; i < index.n_tokens; ++i) {
    covered_keys(index.view(), head, i, keys);
    INFO("row " << i);
    REQUIRE(keys == expected[i]);
  }
  // covered() agrees on every (i, j) pair, including j > i (never covered).
  int64_t n_covered = 0;
  for (int64_t i = 0; i < index.n_tokens; ++i)
    for (int64_t j = 0; j < index.n_tokens; ++j) {
      const bool want = std::binary_search(expected[i].begin(), expected[i].end(), int32_t(j));
      if (covered(index.view(), head, i, j) != want) {
        INFO("pair " << i << "," << j);
        REQUIRE(covered(index.view(), head, i, j) == want);
      }
      n_covered += want;
    }
  REQUIRE(covered_pair_count(index.view(), head) == n_covered);
}

const std::vector<int64_t> kSizes = {1, 5, 63, 64, 65, 127, 200, 333};
const std::vector<std::pair<int64_t, int64_t>> kGroups = {{6, 2}, {4, 1}};

}  // namespace

TEST_CASE("pattern names round-trip and configs are checked", "[sparse]") {
  for (Pattern p : {Pattern::dense, Pattern::a_shape, Pattern::vertical_slash, Pattern::block_sparse})
    REQUIRE(parse_pattern(pattern_name(p)) == p);
  REQUIRE_THROWS_AS(parse_pattern("stream_llm"), hc::InputError);
  REQUIRE(describe({Pattern::a_shape, 64, 512}) == "a_shape(64,512)");
  REQUIRE(describe({Pattern::block_sparse, 8, 0}) == "block_sparse(8)");
  REQUIRE_THROWS_AS(check_config({Pattern::a_shape, 4, 0}), hc::InputError);
  REQUIRE_THROWS_AS(check_config({Pattern::block_sparse, 0, 0}), hc::InputError);
}

TEST_CASE("configuration texts parse back to what describe wrote", "[sparse]") {
  for (const PatternConfig& c : {PatternConfig{Pattern::dense, 0, 0}, PatternConfig{Pattern::a_shape, 0, 1},
                                 PatternConfig{Pattern::a_shape, 128, 3968},
                                 PatternConfig{Pattern::vertical_slash, 1000, 6096},
                                 PatternConfig{Pattern::block_sparse, 100, 0}})
    REQUIRE(parse_config(describe(c)) == c);
  REQUIRE(parse_config(" vertical_slash( 30 , 800 ) ") == PatternConfig{Pattern::vertical_slash, 30, 800});
  for (const char* bad : {"a_shape(64)", "a_shape(64,512,3)", "block_sparse(4,2)", "block_sparse", "a_shape(64,x)",
                          "a_shape(64,512", "a_shape(,512)", "dense(1)", "stream_llm(4,4)", "a_shape(64,0)",
                          "block_sparse(0)", "block_sparse(99999999999)", ""}) {
    INFO(bad);
    REQUIRE_THROWS_AS(parse_config(bad, "--config"), hc::InputError);
  }
  try {
    parse_config("a_shape(64)", "--config");
    FAIL("no error");
  } catch (const hc::InputError& e) {
    REQUIRE(std::string(e.what()).find("--config") != std::string::npos);
    REQUIRE(std::string(e.what()).find("takes 2 parameters") != std::string::npos);
  }
  REQUIRE_THROWS_AS(check_config({Pattern::vertical_slash, -1, 10}), hc::InputError);
  REQUIRE_NOTHROW(check_config({Pattern::vertical_slash, 0, 0}));
}

TEST_CASE("dense index covers j <= i", "[sparse]") {
  for (int64_t n : kSizes) {
    const SparseIndex index = build_dense_index(n, 3);
    REQUIRE(index.n_heads == 3);
    REQUIRE(index.range_offsets.size() == size_t(3 * num_row_blocks(n) + 1));
    REQUIRE(index.cols.empty());
    const RowSets expected = sparse_test::brute_dense(n);
    for (int64_t h = 0; h < 3; ++h) require_rows_equal(index, h, expected, "dense N=" + std::to_string(n));
  }
}

TEST_CASE("a_shape index is exact per row", "[sparse]") {
  const std::vector<std::pair<int, int>> configs = {{0, 1}, {4, 1}, {4, 16}, {30, 100}, {64, 64},
                                                    {1, 200}, {500, 7}, {1000, 1000}};
  for (int64_t n : kSizes)
    for (auto [sink, local] : configs) {
      const SparseIndex index = build_a_shape_index(n, 2, sink, local);
      REQUIRE(index.band_local == std::vector<int32_t>{local, local});
      const RowSets expected = sparse_test::brute_a_shape(n, sink, local);
      require_rows_equal(index, 1, expected,
                         "a_shape(" + std::to_string(sink) + "," + std::to_string(local) +
                             ") N=" + std::to_string(n));
    }
  REQUIRE_THROWS_AS(build_a_shape_index(100, 1, 4, 0), hc::InputError);
  REQUIRE_THROWS_AS(build_a_shape_index(0, 1, 4, 4), hc::InputError);
}

TEST_CASE("vertical_slash index equals the brute-force definition", "[sparse]") {
  struct Case { int v, s, last_q, v_sink, s_local; };
  const std::vector<Case> cases = {
      {30, 100, 64, 30, 100},   // the defaults: everything forced at these sizes
      {34, 6, 64, 30, 2},       // a few free columns and offsets
      {3, 3, 64, 1, 1},         // tiny
      {2, 1, 16, 5, 4},         // v < v_sink, s < s_local: forced sets kept whole
      {10, 7, 200, 0, 0},       // last_q > N for small N, nothing forced
      {5000, 5000, 64, 30, 100} // v, s > N: everything
  };
  uint32_t seed = 1;
  for (int64_t n : kSizes)
    for (auto [h, hkv] : kGroups)
      for (int64_t d : {64, 128}) {
        if (d == 128 && n > 127 && h == 6) continue;  // keeps the brute force quick
        const Dims dims{n, h, hkv, d};
        for (bool peaked : {false, true}) {
          const auto in = peaked ? sparse_test::peaked_inputs(dims, seed) : sparse_test::random_inputs(dims, seed);
          ++seed;
          for (const Case& c : cases) {
            const SparseIndex index = build_vertical_slash_index(in.q.data(), in.k.data(), to_dims(dims), c.v,
                                                                 c.s, c.last_q, c.v_sink, c.s_local, 2);
            REQUIRE(index.n_heads == h);
            REQUIRE(index.band_local.empty());
            for (int64_t head : {int64_t{0}, h - 1}) {
              const auto brute = sparse_test::brute_vertical_slash(in, head, c.v, c.s, c.last_q, c.v_sink,
                                                                   c.s_local);
              require_rows_equal(index, head, brute.sets,
                                 "vs(" + std::to_string(c.v) + "," + std::to_string(c.s) + ") N=" +
                                     std::to_string(n) + " d=" + std::to_string(d) +
                                     (peaked ? " peaked" : " random"));
            }
          }
        }
      }
}

TEST_CASE("vertical_slash selection finds the peaks and honours the counts", "[sparse]") {
  const Dims dims{333, 4, 1, 64};
  const auto in = sparse_test::peaked_inputs(dims, 77);
  const auto scores = vertical_slash_scores(in.q.data(), in.k.data(), to_dims(dims), 2, 64);
  REQUIRE(scores.col_score.size() == 333);
  // Each of the last 64 rows is a distribution: the column and diagonal masses both sum to 64.
  double col_total = 0, diag_total = 0;
  for (double x : scores.col_score) col_total += x;
  for (double x : scores.diag_score) diag_total += x;
  REQUIRE(col_total == Approx(64.0).epsilon(1e-9));
  REQUIRE(diag_total == Approx(64.0).epsilon(1e-9));
  // Hot columns (4 of them) and the hot offset win with a few free picks.
  const auto sel = select_vertical_slash(scores, 2 + 4, 1 + 1, 2, 1);
  REQUIRE(sel.columns.size() == 6);
  REQUIRE(sel.offsets.size() == 2);
  for (int64_t c : sparse_test::hot_columns(333))
    REQUIRE(std::find(sel.columns.begin(), sel.columns.end(), c) != sel.columns.end());
  REQUIRE(sel.offsets[0] == 0);
  REQUIRE(sel.offsets[1] == sparse_test::hot_offset(0));
  // v below v_sink keeps the forced columns only; v above N keeps all N.
  REQUIRE(select_vertical_slash(scores, 3, 0, 30, 0).columns.size() == 30);
  REQUIRE(select_vertical_slash(scores, 100000, 0, 30, 0).columns.size() == 333);
  REQUIRE(select_vertical_slash(scores, 0, 100000, 0, 0).offsets.size() == 333);
}

TEST_CASE("vertical_slash coverage is block-shaped and merged", "[sparse]") {
  // Hand case: N = 200, offsets {0, 5, 130}, columns {3, 100, 150}.
  VerticalSlashSelection sel;
  sel.offsets = {0, 5, 130};
  sel.columns = {3, 100, 150};
  const SparseIndex index = vertical_slash_head_index(200, sel);
  validate_index(index.view());
  auto ranges_of = [&](int64_t rb) {
    std::vector<std::pair<int32_t, int32_t>> r;
    for (int32_t x = index.range_offsets[rb]; x < index.range_offsets[rb + 1]; ++x)
      r.push_back({index.range_begin[x], index.range_end[x]});
    return r;
  };
  auto cols_of = [&](int64_t rb) {
    return std::vector<int32_t>(index.cols.begin() + index.col_offsets[rb],
                                index.cols.begin() + index.col_offsets[rb + 1]);
  };
  using R = std::vector<std::pair<int32_t, int32_t>>;
  // Block 0 (r1 = 63): o=0 -> [0,64), o=5 -> [0,59) merged; o=130 absent. Column 3 inside.
  REQUIRE(ranges_of(0) == R{{0, 64}});
  REQUIRE(cols_of(0).empty());
  // Block 1 (r1 = 127): o=0 [64,128), o=5 [59,123) merged -> [59,128); column 3 gathered, 100 inside.
  REQUIRE(ranges_of(1) == R{{59, 128}});
  REQUIRE(cols_of(1) == std::vector<int32_t>{3});
  // Block 2 (r1 = 191): [128,192) + [123,187) -> [123,192); o=130: [0, 62). Columns 3 inside, 100 gathered,
  // 150 inside.
  REQUIRE(ranges_of(2) == R{{0, 62}, {123, 192}});
  REQUIRE(cols_of(2) == std::vector<int32_t>{100});
  // Block 3 (r1 = 199, partial): [136,200) + [131,195) -> [131,200); o=130: [6, 70). Columns 3, 100.
  REQUIRE(ranges_of(3) == R{{6, 70}, {131, 200}});
  REQUIRE(cols_of(3) == std::vector<int32_t>{3, 100});
  // Touching ranges merge: offsets 0 and 64 give [64,128) and [0,64) in block 1.
  sel.offsets = {0, 64};
  sel.columns = {};
  const SparseIndex touching = vertical_slash_head_index(128, sel);
  REQUIRE(touching.range_offsets[2] - touching.range_offsets[1] == 1);
  REQUIRE(touching.range_begin[touching.range_offsets[1]] == 0);
  REQUIRE(touching.range_end[touching.range_offsets[1]] == 128);
}

TEST_CASE("block_sparse index equals the brute-force definition", "[sparse]") {
  uint32_t seed = 100;
  for (int64_t n : kSizes)
    for (auto [h, hkv] : kGroups)
      for (int64_t d : {64, 128}) {
        const Dims dims{n, h, hkv, d};
        for (bool peaked : {false, true}) {
          const auto in = peaked ? sparse_test::peaked_inputs(dims, seed) : sparse_test::random_inputs(dims, seed);
          ++seed;
          for (int k_blocks : {1, 2, 3, 4, 100}) {
            const SparseIndex index = build_block_sparse_index(in.q.data(), in.k.data(), to_dims(dims), k_blocks, 3);
            REQUIRE(index.cols.empty());
            for (int64_t head = 0; head < h; ++head) {
              const auto brute = sparse_test::brute_block_sparse(in, head, k_blocks);
              require_rows_equal(index, head, brute.sets,
                                 "bs(" + std::to_string(k_blocks) + ") N=" + std::to_string(n) +
                                     " d=" + std::to_string(d));
              // The kept blocks number max(k, forced) capped by the causal blocks.
              const auto kept = select_block_sparse(block_scores(in.q.data(), in.k.data(), to_dims(dims), head),
                                                    k_blocks);
              for (int64_t r = 0; r < int64_t(kept.size()); ++r) {
                const int64_t forced = r == 0 ? 1 : 2;
                REQUIRE(int64_t(kept[r].size()) == std::min<int64_t>(r + 1, std::max<int64_t>(k_blocks, forced)));
              }
            }
          }
        }
      }
  REQUIRE_THROWS_AS(build_block_sparse_index(nullptr, nullptr, {64, 1, 1, 64}, 2), hc::InputError);
}

TEST_CASE("per-head configs mix patterns; stack and slice round-trip", "[sparse]") {
  const Dims dims{200, 6, 2, 64};
  const auto in = sparse_test::peaked_inputs(dims, 9);
  const std::vector<PatternConfig> per_head = {
      {Pattern::dense, 0, 0},          {Pattern::a_shape, 8, 40},  {Pattern::vertical_slash, 33, 5},
      {Pattern::block_sparse, 2, 0},   {Pattern::a_shape, 0, 70},  {Pattern::vertical_slash, 40, 120}};
  EstimatorSettings settings;
  settings.v_sink = 30;
  settings.s_local = 3;
  const SparseIndex index = build_index(in.q.data(), in.k.data(), to_dims(dims), per_head, settings, 2);
  REQUIRE(index.n_heads == 6);
  REQUIRE(index.band_local == std::vector<int32_t>{0, 40, 0, 0, 70, 0});
  REQUIRE(index.band_sink == std::vector<int32_t>{0, 8, 0, 0, 0, 0});
  require_rows_equal(index, 0, sparse_test::brute_dense(200), "mixed dense");
  require_rows_equal(index, 1, sparse_test::brute_a_shape(200, 8, 40), "mixed a_shape");
  require_rows_equal(index, 2, sparse_test::brute_vertical_slash(in, 2, 33, 5, 64, 30, 3).sets, "mixed vs");
  require_rows_equal(index, 3, sparse_test::brute_block_sparse(in, 3, 2).sets, "mixed bs");
  require_rows_equal(index, 4, sparse_test::brute_a_shape(200, 0, 70), "mixed a_shape 2");
  require_rows_equal(index, 5, sparse_test::brute_vertical_slash(in, 5, 40, 120, 64, 30, 3).sets, "mixed vs 2");
  // head_slice then stack_heads gives back the same index.
  std::vector<SparseIndex> parts;
  for (int64_t h = 0; h < 6; ++h) parts.push_back(head_slice(index, h));
  const SparseIndex again = stack_heads(parts);
  REQUIRE(again.range_offsets == index.range_offsets);
  REQUIRE(again.range_begin == index.range_begin);
  REQUIRE(again.range_end == index.range_end);
  REQUIRE(again.col_offsets == index.col_offsets);
  REQUIRE(again.cols == index.cols);
  REQUIRE(again.band_local == index.band_local);
  REQUIRE(again.band_sink == index.band_sink);
  // The tile-sharing hint: set by the dense and a_shape builders, kept by a slice, and on a
  // stack only when every part has it.
  CHECK(!index.row_blocks_share_tiles);
  CHECK(!again.row_blocks_share_tiles);
  const SparseIndex a_shape = build_a_shape_index(200, 3, 8, 40), dense = build_dense_index(200, 3);
  CHECK(a_shape.row_blocks_share_tiles);
  CHECK(dense.row_blocks_share_tiles);
  CHECK(head_slice(a_shape, 1).row_blocks_share_tiles);
  CHECK(stack_heads({head_slice(a_shape, 0), head_slice(dense, 2)}).row_blocks_share_tiles);
  CHECK(!stack_heads({head_slice(a_shape, 0), parts[2]}).row_blocks_share_tiles);
  CHECK(!build_head_index(in.q.data(), in.k.data(), to_dims(dims), 3, per_head[3], settings).row_blocks_share_tiles);
  // The one-head builder gives the same head as the whole-index builder.
  const SparseIndex vs_head = build_head_index(in.q.data(), in.k.data(), to_dims(dims), 2, per_head[2], settings);
  REQUIRE(vs_head.cols == parts[2].cols);
  REQUIRE(vs_head.range_begin == parts[2].range_begin);
  REQUIRE_THROWS_AS(build_index(in.q.data(), in.k.data(), to_dims(dims), {per_head[0]}), hc::InputError);
}

TEST_CASE("edge cases: N = 1, N < last_q, parameters beyond N", "[sparse]") {
  const Dims one{1, 4, 1, 64};
  const auto in = sparse_test::random_inputs(one, 5);
  const std::vector<int32_t> only_zero = {0};
  std::vector<int32_t> keys;
  for (const SparseIndex& index :
       {build_dense_index(1, 4), build_a_shape_index(1, 4, 0, 1), build_a_shape_index(1, 4, 9999, 9999),
        build_vertical_slash_index(in.q.data(), in.k.data(), to_dims(one), 0, 0),
        build_vertical_slash_index(in.q.data(), in.k.data(), to_dims(one), 9999, 9999),
        build_block_sparse_index(in.q.data(), in.k.data(), to_dims(one), 1),
        build_block_sparse_index(in.q.data(), in.k.data(), to_dims(one), 9999)}) {
    validate_index(index.view());
    for (int64_t h = 0; h < 4; ++h) {
      covered_keys(index.view(), h, 0, keys);
      REQUIRE(keys == only_zero);
    }
  }
  // v, s > N and sink/local > N are the dense set.
  const Dims small{40, 4, 1, 128};
  const auto in40 = sparse_test::random_inputs(small, 6);
  const RowSets dense = sparse_test::brute_dense(40);
  require_rows_equal(build_vertical_slash_index(in40.q.data(), in40.k.data(), to_dims(small), 41, 0, 64, 0, 0), 0,
                     dense, "v > N");
  require_rows_equal(build_a_shape_index(40, 1, 41, 1), 0, dense, "sink > N");
  require_rows_equal(build_a_shape_index(40, 1, 0, 41), 0, dense, "local > N");
  require_rows_equal(build_block_sparse_index(in40.q.data(), in40.k.data(), to_dims(small), 5), 0, dense,
                     "k_blocks > blocks");
  // Bad estimator settings.
  REQUIRE_THROWS_AS(build_vertical_slash_index(in40.q.data(), in40.k.data(), to_dims(small), 1, 1, 0), hc::InputError);
  REQUIRE_THROWS_AS(build_vertical_slash_index(in40.q.data(), in40.k.data(), {40, 4, 3, 128}, 1, 1), hc::InputError);
}

TEST_CASE("validate_index rejects malformed indexes", "[sparse]") {
  SparseIndex good = build_dense_index(100, 1);
  REQUIRE_NOTHROW(validate_index(good.view()));
  SparseIndex bad = good;
  bad.range_end[1] = 101;  // beyond r1 + 1 of the last block
  REQUIRE_THROWS_AS(validate_index(bad.view()), hc::InputError);
  // Touching ranges are not merged.
  SparseIndex touching = good;
  touching.range_begin = {0, 0, 64};
  touching.range_end = {64, 64, 100};
  touching.range_offsets = {0, 1, 3};
  REQUIRE_THROWS_AS(validate_index(touching.view()), hc::InputError);
  // A column inside a range.
  SparseIndex col_inside = good;
  col_inside.cols = {5};
  col_inside.col_offsets = {0, 0, 1};
  REQUIRE_THROWS_AS(validate_index(col_inside.view()), hc::InputError);
  // A column above the block.
  SparseIndex col_above = build_a_shape_index(100, 1, 0, 1);
  col_above.cols = {70};
  col_above.col_offsets = {0, 1, 1};
  REQUIRE_THROWS_AS(validate_index(col_above.view()), hc::InputError);
}

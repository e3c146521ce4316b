// Cost accounting: kernel-granularity pair counts (64-row blocks x 64-key tiles), estimator
// FLOPs and densities, against hand-computed values.
#include <string>
#include <vector>

#include "catch.h"
#include "common/error.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/coverage.h"
#include "kernels/sparse/index_ref.h"
#include "hand_index.h"
#include "sparse_test_inputs.h"

using namespace hc::kernels;

TEST_CASE("dense pair count follows the tile rule", "[sparse][cost]") {
  // N = 64k: 1024 full blocks, block R computes 64 rows x 64 (R + 1) keys.
  const int64_t n = 65536;
  const int64_t expected = 64LL * 64LL * (1024LL * 1025LL / 2);
  REQUIRE(expected == 2149580800LL);
  REQUIRE(dense_pair_count(n) == expected);
  const SparseIndex dense = build_dense_index(n, 1);
  REQUIRE(kernel_pair_count(dense, 0) == expected);
  REQUIRE(dense_cost_flops(n, 128) == Approx(double(expected) * 4 * 128));
  REQUIRE(density(head_cost_flops(dense, 0, {Pattern::dense, 0, 0}, 128), n, 128) == Approx(1.0).epsilon(1e-15));
  // Small N: block 0 = 64 x 64; block 1 (36 rows) = 36 x (64 + 36) over two tiles.
  REQUIRE(dense_pair_count(100) == 64 * 64 + 36 * 100);
  REQUIRE(kernel_pair_count(build_dense_index(100, 2), 1) == 7696);
  REQUIRE(dense_pair_count(1) == 1);
  REQUIRE(dense_pair_count(5) == 25);  // a partial block computes rows x keys, upper triangle included
  for (int64_t m : {1, 5, 63, 64, 65, 127, 200, 333}) {
    const SparseIndex index = build_dense_index(m, 3);
    REQUIRE(kernel_pair_count(index, 2) == dense_pair_count(m));
    REQUIRE(covered_pair_count(index.view(), 2) == m * (m + 1) / 2);
    REQUIRE(density(head_cost_flops(index, 2, {Pattern::dense, 0, 0}, 64), m, 64) == 1.0);
  }
}

TEST_CASE("hand-computed tiles and column chunks", "[sparse][cost]") {
  // N = 200, block 2 holds rows 128..191 (64 rows); range [10, 150) = tiles of 64, 64, 12 keys.
  const SparseIndex ranges = hand_index(200, {{{0, 64}}, {{64, 128}}, {{10, 150}}, {{199, 200}}},
                                        {{}, {}, {}, {}});
  REQUIRE(kernel_pair_count(ranges, 0) == 64 * 64 + 64 * 64 + 64 * 140 + 8 * 1);
  // Columns: 70 columns in block 2 -> chunks of 64 and 6; 3 columns in block 3 (8 rows).
  std::vector<int32_t> many;
  for (int32_t c = 0; c < 140; c += 2) many.push_back(c);
  REQUIRE(many.size() == 70);
  const SparseIndex cols = hand_index(200, {{{0, 1}}, {{127, 128}}, {{140, 192}}, {}},
                                      {{5, 60}, {}, many, {3, 150, 198}});
  const int64_t expected = 64 * (1 + 2) + 64 * 1 + 64 * 52 + 64 * 70 + 8 * 3;
  REQUIRE(kernel_pair_count(cols, 0) == expected);
  // Exact pairs are fewer: the kernel counts masked entries of computed tiles.
  REQUIRE(covered_pair_count(cols.view(), 0) < kernel_pair_count(cols, 0));
  REQUIRE(head_cost_flops(cols, 0, {Pattern::dense, 0, 0}, 64) == Approx(double(expected) * 256));
}

TEST_CASE("band tiles with no admissible pair are skipped", "[sparse][cost]") {
  // Diagonal-only band (sink 0, local 1) over a full causal range: in block 2 (rows 128..191)
  // tiles [0,64) and [64,128) hold no pair with i - j < 1, tile [128,192) does.
  SparseIndex index = build_dense_index(192, 1);
  index.band_sink = {0};
  index.band_local = {1};
  REQUIRE(kernel_pair_count(index, 0) == 3 * 64 * 64);
  REQUIRE(covered_pair_count(index.view(), 0) == 192);
  // A sink keeps the first tile alive.
  index.band_sink = {1};
  REQUIRE(kernel_pair_count(index, 0) == 64 * 64 + 2 * 64 * 64 + 64 * 64 * 2);
  // tile_has_work directly: rows 128..191, keys 0..63, local 65 reaches key 63 from row 128.
  REQUIRE(tile_has_work(128, 191, 0, 63, 0, 66));
  REQUIRE_FALSE(tile_has_work(128, 191, 0, 63, 0, 65));
  REQUIRE_FALSE(tile_has_work(128, 191, 192, 191, 0, 0));  // above the block
  REQUIRE(tile_has_work(128, 191, 191, 191, 0, 0));
}

TEST_CASE("a_shape pair count and density match the hand formula", "[sparse][cost]") {
  // Closed form at N = 8192, sink 64, local 512: blocks R <= 8 have the sink range touching the
  // local range (one range [0, 64R + 64)), blocks R >= 9 compute 64 rows x (64 + 512 + 63) keys.
  const int64_t n = 8192;
  const SparseIndex a_shape = build_a_shape_index(n, 1, 64, 512);
  const int64_t closed = 64LL * 64 * 45 + 119LL * 64 * 639;
  REQUIRE(closed == 5050944);
  REQUIRE(kernel_pair_count(a_shape, 0) == closed);
  REQUIRE(dense_pair_count(n) == 4096LL * 8256);
  REQUIRE(density(head_cost_flops(a_shape, 0, {Pattern::a_shape, 64, 512}, 64), n, 64) ==
          Approx(5050944.0 / 33816576.0).epsilon(1e-12));
  // General formula per block: rows x |[0, min(sink, r1+1)) U [max(0, r0-local+1), r1+1)|.
  for (int64_t m : {1, 5, 63, 64, 65, 127, 200, 333, 1000})
    for (auto [sink, local] : std::vector<std::pair<int, int>>{{0, 1}, {4, 16}, {30, 100}, {64, 64}, {500, 7}}) {
      int64_t expected = 0;
      for (int64_t rb = 0; rb * 64 < m; ++rb) {
        const int64_t r0 = rb * 64, r1 = std::min(m - 1, r0 + 63);
        const int64_t a = std::min<int64_t>(sink, r1 + 1), b = std::max<int64_t>(0, r0 - local + 1);
        expected += (r1 - r0 + 1) * std::min(r1 + 1, a + (r1 + 1 - b));
      }
      INFO("N=" << m << " sink=" << sink << " local=" << local);
      REQUIRE(kernel_pair_count(build_a_shape_index(m, 2, sink, local), 1) == expected);
    }
}

TEST_CASE("estimator FLOPs and cost of estimated patterns", "[sparse][cost]") {
  EstimatorSettings settings;
  REQUIRE(estimator_flops({Pattern::dense, 0, 0}, 1000, 64) == 0.0);
  REQUIRE(estimator_flops({Pattern::a_shape, 4, 64}, 1000, 64) == 0.0);
  REQUIRE(estimator_flops({Pattern::vertical_slash, 100, 100}, 1000, 64, settings) == 64.0 * 1000 * 134);
  REQUIRE(estimator_flops({Pattern::vertical_slash, 100, 100}, 10, 128, settings) == 10.0 * 10 * 262);
  settings.last_q = 16;
  REQUIRE(estimator_flops({Pattern::vertical_slash, 100, 100}, 1000, 64, settings) == 16.0 * 1000 * 134);
  // block_sparse: pooling 2 N d + scores 2 nb^2 d, nb = ceil(1000 / 64) = 16.
  REQUIRE(estimator_flops({Pattern::block_sparse, 4, 0}, 1000, 64) == 2.0 * 1000 * 64 + 2.0 * 256 * 64);
  // head cost = kernel pairs x 4d + estimator.
  const sparse_test::Dims dims{333, 4, 1, 128};
  const auto in = sparse_test::peaked_inputs(dims, 4);
  const AttentionDims ad{333, 4, 1, 128};
  const SparseIndex vs = build_vertical_slash_index(in.q.data(), in.k.data(), ad, 40, 8, 64, 30, 4);
  const PatternConfig vs_config{Pattern::vertical_slash, 40, 8};
  REQUIRE(head_cost_flops(vs, 1, vs_config, 128) ==
          Approx(double(kernel_pair_count(vs, 1)) * 512 + 64.0 * 333 * 262));
  // A sparse pattern at a long-enough N is cheaper than dense; at N = 1 everything is dense.
  const SparseIndex bs = build_block_sparse_index(in.q.data(), in.k.data(), ad, 2);
  REQUIRE(kernel_pair_count(bs, 0) < dense_pair_count(333));
  REQUIRE(kernel_pair_count(bs, 0) >= covered_pair_count(bs.view(), 0));
}

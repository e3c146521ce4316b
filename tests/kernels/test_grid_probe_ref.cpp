// The one-pass grid probe against one probe-mode sparse_attention_ref run per candidate over the
// candidate's own index: recall and out_err of every candidate of a grid mixing every pattern,
// with repeated and MInference-style parameter values, odd N, N < 64, GQA, both head dims.
#include <cmath>
#include <string>
#include <vector>

#include "catch.h"
#include "common/error.h"
#include "kernels/attention/attention_ref.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/grid_probe_ref.h"
#include "kernels/sparse/index_ref.h"
#include "kernels/sparse/sparse_attention_ref.h"
#include "sparse_test_inputs.h"

using namespace hc::kernels;
using sparse_test::Dims;

namespace {

AttentionDims to_dims(const Dims& m) { return {m.n, m.h, m.hkv, m.d}; }

std::vector<PatternConfig> mixed_grid(int64_t n) {
  std::vector<PatternConfig> g = {{Pattern::dense, 0, 0}};
  for (int sink : {1, 64, 100, 128})
    for (int local : {1, 37, 64, 130, 800}) g.push_back({Pattern::a_shape, sink, local});
  for (int v : {3, 5, 30, 100, static_cast<int>(n / 8) + 3})
    for (int s : {5, 7, 50, 100, static_cast<int>(n / 2)}) g.push_back({Pattern::vertical_slash, v, s});
  for (int k : {2, 3, 5, 8, 100}) g.push_back({Pattern::block_sparse, k, 0});
  return g;
}

// What every candidate gives when probed on its own: the prober's path before the grid probe.
std::vector<CandidateMeasure> one_by_one(const sparse_test::Inputs& in, const std::vector<float>& o_ref,
                                         int64_t head, const std::vector<PatternConfig>& grid,
                                         const EstimatorSettings& settings) {
  const AttentionDims dims = to_dims(in.dims);
  const int64_t n = dims.n_tokens, d = dims.head_dim;
  std::vector<float> lse(static_cast<size_t>(dims.n_heads * n));  // [H, N]
  SparseRefOptions dense_opts;
  dense_opts.first_head = head;
  sparse_attention_ref(dims, in.q.data(), in.k.data(), in.v.data(), build_dense_index(n, 1).view(), nullptr,
                       lse.data(), dense_opts);
  std::vector<CandidateMeasure> out;
  for (const PatternConfig& c : grid) {
    const SparseIndex index = build_head_index(in.q.data(), in.k.data(), dims, head, c, settings);
    std::vector<float> o(o_ref.size());  // [N, H, d]
    SparseRefOptions opts;
    opts.first_head = head;
    opts.dense_lse = lse.data();
    SparseProbe probe;
    sparse_attention_ref(dims, in.q.data(), in.k.data(), in.v.data(), index.view(), o.data(), nullptr, opts, &probe);
    double diff = 0, ref = 0;
    for (int64_t i = 0; i < n; ++i)
      for (int64_t x = 0; x < d; ++x) {
        const size_t at = static_cast<size_t>((i * dims.n_heads + head) * d + x);
        diff += (double(o[at]) - o_ref[at]) * (double(o[at]) - o_ref[at]);
        ref += double(o_ref[at]) * o_ref[at];
      }
    out.push_back({probe.recall[0], output_error(diff, ref)});
  }
  return out;
}

void check_grid(const Dims& m, uint32_t seed, const EstimatorSettings& settings) {
  const sparse_test::Inputs in = sparse_test::peaked_inputs(m, seed);
  const AttentionDims dims = to_dims(m);
  std::vector<float> o_ref(in.q.size());  // [N, H, d] the dense output
  dense_attention_ref(dims, in.q.data(), in.k.data(), in.v.data(), o_ref.data(), nullptr);
  const std::vector<PatternConfig> grid = mixed_grid(m.n);
  for (int64_t head : {int64_t{0}, m.h - 1}) {
    const VerticalSlashScores vs = vertical_slash_scores(in.q.data(), in.k.data(), dims, head, settings.last_q);
    const BlockScores bs = block_scores(in.q.data(), in.k.data(), dims, head);
    GridProbeInputs gi{dims, in.q.data(), in.k.data(), in.v.data(), o_ref.data(), &vs, &bs};
    const auto got = probe_grid_ref(gi, head, grid, settings, 3);
    const auto want = one_by_one(in, o_ref, head, grid, settings);
    REQUIRE(got.size() == grid.size());
    int below_one = 0;
    for (size_t c = 0; c < grid.size(); ++c) {
      INFO("N " << m.n << " d " << m.d << " head " << head << " candidate " << describe(grid[c]));
      // want's LSE is float (one rounding, ~1e-7 relative) and its output float.
      CHECK(got[c].recall == Approx(want[c].recall).margin(2e-6));
      CHECK(got[c].out_err == Approx(want[c].out_err).epsilon(1e-4).margin(1e-6));
      below_one += got[c].recall < 0.999;
    }
    CHECK(got[0].recall == Approx(1.0).margin(1e-12));  // dense keeps everything
    CHECK(got[0].out_err < 1e-5);
    // The grid really drops attention, so a wrong key set would show (below 64 tokens only the
    // one-token windows do).
    CHECK(below_one >= (m.n < 64 ? 1 : 6));
  }
}

}  // namespace

TEST_CASE("grid probe equals per-candidate probes: N < 64, GQA, d = 64") {
  check_grid({37, 4, 2, 64}, 11, {64, 3, 5});
}

TEST_CASE("grid probe equals per-candidate probes: odd N, d = 128") {
  check_grid({200, 2, 1, 128}, 12, {64, 30, 100});
}

TEST_CASE("grid probe equals per-candidate probes: several row blocks, GQA, d = 64") {
  check_grid({321, 6, 2, 64}, 13, {16, 3, 5});
}

TEST_CASE("grid probe results do not depend on the thread count") {
  const Dims m{150, 2, 1, 64};
  const sparse_test::Inputs in = sparse_test::peaked_inputs(m, 21);
  const AttentionDims dims = to_dims(m);
  std::vector<float> o_ref(in.q.size());
  dense_attention_ref(dims, in.q.data(), in.k.data(), in.v.data(), o_ref.data(), nullptr);
  const EstimatorSettings settings{64, 3, 5};
  const VerticalSlashScores vs = vertical_slash_scores(in.q.data(), in.k.data(), dims, 1, settings.last_q);
  const BlockScores bs = block_scores(in.q.data(), in.k.data(), dims, 1);
  GridProbeInputs gi{dims, in.q.data(), in.k.data(), in.v.data(), o_ref.data(), &vs, &bs};
  const auto grid = mixed_grid(m.n);
  const auto one = probe_grid_ref(gi, 1, grid, settings, 1);
  const auto many = probe_grid_ref(gi, 1, grid, settings, 4);
  for (size_t c = 0; c < grid.size(); ++c) {
    CHECK(one[c].recall == many[c].recall);
    CHECK(one[c].out_err == many[c].out_err);
  }
}

TEST_CASE("grid probe refuses missing estimates and bad configs") {
  const Dims m{70, 2, 1, 64};
  const sparse_test::Inputs in = sparse_test::random_inputs(m, 5);
  const AttentionDims dims = to_dims(m);
  std::vector<float> o_ref(in.q.size());
  GridProbeInputs gi{dims, in.q.data(), in.k.data(), in.v.data(), o_ref.data(), nullptr, nullptr};
  CHECK_THROWS_AS(probe_grid_ref(gi, 0, {{Pattern::vertical_slash, 30, 100}}), hc::InputError);
  CHECK_THROWS_AS(probe_grid_ref(gi, 0, {{Pattern::block_sparse, 4, 0}}), hc::InputError);
  CHECK_THROWS_AS(probe_grid_ref(gi, 0, {{Pattern::a_shape, 64, 0}}), hc::InputError);
  CHECK_THROWS_AS(probe_grid_ref(gi, 2, {{Pattern::a_shape, 64, 64}}), hc::InputError);
  CHECK_NOTHROW(probe_grid_ref(gi, 1, {{Pattern::a_shape, 64, 64}}));
  // The candidates' indexes from shared estimates refuse a missing or mis-sized one alike.
  CHECK_THROWS_AS(head_index_from_estimates(70, {Pattern::vertical_slash, 30, 100}, nullptr, nullptr), hc::InputError);
  const BlockScores bs = block_scores(in.q.data(), in.k.data(), dims, 0);
  CHECK_THROWS_AS(head_index_from_estimates(200, {Pattern::block_sparse, 4, 0}, nullptr, &bs), hc::InputError);
  CHECK(head_index_from_estimates(70, {Pattern::block_sparse, 4, 0}, nullptr, &bs).cols.empty());
}

TEST_CASE("grid probe: candidates keeping only underflowing weights of a row are still exact") {
  // One key (j = 100, key block 1) scores ~1000 above the rest for every row: a candidate that
  // drops it keeps a share of the dense softmax near exp(-1000), far below double's range, yet
  // its output over its own keys is well defined (and what one probe per candidate gives).
  const Dims m{200, 1, 1, 64};
  sparse_test::Inputs in = sparse_test::random_inputs(m, 8, 0.5f);
  for (int64_t i = 0; i < m.n; ++i) in.q[i * 64] = 40.f;
  in.k[100 * 64] = 200.f;
  const AttentionDims dims = to_dims(m);
  std::vector<float> o_ref(in.q.size());
  dense_attention_ref(dims, in.q.data(), in.k.data(), in.v.data(), o_ref.data(), nullptr);
  const EstimatorSettings settings{64, 3, 5};
  const VerticalSlashScores vs = vertical_slash_scores(in.q.data(), in.k.data(), dims, 0, settings.last_q);
  const BlockScores bs = block_scores(in.q.data(), in.k.data(), dims, 0);
  GridProbeInputs gi{dims, in.q.data(), in.k.data(), in.v.data(), o_ref.data(), &vs, &bs};
  const std::vector<PatternConfig> grid = {{Pattern::block_sparse, 2, 0}, {Pattern::a_shape, 64, 64},
                                           {Pattern::vertical_slash, 3, 5}, {Pattern::dense, 0, 0}};
  const auto got = probe_grid_ref(gi, 0, grid, settings, 2);
  const auto want = one_by_one(in, o_ref, 0, grid, settings);
  for (size_t c = 0; c < grid.size(); ++c) {
    INFO(describe(grid[c]));
    CHECK(std::isfinite(got[c].out_err));
    CHECK(got[c].recall == Approx(want[c].recall).margin(2e-6));
    CHECK(got[c].out_err == Approx(want[c].out_err).epsilon(1e-4).margin(1e-6));
  }
  CHECK(got[0].out_err > 0.5);  // rows 128..199 lose the key that holds all their attention
}

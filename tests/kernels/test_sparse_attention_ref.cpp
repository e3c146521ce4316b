// Sparse attention CPU reference against brute-force masked softmax attention (double), the
// probe's recall against brute-force dense probabilities, and the dense-index identity with
// dense_attention_ref.
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "catch.h"
#include "common/error.h"
#include "kernels/attention/attention_ref.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/coverage.h"
#include "kernels/sparse/index_ref.h"
#include "kernels/sparse/sparse_attention_ref.h"
#include "sparse_test_inputs.h"

using namespace hc::kernels;
using sparse_test::Dims;
using sparse_test::RowSets;

namespace {

AttentionDims to_dims(const Dims& m) { return {m.n, m.h, m.hkv, m.d}; }

struct Run {
  std::vector<float> o, lse;
  SparseProbe probe;
};

// Runs the reference in probe mode with the brute-force dense LSE of every head.
Run run_probe(const sparse_test::Inputs& in, const SparseIndex& index, int n_threads = 2) {
  const Dims& m = in.dims;
  std::vector<float> dense_lse(m.h * m.n);  // [H, N] brute force
  const RowSets all = sparse_test::brute_dense(m.n);
  for (int64_t h = 0; h < m.h; ++h) {
    const auto dense = sparse_test::brute_attention(in, h, all);
    for (int64_t i = 0; i < m.n; ++i) dense_lse[h * m.n + i] = float(dense.lse[i]);
  }
  Run run;
  run.o.assign(m.n * m.h * m.d, -7.f);
  run.lse.assign(m.h * m.n, -7.f);
  SparseRefOptions options;
  options.dense_lse = dense_lse.data();
  options.n_threads = n_threads;
  sparse_attention_ref(to_dims(m), in.q.data(), in.k.data(), in.v.data(), index.view(), run.o.data(),
                       run.lse.data(), options, &run.probe);
  return run;
}

// Output, LSE, recall and pair counts of every head against brute force over covered_keys' sets
// (whose equality with the DESIGN.md definitions is test_sparse_index's job).
void require_matches_brute(const sparse_test::Inputs& in, const SparseIndex& index, const std::string& label) {
  INFO(label);
  const Dims& m = in.dims;
  const Run run = run_probe(in, index);
  std::vector<int32_t> keys;
  for (int64_t h = 0; h < m.h; ++h) {
    RowSets sets(m.n);
    for (int64_t i = 0; i < m.n; ++i) covered_keys(index.view(), h, i, sets[i]);
    const auto brute = sparse_test::brute_attention(in, h, sets);
    INFO("head " << h);
    double max_o_err = 0, max_lse_err = 0;
    for (int64_t i = 0; i < m.n; ++i) {
      for (int64_t x = 0; x < m.d; ++x)
        max_o_err = std::max(max_o_err, std::abs(run.o[(i * m.h + h) * m.d + x] - brute.o[i * m.d + x]));
      max_lse_err = std::max(max_lse_err, std::abs(run.lse[h * m.n + i] - brute.lse[i]));
    }
    REQUIRE(max_o_err < 2e-6);
    REQUIRE(max_lse_err < 2e-5);
    REQUIRE(run.probe.recall[h] == Approx(brute.recall).epsilon(1e-5));
    REQUIRE(run.probe.covered_pairs[h] == brute.pairs);
    REQUIRE(run.probe.kernel_pairs[h] == kernel_pair_count(index, h));
    REQUIRE(run.probe.kernel_pairs[h] >= run.probe.covered_pairs[h]);
    REQUIRE(run.probe.recall[h] <= 1.0 + 1e-5);
  }
}

}  // namespace

TEST_CASE("sparse reference equals brute-force masked attention for every pattern", "[sparse]") {
  uint32_t seed = 500;
  for (int64_t n : {1, 5, 63, 64, 65, 127, 200, 333})
    for (auto [h, hkv] : std::vector<std::pair<int64_t, int64_t>>{{6, 2}, {4, 1}})
      for (int64_t d : {64, 128}) {
        if (n == 333 && d == 128) continue;  // brute force is O(N^2 d) per head
        const Dims dims{n, h, hkv, d};
        const auto in = (seed % 2) ? sparse_test::peaked_inputs(dims, seed) : sparse_test::random_inputs(dims, seed);
        ++seed;
        const std::string at = " N=" + std::to_string(n) + " H=" + std::to_string(h) + " d=" + std::to_string(d);
        require_matches_brute(in, build_dense_index(n, h), "dense" + at);
        require_matches_brute(in, build_a_shape_index(n, h, 4, 20), "a_shape" + at);
        require_matches_brute(
            in, build_vertical_slash_index(in.q.data(), in.k.data(), to_dims(dims), 8, 6, 64, 3, 2), "vs" + at);
        require_matches_brute(in, build_block_sparse_index(in.q.data(), in.k.data(), to_dims(dims), 2), "bs" + at);
      }
}

TEST_CASE("dense index reproduces dense_attention_ref with recall 1", "[sparse]") {
  for (int64_t n : {1, 65, 200})
    for (int64_t d : {64, 128}) {
      const Dims dims{n, 6, 2, d};
      const auto in = sparse_test::random_inputs(dims, uint32_t(n * 3 + d));
      std::vector<float> o_dense(n * 6 * d), lse_dense(6 * n);
      dense_attention_ref(to_dims(dims), in.q.data(), in.k.data(), in.v.data(), o_dense.data(), lse_dense.data());
      std::vector<float> o(n * 6 * d), lse(6 * n);
      SparseRefOptions options;
      options.dense_lse = lse_dense.data();
      SparseProbe probe;
      sparse_attention_ref(to_dims(dims), in.q.data(), in.k.data(), in.v.data(), build_dense_index(n, 6).view(),
                           o.data(), lse.data(), options, &probe);
      for (size_t x = 0; x < o.size(); ++x) REQUIRE(o[x] == Approx(o_dense[x]).margin(1e-5));
      for (size_t x = 0; x < lse.size(); ++x) REQUIRE(lse[x] == Approx(lse_dense[x]).margin(1e-5));
      for (int64_t h = 0; h < 6; ++h) {
        REQUIRE(probe.recall[h] == Approx(1.0).epsilon(1e-5));
        REQUIRE(probe.covered_pairs[h] == n * (n + 1) / 2);
        REQUIRE(probe.kernel_pairs[h] == dense_pair_count(n));
      }
    }
}

TEST_CASE("a one-head index probes any head through first_head; threads do not change results", "[sparse]") {
  const Dims dims{200, 6, 2, 64};
  const auto in = sparse_test::peaked_inputs(dims, 31);
  const SparseIndex full = build_vertical_slash_index(in.q.data(), in.k.data(), to_dims(dims), 40, 10, 64, 30, 5);
  const Run all = run_probe(in, full, 1);
  const Run threaded = run_probe(in, full, 4);
  REQUIRE(all.o == threaded.o);
  REQUIRE(all.lse == threaded.lse);
  REQUIRE(all.probe.recall == threaded.probe.recall);
  std::vector<float> dense_lse(6 * 200);
  std::vector<float> dense_o(200 * 6 * 64);
  dense_attention_ref(to_dims(dims), in.q.data(), in.k.data(), in.v.data(), dense_o.data(), dense_lse.data());
  for (int64_t head : {0, 4, 5}) {
    std::vector<float> o(200 * 6 * 64, 123.f), lse(6 * 200, 123.f);
    SparseRefOptions options;
    options.first_head = head;
    options.dense_lse = dense_lse.data();
    SparseProbe probe;
    sparse_attention_ref(to_dims(dims), in.q.data(), in.k.data(), in.v.data(), head_slice(full, head).view(),
                         o.data(), lse.data(), options, &probe);
    REQUIRE(probe.recall.size() == 1);
    REQUIRE(probe.recall[0] == Approx(all.probe.recall[head]).epsilon(1e-5));
    REQUIRE(probe.kernel_pairs[0] == all.probe.kernel_pairs[head]);
    for (int64_t i = 0; i < 200; ++i) {
      REQUIRE(lse[head * 200 + i] == all.lse[head * 200 + i]);
      REQUIRE(lse[((head + 1) % 6) * 200 + i] == 123.f);  // other heads untouched
      for (int64_t x = 0; x < 64; ++x) REQUIRE(o[(i * 6 + head) * 64 + x] == all.o[(i * 6 + head) * 64 + x]);
    }
  }
  SparseRefOptions bad;
  bad.first_head = 6;
  REQUIRE_THROWS_AS(sparse_attention_ref(to_dims(dims), in.q.data(), in.k.data(), in.v.data(),
                                         head_slice(full, 0).view(), nullptr, nullptr, bad),
                    hc::InputError);
  REQUIRE_THROWS_AS(sparse_attention_ref(to_dims(dims), in.q.data(), in.k.data(), in.v.data(),
                                         build_dense_index(199, 6).view(), nullptr, nullptr),
                    hc::InputError);
}

TEST_CASE("rows with nothing to compute get o = 0 and lse = -inf", "[sparse]") {
  // Block 0 has no ranges; block 1 has [0, 10).
  SparseIndex index;
  index.n_heads = 1;
  index.n_tokens = 100;
  index.range_offsets = {0, 0, 1};
  index.range_begin = {0};
  index.range_end = {10};
  index.col_offsets = {0, 0, 0};
  validate_index(index.view());
  const Dims dims{100, 1, 1, 64};
  const auto in = sparse_test::random_inputs(dims, 3);
  std::vector<float> o(100 * 64, 5.f), lse(100, 5.f);
  sparse_attention_ref(to_dims(dims), in.q.data(), in.k.data(), in.v.data(), index.view(), o.data(), lse.data());
  for (int64_t i = 0; i < 64; ++i) {
    REQUIRE(std::isinf(lse[i]));
    REQUIRE(lse[i] < 0);
    REQUIRE(o[i * 64] == 0.f);
  }
  REQUIRE(std::isfinite(lse[70]));
}

TEST_CASE("probe at N = 4096 with 9 heads: recall grows with the budget", "[sparse]") {
  const Dims dims{4096, 9, 3, 64};
  const auto in = sparse_test::peaked_inputs(dims, 11);
  std::vector<float> dense_lse(9 * 4096);
  std::vector<float> dense_o(4096 * 9 * 64);
  dense_attention_ref(to_dims(dims), in.q.data(), in.k.data(), in.v.data(), dense_o.data(), dense_lse.data());
  double previous = 0;
  for (int s : {100, 300, 700}) {
    const SparseIndex index = build_vertical_slash_index(in.q.data(), in.k.data(), to_dims(dims), 200, s);
    SparseRefOptions options;
    options.dense_lse = dense_lse.data();
    SparseProbe probe;
    sparse_attention_ref(to_dims(dims), in.q.data(), in.k.data(), in.v.data(), index.view(), nullptr, nullptr,
                         options, &probe);
    double mean = 0;
    for (int64_t h = 0; h < 9; ++h) {
      REQUIRE(probe.recall[h] > 0.0);
      REQUIRE(probe.recall[h] <= 1.0 + 1e-5);
      REQUIRE(probe.covered_pairs[h] == covered_pair_count(index.view(), h));
      mean += probe.recall[h] / 9;
    }
    REQUIRE(mean >= previous - 1e-9);  // more diagonals never lose recall (S grows as a superset)
    previous = mean;
  }
  REQUIRE(previous > 0.5);
}

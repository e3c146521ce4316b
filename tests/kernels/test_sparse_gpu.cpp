// The CUDA index-driven kernel against sparse_attention_ref (O, LSE, probe recall, kernel pair
// count) for every pattern, and the GPU index builders against the CPU builders.
#include "catch.h"

#if defined(HEADCAL_HAVE_CUDA)
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "common/error.h"
#include "kernels/attention/attention.h"
#include "kernels/attention/attention_ref.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/coverage.h"
#include "kernels/sparse/index_gpu.h"
#include "kernels/sparse/index_ref.h"
#include "kernels/sparse/sparse_attention_ref.h"
#include "tests/kernels/gpu_attention_fixture.h"

using namespace hc;
using namespace hc::kernels;
using hc::test::AttentionProblem;
using hc::test::check_same_index;
using hc::test::structured_problem;
using hc::test::DeviceArray;

namespace {

struct CpuResult {
  std::vector<float> o, lse;
  SparseProbe probe;
};

struct GpuResult {
  std::vector<float> o, lse;
  std::vector<double> recall;
  std::vector<long long> pairs;
};

// probe = true runs probe mode (the mma.sync kernel); false the plain index-driven run (the
// warp-specialised wgmma kernel on Hopper). Both must match the CPU reference.
// announce_total_cols = false leaves the view's total_cols unknown: the launcher then reads it, or,
// with announce_capacity >= 0, sizes its buffers by that bound (as for a GPU build's index).
// flip_tile_hint inverts the index's row_blocks_share_tiles, so that at d = 64 every index also
// runs through the other work-tile height (three row blocks per CTA instead of two, or back; at
// d = 128 the kernel takes three for every index).
GpuResult run_gpu(const AttentionProblem& pb, const SparseIndex& index, const std::vector<float>& dense_lse,
                  bool probe = true, bool announce_total_cols = true, bool flip_tile_hint = false,
                  int64_t announce_capacity = -1) {
  const auto& d = pb.dims;
  test::DeviceIndex di(index);
  di.announce_total_cols = announce_total_cols;
  di.announce_capacity = announce_capacity;
  if (flip_tile_hint) di.row_blocks_share_tiles = !di.row_blocks_share_tiles;
  DeviceArray<uint16_t> o(d.n_tokens * d.n_heads * d.head_dim);
  DeviceArray<float> lse(d.n_heads * d.n_tokens);
  DeviceArray<float> plse(dense_lse);
  DeviceArray<double> recall(d.n_heads);
  DeviceArray<long long> pairs(d.n_heads);
  o.fill_bytes(0xff);
  lse.fill_bytes(0xff);
  recall.fill_bytes(0xff);
  AttentionParams p = pb.params(o.get(), lse.get());
  if (probe) {
    p.probe_lse = plse.get();
    p.probe_recall = recall.get();
    p.probe_pairs = pairs.get();
  }
  sparse_attention_forward(p, di.view());
  return {test::from_half(o.download(), pb.dtype), lse.download(), recall.download(), pairs.download()};
}

CpuResult run_cpu(const AttentionProblem& pb, const SparseIndex& index, std::vector<float>& dense_lse) {
  const auto& d = pb.dims;
  std::vector<float> dense_o(d.n_tokens * d.n_heads * d.head_dim);
  dense_lse.resize(d.n_heads * d.n_tokens);
  dense_attention_ref(d, pb.q.values.data(), pb.k.values.data(), pb.v.values.data(), dense_o.data(),
                      dense_lse.data());
  CpuResult r;
  r.o.resize(dense_o.size());
  r.lse.resize(dense_lse.size());
  SparseRefOptions opt;
  opt.dense_lse = dense_lse.data();
  sparse_attention_ref(d, pb.q.values.data(), pb.k.values.data(), pb.v.values.data(), index.view(),
                       r.o.data(), r.lse.data(), opt, &r.probe);
  return r;
}

void check_sparse(const AttentionProblem& pb, const SparseIndex& index) {
  validate_index(index.view());
  std::vector<float> dense_lse;
  const CpuResult cpu = run_cpu(pb, index, dense_lse);
  const GpuResult gpu = run_gpu(pb, index, dense_lse, true);
  // A bound above the column count, as a GPU build's index announces.
  const int64_t capacity = static_cast<int64_t>(index.cols.size()) + 37;
  for (int run_kind = 0; run_kind < 5; ++run_kind) {
    const bool probe = run_kind == 0;
    const GpuResult run = probe ? gpu
                                : run_gpu(pb, index, dense_lse, false, run_kind == 1 || run_kind == 3, run_kind == 3,
                                          run_kind == 4 ? capacity : -1);
    const auto eo = test::compare(run.o, cpu.o);
    const auto el = test::compare(run.lse, cpu.lse);
    const double o_tol = (pb.dtype == AttnDType::kBF16 ? 0.012 : 0.004) * std::max(1.0, eo.max_ref);
    INFO((probe            ? "probe run"
          : run_kind == 1  ? "plain run"
          : run_kind == 2  ? "plain run, total_cols unknown"
          : run_kind == 3  ? "plain run, row_blocks_share_tiles flipped"
                           : "plain run, total_cols unknown, capacity announced")
         << ": O max abs err " << eo.max_abs << " mean " << eo.mean_abs << "; LSE max abs err " << el.max_abs);
    CHECK(eo.finite);
    CHECK(el.finite);
    CHECK(eo.max_abs <= o_tol);
    CHECK(el.max_abs <= 1e-3 * std::max(1.0, el.max_ref));
  }
  for (int64_t h = 0; h < pb.dims.n_heads; ++h) {
    INFO("head " << h << " recall gpu " << gpu.recall[h] << " cpu " << cpu.probe.recall[h]);
    CHECK(std::fabs(gpu.recall[h] - cpu.probe.recall[h]) <= 1e-3);
    CHECK(gpu.pairs[h] == cpu.probe.kernel_pairs[h]);
    CHECK(gpu.recall[h] <= 1.0 + 1e-3);
  }
}


}  // namespace

TEST_CASE("sparse kernel matches sparse_attention_ref for every pattern", "[gpu][sparse]") {
  HC_REQUIRE_GPU();
  struct Case {
    PatternConfig config;
    const char* name;
  };
  const std::vector<Case> cases = {
      {{Pattern::dense, 0, 0}, "dense"},
      {{Pattern::a_shape, 16, 64}, "a_shape(16,64)"},
      {{Pattern::a_shape, 0, 100}, "a_shape(0,100)"},
      {{Pattern::a_shape, 70, 1}, "a_shape(70,1)"},
      {{Pattern::vertical_slash, 40, 110}, "vertical_slash(40,110)"},
      {{Pattern::vertical_slash, 300, 5}, "vertical_slash(300,5)"},
      {{Pattern::block_sparse, 3, 0}, "block_sparse(3)"},
      {{Pattern::block_sparse, 1, 0}, "block_sparse(1)"},
  };
  for (const auto& c : cases) {
    for (int d : {64, 128}) {
      for (int n : {1, 17, 200, 1000}) {
        DYNAMIC_SECTION(c.name << " d=" << d << " N=" << n) {
          const AttnDType dt = (n == 200) ? AttnDType::kFP16 : AttnDType::kBF16;
          AttentionProblem pb = structured_problem(n, 9, 3, d, dt, 300u + n + d);
          const SparseIndex index = build_index(pb.q.values.data(), pb.k.values.data(), pb.dims,
                                                std::vector<PatternConfig>(9, c.config));
          check_sparse(pb, index);
        }
      }
    }
  }
}

TEST_CASE("sparse kernel: heads with mixed patterns, GQA 32/8, an empty slot", "[gpu][sparse]") {
  HC_REQUIRE_GPU();
  SECTION("mixed patterns per head (band only on the a_shape heads)") {
    AttentionProblem pb = structured_problem(777, 8, 2, 64, AttnDType::kBF16, 11);
    std::vector<PatternConfig> configs = {
        {Pattern::a_shape, 4, 100},        {Pattern::vertical_slash, 50, 120},
        {Pattern::block_sparse, 4, 0},     {Pattern::dense, 0, 0},
        {Pattern::a_shape, 64, 64},        {Pattern::vertical_slash, 700, 700},
        {Pattern::block_sparse, 13, 0},    {Pattern::a_shape, 1, 333}};
    check_sparse(pb, build_index(pb.q.values.data(), pb.k.values.data(), pb.dims, configs));
  }
  SECTION("GQA 32/8, d=128, N=300") {
    AttentionProblem pb = structured_problem(300, 32, 8, 128, AttnDType::kBF16, 12);
    check_sparse(pb, build_index(pb.q.values.data(), pb.k.values.data(), pb.dims,
                                 std::vector<PatternConfig>(32, {Pattern::vertical_slash, 35, 105})));
  }
  SECTION("a slot with nothing to compute gives O = 0, LSE = -inf") {
    AttentionProblem pb(100, 1, 1, 64, AttnDType::kBF16, 13);
    SparseIndex index;
    index.n_heads = 1;
    index.n_tokens = 100;
    index.range_offsets = {0, 1, 1};
    index.range_begin = {0};
    index.range_end = {10};
    index.col_offsets = {0, 0, 0};
    check_sparse(pb, index);
    std::vector<float> dense_lse(100, 0.f);
    for (bool probe : {true, false}) {
      const GpuResult gpu = run_gpu(pb, index, dense_lse, probe);
      CHECK(std::isinf(gpu.lse[70]));
      CHECK(gpu.lse[70] < 0);
      CHECK(gpu.o[70 * 64 + 5] == 0.f);
    }
  }
}

TEST_CASE("persistent CTAs: many work tiles through one CTA, mixed patterns, GQA", "[gpu][sparse]") {
  HC_REQUIRE_GPU();
  // 1050 tokens: at d = 64 9 row tiles of 128 (the last one 26 rows: its second consumer has
  // none, and its Q buffer still holds an earlier tile's rows) x 8 heads = 72 work tiles; at
  // d = 128, and at d = 64 with the hint flipped (check_sparse), 6 of 192 rows x 8 heads (the last
  // one 90 rows: its third consumer has none); taken by 1 or 3 CTAs: Q buffers and ring stages
  // reused across tiles with heads, bands and patterns changing from one tile to the next.
  const std::vector<PatternConfig> configs = {
      {Pattern::a_shape, 4, 100},     {Pattern::vertical_slash, 50, 120}, {Pattern::block_sparse, 4, 0},
      {Pattern::dense, 0, 0},         {Pattern::a_shape, 64, 64},         {Pattern::vertical_slash, 700, 700},
      {Pattern::block_sparse, 13, 0}, {Pattern::a_shape, 1, 333}};
  for (int d : {64, 128}) {
    AttentionProblem pb = structured_problem(1050, 8, 2, d, AttnDType::kBF16, 40u + d);
    const SparseIndex index = build_index(pb.q.values.data(), pb.k.values.data(), pb.dims, configs);
    for (int ctas : {1, 3}) {
      DYNAMIC_SECTION("d=" << d << ", " << ctas << " CTA(s)") {
        hc::kernels::detail::ScopedCtaCap cap(ctas);
        check_sparse(pb, index);
      }
    }
  }
}

// ---- GPU index builders ----

namespace {

// The host copy of a GPU build, after checking what its view announces: the column count, or
// (bounded builds) a capacity at least that count, with the counts read back on demand.
SparseIndex download(const DeviceSparseIndex& gpu) {
  const SparseIndexView v = gpu.view();
  const SparseIndex h = gpu.to_host();
  const auto n_cols = static_cast<int64_t>(h.cols.size());
  CHECK((v.total_cols == -1 || v.total_cols == n_cols));
  CHECK(v.col_capacity >= n_cols);
  CHECK(gpu.total_cols() == n_cols);
  CHECK(gpu.total_ranges() == static_cast<int64_t>(h.range_begin.size()));
  CHECK(gpu.view().total_cols == n_cols);  // read back once, then announced
  return h;
}


}  // namespace

TEST_CASE("GPU index builders produce the CPU builders' index", "[gpu][sparse][index]") {
  HC_REQUIRE_GPU();
  // 70000 tokens x 3 heads: 3282 slots, several blocks of the closed-form kernel.
  for (int n : {1, 17, 63, 65, 200, 1000, 2500, 70000}) {
    DYNAMIC_SECTION("dense and a_shape N=" << n) {
      check_same_index(download(build_dense_index_gpu(n, 3)), build_dense_index(n, 3));
      for (auto [sink, local] : {std::pair{16, 64}, {0, 1}, {100, 800}, {128, 3968}, {70, 1}})
        check_same_index(download(build_a_shape_index_gpu(n, 3, sink, local)),
                         build_a_shape_index(n, 3, sink, local));
    }
  }
  for (int d : {64, 128}) {
    for (int n : {1, 17, 65, 200, 1000, 2500}) {
      DYNAMIC_SECTION("estimated patterns d=" << d << " N=" << n) {
        AttentionProblem pb = structured_problem(n, 6, 2, d, AttnDType::kBF16, 900u + n + d);
        GpuQK qk{pb.dq.get(), pb.dk.get(), pb.dtype, static_cast<int>(n), 6, 2, d};
        for (auto [v, s] : {std::pair{40, 110}, {300, 5}, {1000, 200}, {0, 0}}) {
          INFO("vertical_slash(" << v << "," << s << ")");
          const DeviceSparseIndex built = build_vertical_slash_index_gpu(qk, v, s);
          CHECK(built.view().total_cols == -1);  // small: sized by its bounds, nothing read back
          check_same_index(download(built),
                           build_vertical_slash_index(pb.q.values.data(), pb.k.values.data(), pb.dims, v, s));
        }
        for (int k : {1, 3, 8, 100}) {
          INFO("block_sparse(" << k << ")");
          const DeviceSparseIndex built = build_block_sparse_index_gpu(qk, k);
          CHECK(built.view().total_cols == -1);
          check_same_index(download(built),
                           build_block_sparse_index(pb.q.values.data(), pb.k.values.data(), pb.dims, k));
        }
      }
    }
  }
  SECTION("estimated patterns, more slots than one round of the offsets scan") {
    // 100000 tokens x 6 heads: 9378 slots (a scan round is 8192); 1563 row blocks, so the
    // block-sparse selection runs many multi-row CTAs, the last one partial.
    const int n = 100000;
    AttentionProblem pb = structured_problem(n, 6, 2, 64, AttnDType::kBF16, 4242u);
    GpuQK qk{pb.dq.get(), pb.dk.get(), pb.dtype, n, 6, 2, 64};
    // Its columns' bound (6 heads x 1563 blocks x 1000) is past kBoundedBuildBytes: the build
    // reads its totals back and announces them.
    const DeviceSparseIndex built = build_vertical_slash_index_gpu(qk, 1000, 200);
    CHECK(built.view().total_cols >= 0);
    check_same_index(download(built),
                     build_vertical_slash_index(pb.q.values.data(), pb.k.values.data(), pb.dims, 1000, 200));
    check_same_index(download(build_block_sparse_index_gpu(qk, 8)),
                     build_block_sparse_index(pb.q.values.data(), pb.k.values.data(), pb.dims, 8));
  }
}

TEST_CASE("GPU index builders reject bad parameters", "[sparse][index]") {
  GpuQK qk{nullptr, nullptr, AttnDType::kBF16, 100, 4, 2, 64};
  CHECK_THROWS_AS(build_vertical_slash_index_gpu(qk, 10, 10), hc::InputError);  // null q/k
  CHECK_THROWS_AS(build_a_shape_index_gpu(100, 2, 4, 0), hc::InputError);        // local < 1
  CHECK_THROWS_AS(build_dense_index_gpu(0, 2), hc::InputError);
  int dummy = 0;
  qk.q = qk.k = &dummy;
  CHECK_THROWS_AS(build_block_sparse_index_gpu(qk, 0), hc::InputError);
  qk.head_dim = 96;
  CHECK_THROWS_AS(build_block_sparse_index_gpu(qk, 4), hc::InputError);
}

#else
TEST_CASE("sparse GPU tests need CUDA", "[gpu][sparse]") { HC_REQUIRE_GPU(); }
#endif

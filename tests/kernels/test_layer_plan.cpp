// The layer planner (kernels/sparse/layer_plan.h): its index equals the CPU build_index of the same
// per-head configs, its run equals sparse_attention_ref on that index (odd N, N < 64, GQA, both
// head dims), and plan + run capture into a CUDA graph (no host synchronisation, no allocation).
#include "catch.h"

#if defined(HEADCAL_HAVE_CUDA)
#include <cmath>
#include <vector>

#include "common/error.h"
#include "kernels/attention/attention.h"
#include "kernels/attention/attention_ref.h"
#include "kernels/sparse/index_ref.h"
#include "kernels/sparse/layer_plan.h"
#include "kernels/sparse/sparse_attention_ref.h"
#include "tests/kernels/gpu_attention_fixture.h"

using namespace hc;
using namespace hc::kernels;
using hc::test::AttentionProblem;
using hc::test::DeviceArray;

namespace {

using Layer = std::vector<PatternConfig>;

// Six heads per layer: mixed, estimated only, static only, all dense.
std::vector<Layer> profile_layers() {
  return {
      {{Pattern::vertical_slash, 40, 110}, {Pattern::a_shape, 16, 64}, {Pattern::block_sparse, 3, 0},
       {Pattern::dense, 0, 0}, {Pattern::vertical_slash, 300, 5}, {Pattern::a_shape, 0, 100}},
      {{Pattern::vertical_slash, 40, 110}, {Pattern::vertical_slash, 0, 0}, {Pattern::block_sparse, 8, 0},
       {Pattern::vertical_slash, 1000, 200}, {Pattern::block_sparse, 1, 0}, {Pattern::vertical_slash, 5, 500}},
      {{Pattern::dense, 0, 0}, {Pattern::a_shape, 16, 64}, {Pattern::a_shape, 70, 1}, {Pattern::dense, 0, 0},
       {Pattern::a_shape, 128, 3968}, {Pattern::a_shape, 0, 1}},
      Layer(6, {Pattern::dense, 0, 0}),
  };
}

// The planner's index on the host (its totals read from its offsets).
SparseIndex download(const SparseIndexView& v) {
  const int64_t n_slots = v.n_heads * num_row_blocks(v.n_tokens);
  SparseIndex h;
  h.n_heads = v.n_heads;
  h.n_tokens = v.n_tokens;
  h.row_blocks_share_tiles = v.row_blocks_share_tiles;
  auto copy = [](std::vector<int32_t>& dst, const int32_t* src, int64_t count) {
    dst.resize(static_cast<size_t>(count));
    if (count > 0) HC_CHECK_CUDA(cudaMemcpy(dst.data(), src, count * sizeof(int32_t), cudaMemcpyDeviceToHost));
  };
  HC_CHECK_CUDA(cudaDeviceSynchronize());
  copy(h.range_offsets, v.range_offsets, n_slots + 1);
  copy(h.col_offsets, v.col_offsets, n_slots + 1);
  copy(h.range_begin, v.range_begin, h.range_offsets.back());
  copy(h.range_end, v.range_end, h.range_offsets.back());
  copy(h.cols, v.cols, h.col_offsets.back());
  CHECK(v.col_capacity >= static_cast<int64_t>(h.cols.size()));
  copy(h.band_sink, v.band_sink, v.n_heads);
  copy(h.band_local, v.band_local, v.n_heads);
  return h;
}

// build_index's index, with the planner's band convention: every head has a band entry, zero
// (no band) but on a_shape heads.
SparseIndex cpu_index(const AttentionProblem& pb, const Layer& layer) {
  SparseIndex want = build_index(pb.q.values.data(), pb.k.values.data(), pb.dims, layer);
  if (want.band_local.empty()) {
    want.band_sink.assign(static_cast<size_t>(want.n_heads), 0);
    want.band_local.assign(static_cast<size_t>(want.n_heads), 0);
  }
  for (size_t h = 0; h < layer.size(); ++h)
    if (layer[h].pattern != Pattern::a_shape) want.band_sink[h] = 0;
  return want;
}

GpuQK qk_of(const AttentionProblem& pb) {
  return GpuQK{pb.dq.get(), pb.dk.get(), pb.dtype, static_cast<int>(pb.dims.n_tokens),
               static_cast<int>(pb.dims.n_heads), static_cast<int>(pb.dims.n_kv_heads), pb.dims.head_dim};
}

LayerShape shape_of(int max_tokens, const AttentionProblem& pb) {
  return LayerShape{max_tokens, static_cast<int>(pb.dims.n_heads), static_cast<int>(pb.dims.n_kv_heads),
                    static_cast<int>(pb.dims.head_dim)};
}

struct RunOutput {
  std::vector<float> o, lse;
};

RunOutput run_plan(LayerPlanner& planner, const AttentionProblem& pb) {
  const auto& d = pb.dims;
  DeviceArray<uint16_t> o(d.n_tokens * d.n_heads * d.head_dim);
  DeviceArray<float> lse(d.n_heads * d.n_tokens);
  o.fill_bytes(0xff);
  lse.fill_bytes(0xff);
  planner.run(pb.params(o.get(), lse.get()));
  return {test::from_half(o.download(), pb.dtype), lse.download()};
}

void check_run(const RunOutput& got, const std::vector<float>& want_o, const std::vector<float>& want_lse,
               AttnDType dtype) {
  const auto eo = test::compare(got.o, want_o);
  const auto el = test::compare(got.lse, want_lse);
  INFO("O max abs err " << eo.max_abs << "; LSE max abs err " << el.max_abs);
  CHECK(eo.finite);
  CHECK(el.finite);
  CHECK(eo.max_abs <= (dtype == AttnDType::kBF16 ? 0.012 : 0.004) * std::max(1.0, eo.max_ref));
  CHECK(el.max_abs <= 1e-3 * std::max(1.0, el.max_ref));
}

}  // namespace

TEST_CASE("layer plan: each layer's index is build_index's, at any N up to the plan's", "[gpu][plan]") {
  HC_REQUIRE_GPU();
  const std::vector<Layer> layers = profile_layers();
  for (int d : {64, 128}) {
    // One planner for every N: the workspace is sized for the longest and reused.
    AttentionProblem shape_pb = test::structured_problem(1, 6, 2, d, AttnDType::kBF16, 1);
    LayerPlanner planner(layers, shape_of(2500, shape_pb));
    for (int n : {1, 17, 63, 65, 200, 1000, 2500}) {
      DYNAMIC_SECTION("d=" << d << " N=" << n) {
        AttentionProblem pb = test::structured_problem(n, 6, 2, d, AttnDType::kBF16, 500u + n + d);
        for (size_t l = 0; l < layers.size(); ++l) {
          INFO("layer " << l);
          planner.plan(static_cast<int>(l), qk_of(pb));
          if (planner.all_dense(static_cast<int>(l))) {
            CHECK(planner.index().n_heads == 0);  // nothing built: run takes the dense kernel
            planner.estimate(qk_of(pb));
            planner.build(static_cast<int>(l));
          }
          test::check_same_index(download(planner.index()), cpu_index(pb, layers[l]));
        }
      }
    }
  }
}

TEST_CASE("layer plan: run equals sparse_attention_ref on the layer's index (GQA, odd N)", "[gpu][plan]") {
  HC_REQUIRE_GPU();
  const std::vector<Layer> layers = profile_layers();
  for (int d : {64, 128}) {
    for (int n : {37, 700, 1050}) {
      const AttnDType dt = n == 700 ? AttnDType::kFP16 : AttnDType::kBF16;
      AttentionProblem pb = test::structured_problem(n, 6, 2, d, dt, 900u + n + d);
      LayerPlanner planner(layers, shape_of(1100, pb));
      // The same layers in head groups of one KV group (3 heads), as past the workspace cap.
      LayerPlanner grouped(layers, shape_of(1100, pb), {}, nullptr, 1);
      REQUIRE(planner.heads_per_group() == 6);
      REQUIRE(grouped.heads_per_group() == 3);
      const auto& dims = pb.dims;
      std::vector<float> dense_o(dims.n_tokens * dims.n_heads * dims.head_dim), dense_lse(dims.n_heads * dims.n_tokens);
      dense_attention_ref(dims, pb.q.values.data(), pb.k.values.data(), pb.v.values.data(), dense_o.data(),
                          dense_lse.data());
      for (size_t l = 0; l < layers.size(); ++l) {
        DYNAMIC_SECTION("d=" << d << " N=" << n << " layer " << l) {
          const SparseIndex index = build_index(pb.q.values.data(), pb.k.values.data(), dims, layers[l]);
          std::vector<float> want_o(dense_o.size()), want_lse(dense_lse.size());
          SparseRefOptions opt;
          opt.dense_lse = dense_lse.data();
          SparseProbe probe;
          sparse_attention_ref(dims, pb.q.values.data(), pb.k.values.data(), pb.v.values.data(), index.view(),
                               want_o.data(), want_lse.data(), opt, &probe);
          planner.plan(static_cast<int>(l), qk_of(pb));
          check_run(run_plan(planner, pb), want_o, want_lse, dt);
          {  // many work tiles through one persistent CTA: the planner's tile counter is reused
            hc::kernels::detail::ScopedCtaCap cap(1);
            check_run(run_plan(planner, pb), want_o, want_lse, dt);
          }
          // Probe mode over the plan's index (built on demand for the all-dense layer).
          DeviceArray<float> plse(dense_lse);
          DeviceArray<double> recall(dims.n_heads);
          DeviceArray<long long> pairs(dims.n_heads);
          AttentionParams p = pb.params(nullptr, nullptr);
          p.probe_lse = plse.get();
          p.probe_recall = recall.get();
          p.probe_pairs = pairs.get();
          planner.run(p);
          const std::vector<double> got_recall = recall.download();
          const std::vector<long long> got_pairs = pairs.download();
          for (int64_t h = 0; h < dims.n_heads; ++h) {
            INFO("head " << h);
            CHECK(std::fabs(got_recall[h] - probe.recall[h]) <= 1e-3);
            CHECK(got_pairs[h] == probe.kernel_pairs[h]);
          }
          // In head groups: every head written (the outputs start as NaN), the same values, and
          // probe mode's per-head sums in their heads' places.
          grouped.plan(static_cast<int>(l), qk_of(pb));
          check_run(run_plan(grouped, pb), want_o, want_lse, dt);
          recall.fill_bytes(0xff);
          pairs.fill_bytes(0xff);
          grouped.run(p);
          const std::vector<double> grouped_recall = recall.download();
          const std::vector<long long> grouped_pairs = pairs.download();
          for (int64_t h = 0; h < dims.n_heads; ++h) {
            INFO("head " << h << " (head groups)");
            CHECK(std::fabs(grouped_recall[h] - probe.recall[h]) <= 1e-3);
            CHECK(grouped_pairs[h] == probe.kernel_pairs[h]);
          }
        }
      }
    }
  }
}

TEST_CASE("layer plan: plan + run capture into a CUDA graph and replay exactly", "[gpu][plan]") {
  HC_REQUIRE_GPU();
  // Capture (global mode) fails on a host synchronisation or a device allocation, so a plan that
  // captures does neither; the replay must equal the direct run.
  const std::vector<Layer> layers = profile_layers();
  AttentionProblem pb = test::structured_problem(3000, 6, 2, 64, AttnDType::kBF16, 77);
  LayerPlanner planner(layers, shape_of(4096, pb));
  const auto& dims = pb.dims;
  for (int l : {0, 1, 2, 3}) {
    DYNAMIC_SECTION("layer " << l) {
      planner.plan(l, qk_of(pb));
      const RunOutput direct = run_plan(planner, pb);
      DeviceArray<uint16_t> o(dims.n_tokens * dims.n_heads * dims.head_dim);
      DeviceArray<float> lse(dims.n_heads * dims.n_tokens);
      o.fill_bytes(0xff);
      lse.fill_bytes(0xff);
      cudaStream_t stream = nullptr;
      HC_CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
      cudaGraph_t graph = nullptr;
      HC_CHECK_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeGlobal));
      planner.plan(l, qk_of(pb), stream);
      planner.run(pb.params(o.get(), lse.get()), stream);
      HC_CHECK_CUDA(cudaStreamEndCapture(stream, &graph));
      cudaGraphExec_t exec = nullptr;
      HC_CHECK_CUDA(cudaGraphInstantiate(&exec, graph, 0));
      HC_CHECK_CUDA(cudaGraphLaunch(exec, stream));
      HC_CHECK_CUDA(cudaStreamSynchronize(stream));
      CHECK(test::from_half(o.download(), pb.dtype) == direct.o);
      CHECK(lse.download() == direct.lse);
      HC_CHECK_CUDA(cudaGraphExecDestroy(exec));
      HC_CHECK_CUDA(cudaGraphDestroy(graph));
      HC_CHECK_CUDA(cudaStreamDestroy(stream));
    }
  }
}

TEST_CASE("layer plan: a vertical-slash head too large to stage in shared memory gives build_index's index",
          "[gpu][plan]") {
  HC_REQUIRE_GPU();
  // Every column kept at 18,500 tokens: the layer's column and offset strides (18,500 + 2 x 110
  // ints) exceed what the slot passes stage in shared memory (18K ints), so every head's slots
  // search its selection in global memory.
  const int n = 18500;
  const std::vector<Layer> layers = {{{Pattern::vertical_slash, n, 110}, {Pattern::vertical_slash, 40, 110}}};
  for (int d : {64, 128}) {
    DYNAMIC_SECTION("d=" << d) {
      AttentionProblem pb = test::structured_problem(n, 2, 1, d, AttnDType::kBF16, 300u + d);
      LayerPlanner planner(layers, shape_of(n, pb));
      planner.plan(0, qk_of(pb));
      test::check_same_index(download(planner.index()), cpu_index(pb, layers[0]));
    }
  }
}

TEST_CASE("layer plan rejects bad profiles and shapes before touching the device", "[plan]") {
  const LayerShape shape{1024, 4, 2, 64};
  const Layer ok(4, {Pattern::a_shape, 4, 64});
  CHECK_THROWS_AS(LayerPlanner({}, shape), hc::InputError);
  CHECK_THROWS_AS(LayerPlanner({Layer(3, {Pattern::dense, 0, 0})}, shape), hc::InputError);  // 3 heads of 4
  CHECK_THROWS_AS(LayerPlanner({ok, Layer(4, {Pattern::a_shape, 4, 0})}, shape), hc::InputError);  // local 0
  CHECK_THROWS_AS(LayerPlanner({Layer(4, {Pattern::block_sparse, 0, 0})}, shape), hc::InputError);
  CHECK_THROWS_AS(LayerPlanner({ok}, LayerShape{0, 4, 2, 64}), hc::InputError);
  CHECK_THROWS_AS(LayerPlanner({ok}, LayerShape{1024, 4, 3, 64}), hc::InputError);  // 4 heads, 3 kv heads
  CHECK_THROWS_AS(LayerPlanner({ok}, LayerShape{1024, 4, 2, 96}), hc::InputError);
  CHECK_THROWS_AS(LayerPlanner({ok}, shape, EstimatorSettings{65, 30, 100}), hc::InputError);
}

TEST_CASE("layer plan workspace: sized from the patterns' bounds, before touching the device", "[plan]") {
  const LayerShape shape8k{8192, 9, 3, 64};
  const Layer dense(9, {Pattern::dense, 0, 0});
  const Layer a_shape(9, {Pattern::a_shape, 64, 512});
  const Layer vs(9, {Pattern::vertical_slash, 1000, 2000});
  const Layer bs(9, {Pattern::block_sparse, 16, 0});
  const int64_t only_dense = LayerPlanner::workspace_bytes({dense}, shape8k);
  const int64_t with_a_shape = LayerPlanner::workspace_bytes({dense, a_shape}, shape8k);
  const int64_t with_vs = LayerPlanner::workspace_bytes({dense, vs}, shape8k);
  const int64_t with_bs = LayerPlanner::workspace_bytes({dense, bs}, shape8k);
  // Static patterns need no estimate: at most two ranges per slot more.
  CHECK(with_a_shape >= only_dense);
  CHECK(with_a_shape - only_dense <= int64_t(9) * 128 * 2 * 2 * 4 + 4096);
  // The vertical-slash estimate holds two [H, N] score arrays, its columns up to v per slot, and
  // their merged copy: far more than a static layer.
  CHECK(with_vs > with_a_shape + int64_t(2) * 9 * 8192 * 4);
  CHECK(with_bs > with_a_shape);
  // One workspace for every layer: the largest layer's, not the sum.
  CHECK(LayerPlanner::workspace_bytes({vs, vs, vs}, shape8k) - with_vs <= int64_t(2) * 6 * 9 * 4 + 1024);
  // Longer N, more room; more heads, more room.
  CHECK(LayerPlanner::workspace_bytes({vs}, LayerShape{32768, 9, 3, 64}) > LayerPlanner::workspace_bytes({vs}, shape8k));
  CHECK(LayerPlanner::workspace_bytes(std::vector<Layer>{Layer(18, {Pattern::vertical_slash, 1000, 2000})},
                                      LayerShape{8192, 18, 3, 64}) > LayerPlanner::workspace_bytes({vs}, shape8k));
  CHECK_THROWS_AS(LayerPlanner::workspace_bytes({vs}, LayerShape{8192, 6, 3, 64}), hc::InputError);  // 9 configs, 6 heads
}

TEST_CASE("layer plan workspace: past the cap or int32 offsets, heads in groups of whole KV groups", "[plan]") {
  const Layer vs(8, {Pattern::vertical_slash, 1000, 2000});
  const LayerShape shape{8192, 8, 2, 128};  // KV groups of 4 heads
  const int64_t whole = LayerPlanner::workspace_bytes({vs}, shape);
  const int64_t one_group = LayerPlanner::workspace_bytes({vs}, shape, {}, 1);
  CHECK(LayerPlanner::workspace_bytes({vs}, shape, {}, whole) == whole);
  CHECK(LayerPlanner::workspace_bytes({vs}, shape, {}, whole - 1) == one_group);
  CHECK(one_group < whole * 3 / 4);  // the per-head buffers and the index's room halve
  CHECK(one_group > whole / 4);

  // Llama-3-8B's shape (32 heads, 8 KV heads) under MInference's vertical_slash(1000, 6096) on
  // every head: one layer's index at 1M could hold 2.6e9 ranges, past int32 offsets; in groups it
  // fits, within the default cap.
  const Layer mi(32, {Pattern::vertical_slash, 1000, 6096});
  const LayerShape llama{1 << 20, 32, 8, 128};
  const int64_t bytes = LayerPlanner::workspace_bytes({mi}, llama);
  CHECK(bytes <= LayerPlanner::kDefaultWorkspaceCap);
  CHECK(bytes > LayerPlanner::kDefaultWorkspaceCap / 2);
  CHECK(LayerPlanner::workspace_bytes({mi}, LayerShape{131072, 32, 8, 128}) ==
        LayerPlanner::workspace_bytes({mi}, LayerShape{131072, 32, 8, 128}, {}, INT64_MAX));  // one group at 128K
  // One KV head for all 32: no group of whole KV groups fits int32 offsets.
  CHECK_THROWS_AS(LayerPlanner::workspace_bytes({mi}, LayerShape{1 << 20, 32, 1, 128}), hc::InputError);
}

#else
TEST_CASE("layer plan tests need CUDA", "[gpu][plan]") { HC_REQUIRE_GPU(); }
#endif

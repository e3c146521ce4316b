// The GPU grid probe (kernels/sparse/grid_probe_gpu.h) against the CPU reference probe_grid_ref
// on the same inputs (the bf16 values, the GPU's dense output and the GPU's vertical-slash
// scores, so both select the same columns and offsets): every a_shape, vertical_slash and
// block_sparse candidate's recall, out_err and cost, odd N, N < 64, GQA, both head dims.
#include "catch.h"

#if defined(HEADCAL_HAVE_CUDA)
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "calib/prober.h"
#include "common/error.h"
#include "kernels/attention/attention.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/grid_probe_device.cuh"
#include "kernels/sparse/grid_probe_gpu.h"
#include "kernels/sparse/grid_probe_ref.h"
#include "kernels/sparse/index_gpu.h"
#include "kernels/sparse/index_ref.h"
#include "io/calibration/grid.h"
#include "tests/kernels/gpu_attention_fixture.h"

using namespace hc;
using namespace hc::kernels;
using hc::test::AttentionProblem;
using hc::test::DeviceArray;

namespace {

// a_shape, vertical_slash and block_sparse candidates with repeated, odd and MInference-style
// values, beside a dense one the GPU grid probe leaves to the kernel.
std::vector<PatternConfig> grid_for(int n) {
  std::vector<PatternConfig> g = {{Pattern::dense, 0, 0}};
  for (int k : {1, 2, 3, 8, 100}) g.push_back({Pattern::block_sparse, k, 0});
  for (int sink : {0, 64, 100, 128})
    for (int local : {1, 37, 64, 130, 800}) g.push_back({Pattern::a_shape, sink, local});
  for (int v : {3, 30, 100, n / 8 + 3})
    for (int s : {5, 100, 300, n / 2}) g.push_back({Pattern::vertical_slash, v, s});
  g.push_back({Pattern::vertical_slash, 1000, 6096});
  return g;
}

GpuQK qk_of(const AttentionProblem& pb) {
  return GpuQK{pb.dq.get(), pb.dk.get(), pb.dtype, static_cast<int>(pb.dims.n_tokens),
               static_cast<int>(pb.dims.n_heads), static_cast<int>(pb.dims.n_kv_heads), pb.dims.head_dim};
}

// The dense kernel's output and LSE: what the recorder hands the prober.
struct Dense {
  DeviceArray<uint16_t> o;  // [N, H, d] bf16
  DeviceArray<float> lse;   // [H, N]
  std::vector<float> o_values;
  explicit Dense(const AttentionProblem& pb)
      : o(static_cast<size_t>(pb.dims.n_tokens * pb.dims.n_heads * pb.dims.head_dim)),
        lse(static_cast<size_t>(pb.dims.n_heads * pb.dims.n_tokens)) {
    dense_attention_forward(pb.params(o.get(), lse.get()));
    o_values = test::from_half(o.download(), pb.dtype);
  }
};

// The problem's first n rows as the layer the prober measures.
GridProbeLayer layer_of(const AttentionProblem& pb, const Dense& dense, int n) {
  GridProbeLayer layer;
  layer.q = pb.dq.get();
  layer.k = pb.dk.get();
  layer.v = pb.dv.get();
  layer.o_ref = dense.o.get();
  layer.lse = dense.lse.get();
  layer.n_tokens = n;
  return layer;
}

// workspace_cap 1 measures the heads one KV group at a time.
void check_against_reference(int n, int heads, int kv_heads, int d, uint32_t seed,
                             int64_t workspace_cap = GridProberGpu::kDefaultWorkspaceCap) {
  AttentionProblem pb = test::structured_problem(n, heads, kv_heads, d, AttnDType::kBF16, seed);
  const Dense dense(pb);
  const std::vector<PatternConfig> grid = grid_for(n);
  const EstimatorSettings settings{};
  const LayerShape shape{n + 100, heads, kv_heads, d};  // a workspace larger than the layer

  GridProberGpu prober(grid, shape, settings, workspace_cap);
  CHECK(prober.heads_per_pass() == (workspace_cap == 1 ? heads / kv_heads : heads));
  const std::vector<GridProbeMeasure> got = prober.probe(layer_of(pb, dense, n));
  REQUIRE(got.size() == grid.size() * heads);

  // The GPU's estimates, which the prober's selections came from.
  DeviceArray<float> col(static_cast<size_t>(heads) * n), diag(static_cast<size_t>(heads) * n);
  vertical_slash_scores_gpu(qk_of(pb), settings.last_q, col.get(), diag.get());
  const std::vector<float> col_h = col.download(), diag_h = diag.download();

  std::vector<PatternConfig> swept;
  {  // The sweeps' work: each family swept something, within a few dense layers' worth plus each
     // stage's partial last tile per row block (which dominates at N <= 64).
    const GridProberGpu::SweepTiles t = prober.last_tiles();
    const unsigned long long nb = static_cast<unsigned long long>(num_row_blocks(n));
    CHECK(t.dense == static_cast<unsigned long long>(heads) * nb * (nb + 1) / 2);
    CHECK(t.a_shape > 0);
    CHECK(t.vertical_slash > 0);
    CHECK(t.block_sparse > 0);
    CHECK(t.a_shape + t.vertical_slash + t.block_sparse <= 8 * t.dense + 16 * static_cast<unsigned long long>(heads) * nb);
  }
  std::vector<size_t> at;
  for (size_t c = 0; c < grid.size(); ++c) {
    const bool ours = grid[c].pattern != Pattern::dense;
    CHECK(prober.covers(c) == ours);
    if (!ours) {
      for (int h = 0; h < heads; ++h) CHECK_FALSE(got[c * heads + h].measured);
      continue;
    }
    swept.push_back(grid[c]);
    at.push_back(c);
  }
  for (int h = 0; h < heads; ++h) {
    VerticalSlashScores vs;
    vs.n_tokens = n;
    vs.col_score.assign(col_h.begin() + int64_t(h) * n, col_h.begin() + int64_t(h + 1) * n);
    vs.diag_score.assign(diag_h.begin() + int64_t(h) * n, diag_h.begin() + int64_t(h + 1) * n);
    const BlockScores bs = block_scores(pb.q.values.data(), pb.k.values.data(), pb.dims, h);
    GridProbeInputs in{pb.dims, pb.q.values.data(), pb.k.values.data(), pb.v.values.data(), dense.o_values.data(),
                       &vs, &bs};
    const std::vector<CandidateMeasure> want = probe_grid_ref(in, h, swept, settings, 4);
    for (size_t i = 0; i < swept.size(); ++i) {
      const PatternConfig& cfg = swept[i];
      const GridProbeMeasure& g = got[at[i] * heads + h];
      INFO("head " << h << " candidate " << static_cast<int>(cfg.pattern) << " (" << cfg.p1 << ", " << cfg.p2 << ")");
      REQUIRE(g.measured);
      CHECK(std::abs(g.recall - want[i].recall) <= 2e-5);
      CHECK(std::abs(g.out_err - want[i].out_err) <= 2e-5 + 1e-4 * want[i].out_err);
      const SparseIndex index = head_index_from_estimates(n, cfg, &vs, &bs, settings);
      CHECK(g.cost == head_cost_flops(index, 0, cfg, d, settings));
    }
  }
}

}  // namespace

TEST_CASE("GPU grid probe equals the CPU grid probe on the same inputs", "[gpu][grid_probe]") {
  HC_REQUIRE_GPU();
  for (int d : {64, 128}) {
    for (int n : {37, 64, 1000, 2500}) {
      DYNAMIC_SECTION("d=" << d << " N=" << n) { check_against_reference(n, 4, 2, d, 900u + n + d); }
    }
    // Three KV groups of two heads measured one group at a time through one workspace.
    DYNAMIC_SECTION("d=" << d << " N=1000, head groups") { check_against_reference(1000, 6, 3, d, 77u + d, 1); }
  }
}

TEST_CASE("GPU grid probe: the diagonals grouped by level", "[gpu][grid_probe]") {
  HC_REQUIRE_GPU();
  // Two heads of levels 0 .. 4 and "none" (5, and 127 as the window levels' padding), N not a
  // multiple of the builder's 1024-thread chunks; a level no diagonal has.
  const int n_levels = 5, n = 2500, heads = 2;
  std::vector<int8_t> y(static_cast<size_t>(heads) * n);
  uint32_t state = 99u;
  for (int8_t& v : y) {
    state = state * 1664525u + 1013904223u;
    const int r = static_cast<int>((state >> 8) % 8u);
    v = static_cast<int8_t>(r == 3 ? 0 : r == 6 ? 127 : r == 7 ? 5 : r);  // level 3 empty
  }
  DeviceArray<int8_t> d_y(y);
  DeviceArray<int32_t> d_groups(static_cast<size_t>(heads) * n), d_end(static_cast<size_t>(heads) * n_levels);
  hc::kernels::detail::launch_level_lists(d_y.get(), n_levels, heads, n, d_groups.get(), d_end.get(), nullptr);
  const std::vector<int32_t> groups = d_groups.download(), end = d_end.download();
  for (int h = 0; h < heads; ++h) {
    std::vector<int32_t> want;
    for (int b = 0; b < n_levels; ++b) {
      for (int t = 0; t < n; ++t)
        if (y[size_t(h) * n + t] == b) want.push_back(t);
      INFO("head " << h << " level " << b);
      CHECK(end[size_t(h) * n_levels + b] == static_cast<int32_t>(want.size()));
    }
    CHECK(std::equal(want.begin(), want.end(), groups.begin() + int64_t(h) * n));
  }
}

TEST_CASE("GPU grid probe: one workspace for shorter layers, bad shapes and layers refused", "[gpu][grid_probe]") {
  HC_REQUIRE_GPU();
  const std::vector<PatternConfig> grid = {{Pattern::a_shape, 64, 128}, {Pattern::vertical_slash, 30, 100}};
  CHECK_THROWS_AS(GridProberGpu(grid, LayerShape{1024, 4, 3, 64}), hc::InputError);
  CHECK_THROWS_AS(GridProberGpu(grid, LayerShape{1024, 4, 2, 96}), hc::InputError);
  CHECK_THROWS_AS(GridProberGpu({{Pattern::a_shape, 64, 0}}, LayerShape{1024, 4, 2, 64}), hc::InputError);
  GridProberGpu prober(grid, LayerShape{512, 4, 2, 64});
  AttentionProblem pb = test::structured_problem(600, 4, 2, 64, AttnDType::kBF16, 7);
  const Dense dense(pb);
  CHECK_THROWS_AS(prober.probe(layer_of(pb, dense, 600)), hc::InputError);  // longer than the workspace
  GridProbeLayer layer = layer_of(pb, dense, 500);
  layer.o_ref = nullptr;
  CHECK_THROWS_AS(prober.probe(layer), hc::InputError);
}

TEST_CASE("GPU grid probe workspace: sized before touching the device", "[grid_probe]") {
  const std::vector<PatternConfig> a_shape = {{Pattern::a_shape, 64, 128}, {Pattern::a_shape, 128, 1024}};
  const std::vector<PatternConfig> vs = {{Pattern::vertical_slash, 30, 100}, {Pattern::vertical_slash, 1000, 4096}};
  const LayerShape shape{8192, 9, 3, 64};
  // The vertical-slash sweeps hold the estimate's two [H, N] score arrays and per-level selections.
  CHECK(GridProberGpu::workspace_bytes(vs, shape) > GridProberGpu::workspace_bytes(a_shape, shape) + 2 * 9 * 8192 * 4);
  CHECK(GridProberGpu::workspace_bytes(vs, LayerShape{32768, 9, 3, 64}) > GridProberGpu::workspace_bytes(vs, shape));
  CHECK_THROWS_AS(GridProberGpu::workspace_bytes(vs, LayerShape{8192, 9, 3, 96}), hc::InputError);
}

TEST_CASE("GPU grid probe workspace: past the cap the heads go in groups of whole KV groups", "[grid_probe]") {
  const std::vector<PatternConfig> grid = {{Pattern::vertical_slash, 30, 100}, {Pattern::vertical_slash, 1000, 4096},
                                           {Pattern::block_sparse, 8, 0}, {Pattern::a_shape, 64, 1024}};
  const LayerShape shape{8192, 8, 2, 128};  // KV groups of 4 heads
  const int64_t whole = GridProberGpu::workspace_bytes(grid, shape);
  const int64_t one_group = GridProberGpu::workspace_bytes(grid, shape, {}, 1);
  CHECK(GridProberGpu::workspace_bytes(grid, shape, {}, whole) == whole);
  CHECK(GridProberGpu::workspace_bytes(grid, shape, {}, whole - 1) == one_group);
  // Half the heads: the per-head buffers (scores, selections and levels, ~0.3 MiB a head here)
  // halve, the per-candidate outputs stay.
  CHECK(one_group < whole - 4 * (int64_t(256) << 10));
  CHECK(one_group > whole / 2);

  // Llama-3-8B's attention (32 heads, 8 KV heads, d = 128) under the default grid: one group up
  // to 256K tokens, groups within the default cap at 1M.
  for (int64_t n : {int64_t(131072), int64_t(262144), int64_t(1) << 20}) {
    std::vector<PatternConfig> configs;
    for (const GridCandidate& c : default_grid(n, PatternDefaults{}).candidates) configs.push_back(pattern_config(c));
    const LayerShape llama{static_cast<int>(n), 32, 8, 128};
    const int64_t unlimited = GridProberGpu::workspace_bytes(configs, llama, {}, INT64_MAX);
    const int64_t bytes = GridProberGpu::workspace_bytes(configs, llama);
    INFO("N = " << n << ": " << unlimited << " bytes in one group, " << bytes << " under the default cap");
    CHECK(bytes <= GridProberGpu::kDefaultWorkspaceCap);
    if (n <= 262144) CHECK(bytes == unlimited);
    else CHECK(bytes < unlimited);
  }
}

TEST_CASE("GPU grid probe: the a_shape sweep's stages sum to each candidate's keys at its snapshot", "[grid_probe]") {
  using hc::kernels::detail::a_shape_last_stage;
  using hc::kernels::detail::a_shape_snapshot_group;
  using hc::kernels::detail::a_shape_stage_keys;
  using hc::kernels::detail::AShapeStageKeys;
  // Distinct ascending sinks and windows, as the prober passes them: a zero sink, sinks and
  // windows off the 64-key grid, windows below one block and past N.
  const std::vector<int32_t> sinks = {0, 1, 64, 100, 128}, windows = {1, 37, 64, 130, 800, 5000};
  const int n_sinks = static_cast<int>(sinks.size()), n_windows = static_cast<int>(windows.size());
  for (int n : {37, 64, 1000, 1100}) {
    for (int r0 = 0; r0 < n; r0 += 64) {
      const int r1 = std::min(n, r0 + 64) - 1, rows = r1 - r0 + 1;
      std::vector<int> count(static_cast<size_t>(rows) * n, 0);  // [row, key]: signed times added
      std::vector<bool> seen(static_cast<size_t>(n_sinks) * n_windows, false);
      for (int stage = 0; stage <= a_shape_last_stage(n_sinks, n_windows); ++stage) {
        const AShapeStageKeys k = a_shape_stage_keys(stage, n_sinks, sinks.data(), windows.data(), r0, r1);
        for (int j = std::max(0, k.begin); j < std::min(k.end, n); ++j)
          for (int i = r0; i <= r1; ++i)
            if (j <= i && i - j >= k.w_lo && i - j < k.w_hi) count[size_t(i - r0) * n + j] += k.subtract ? -1 : 1;
        const int group = a_shape_snapshot_group(stage, n_sinks);
        if (group < 0) continue;
        const int sink = sinks[size_t(group % n_sinks)], window = windows[size_t(group / n_sinks)];
        INFO("N " << n << " row block " << r0 / 64 << " stage " << stage << ": a_shape(" << sink << ", " << window
                  << ")");
        seen[size_t(group)] = true;
        int wrong = 0;
        for (int i = r0; i <= r1; ++i)
          for (int j = 0; j < n; ++j) {
            const int want = j <= i && (j < sink || i - j < window) ? 1 : 0;
            wrong += count[size_t(i - r0) * n + j] != want;
          }
        CHECK(wrong == 0);
      }
      int snapshots = 0;
      for (bool b : seen) snapshots += b;
      CHECK(snapshots == n_sinks * n_windows);  // every candidate once per row block
    }
  }
}

TEST_CASE("GPU grid probe: the vertical_slash sweep's stages hold each candidate's keys at its snapshot",
          "[grid_probe]") {
  using hc::kernels::detail::vs_last_stage;
  using hc::kernels::detail::vs_stage;
  using hc::kernels::detail::vs_stage_end;
  using hc::kernels::detail::VsStage;
  using hc::kernels::detail::VsStageEnd;
  // Random column levels x (nx: none) and diagonal levels y (ny: none), levels whose candidates
  // stop short of the last column level, and one without candidates: the walk the kernel runs
  // (part 0 adds the keys with y == b; part p <= col_parts[b] the columns of level p - 1 with
  // y > b; S_b saved after part 0 and restored after the last part) against candidate (a, b)'s
  // keys {j <= r1: y <= b or x <= a} at every snapshot.
  const int nx = 4, ny = 5;
  const std::vector<int> col_parts = {4, 2, 0, 3, 4};
  uint32_t state = 12345u;
  auto next_random = [&state](int m) {
    state = state * 1664525u + 1013904223u;
    return static_cast<int>((state >> 8) % static_cast<uint32_t>(m));
  };
  for (int n : {37, 64, 1000, 1100}) {
    std::vector<int> x_of(static_cast<size_t>(n)), y_of(static_cast<size_t>(n));
    for (int j = 0; j < n; ++j) {
      x_of[size_t(j)] = next_random(nx + 1);
      y_of[size_t(j)] = next_random(ny + 1);
    }
    for (int r0 = 0; r0 < n; r0 += 64) {
      const int r1 = std::min(n, r0 + 64) - 1;
      std::vector<int> count(static_cast<size_t>(r1 + 1), 0), saved;  // [key]: times added
      int snapshots = 0;
      for (int stage = 0; stage <= vs_last_stage(nx, ny); ++stage) {
        const VsStage st = vs_stage(stage, nx);
        for (int j = 0; j <= r1; ++j) {
          const int x = x_of[size_t(j)], y = y_of[size_t(r1 - j)];
          if (st.part == 0 ? y == st.level : st.part <= col_parts[size_t(st.level)] && x == st.part - 1 && y > st.level)
            ++count[size_t(j)];
        }
        const VsStageEnd e = vs_stage_end(stage, nx);
        if (e.save) saved = count;
        if (e.group >= 0 && e.group % nx < col_parts[size_t(e.group / nx)]) {
          const int a = e.group % nx, b = e.group / nx;
          INFO("N " << n << " row block " << r0 / 64 << " stage " << stage << ": candidate (" << a << ", " << b << ")");
          int wrong = 0;
          for (int j = 0; j <= r1; ++j) {
            const int want = y_of[size_t(r1 - j)] <= b || x_of[size_t(j)] <= a ? 1 : 0;
            wrong += count[size_t(j)] != want;
          }
          CHECK(wrong == 0);
          ++snapshots;
        }
        if (e.restore) count = saved;
      }
      CHECK(snapshots == 4 + 2 + 0 + 3 + 4);  // every candidate once per row block
    }
  }
}

#else
TEST_CASE("GPU grid probe tests need CUDA", "[gpu][grid_probe]") { HC_REQUIRE_GPU(); }
#endif

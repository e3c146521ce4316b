// The GPU grid probe (grid_probe_gpu.h): the grid's a_shape and vertical_slash candidates as
// sweeps, the selection levels their groups follow, one workspace for both.
#include "kernels/sparse/grid_probe_gpu.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <string>

#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/device_primitives.cuh"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/device_pool.h"
#include "kernels/sparse/grid_probe_device.cuh"
#include "kernels/sparse/index_device.cuh"
#include "kernels/sparse/index_ref.h"

namespace hc::kernels {

namespace {

using namespace detail;

constexpr const char* kWhat = "grid probe (GPU)";
constexpr int kMaxLevels = 126;  // levels are int8 on the device, 127 meaning "none"

std::vector<int32_t> distinct_sorted(std::vector<int32_t> v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
  return v;
}

int level_index(const std::vector<int32_t>& levels, int32_t value) {
  return static_cast<int>(std::lower_bound(levels.begin(), levels.end(), value) - levels.begin());
}

}  // namespace

struct GridProberGpu::Impl {
  LayerShape shape;
  EstimatorSettings settings;
  std::vector<PatternConfig> candidates;
  std::vector<bool> covered;                 // [candidates]
  std::vector<int32_t> as_sinks, as_windows;  // a_shape: distinct sinks, windows (levels of its one sweep)
  std::vector<int32_t> vs_v, vs_s;            // vertical_slash: distinct v (column levels), s (offset levels)
  std::vector<int32_t> bs_k;                  // block_sparse: distinct k (groups of its one sweep)
  int bs_cap = 0;                             // kept blocks per slot at the largest k
  std::vector<int32_t> vs_col_parts;          // [offset levels] column levels walked at each
  std::vector<SweepPass> passes;
  std::vector<int32_t> pass_cands;  // [passes][max_groups]
  int max_groups = 1;
  int first_vs_pass = 0;  // passes before it: the a_shape and block-sparse sweeps (first launch)
  int col_stride = 0, off_stride = 0;
  int group_heads = 0;  // heads measured per pass: the per-head buffers are sized for this many

  int64_t bytes = 0;
  void* memory = nullptr;
  // Workspace pieces.
  SweepPass* d_passes = nullptr;
  int32_t* d_pass_cands = nullptr;
  int32_t* d_sinks = nullptr;  // [sinks] then [windows]
  int32_t* d_counts = nullptr;  // [column levels] then [offset levels]: kept per level at this N
  int32_t* d_col_parts = nullptr;  // [offset levels]
  float* col_score = nullptr;   // [H, N]
  float* diag_score = nullptr;  // [H, N]
  float* vs_scratch = nullptr;
  int32_t* col_lists = nullptr;    // [column levels][H][col_stride]
  int32_t* col_groups = nullptr;   // [H][col_stride]
  int32_t* off_lists = nullptr;    // [offset levels][H][off_stride]
  int8_t* col_level = nullptr;     // [H][N]
  int8_t* off_level = nullptr;     // [H][N]
  int8_t* y_of = nullptr;          // [H][N]
  int32_t* diag_groups = nullptr;  // [H][N]
  int32_t* diag_end = nullptr;     // [H][offset levels]
  float* pooled_q = nullptr;      // [H, nb, d]
  float* pooled_k = nullptr;      // [Hkv, d, nb]
  int32_t* kept = nullptr;        // [H, nb, bs_cap]
  int32_t* kept_count = nullptr;  // [H * nb]
  int8_t* block_level = nullptr;  // [H][nb (nb + 1) / 2]
  double* recall = nullptr;       // [candidates][H]
  double* err = nullptr;          // [candidates][H]
  unsigned long long* pairs = nullptr;  // [candidates][H]
  int* underflow = nullptr;             // [candidates][H]
  double* ref_sq = nullptr;             // [H] the dense output's squared norm per head
  double* self_diff = nullptr;          // [H] (zero: head_squared_errors_gpu of o_ref against itself)
  unsigned long long* tiles = nullptr;  // [3] by SweepFamily
  GridProberGpu::SweepTiles last;       // the last probe's
  std::vector<int32_t> host_counts;     // what d_counts holds (kept alive for the async copy)

  bool has_vs() const { return !vs_v.empty(); }
  bool has_bs() const { return !bs_k.empty(); }
  size_t n_out() const { return candidates.size() * static_cast<size_t>(shape.n_heads); }

  void prepare(const std::vector<PatternConfig>& grid, const LayerShape& s, const EstimatorSettings& st,
               int64_t workspace_cap) {
    shape = s;
    settings = st;
    candidates = grid;
    check_tokens_heads(s.max_tokens, s.n_heads);
    if (s.n_kv_heads < 1 || s.n_heads % s.n_kv_heads != 0)
      throw InputError(kWhat, "n_heads must be a positive multiple of n_kv_heads");
    if (s.head_dim != 64 && s.head_dim != 128)
      throw InputError(kWhat, "head_dim " + std::to_string(s.head_dim) + " is unsupported (64 or 128)");
    if (st.last_q < 1 || (st.last_q > 64 && s.max_tokens > 64) || st.v_sink < 0 || st.s_local < 0)
      throw InputError(kWhat, "estimator settings need 1 <= last_q <= 64 and v_sink, s_local >= 0");
    std::vector<int32_t> sinks, windows, vs, ss, ks;
    covered = GridProberGpu::coverage(grid);
    for (size_t c = 0; c < grid.size(); ++c) {
      check_config(grid[c], kWhat);
      if (grid[c].pattern == Pattern::a_shape) {
        sinks.push_back(grid[c].p1);
        windows.push_back(grid[c].p2);
      } else if (grid[c].pattern == Pattern::vertical_slash) {
        vs.push_back(grid[c].p1);
        ss.push_back(grid[c].p2);
      } else if (grid[c].pattern == Pattern::block_sparse) {
        ks.push_back(grid[c].p1);
      }
    }
    bs_k = distinct_sorted(ks);
    if (!bs_k.empty()) {
      check_block_select_tokens(s.max_tokens, s.head_dim);
      bs_cap = static_cast<int>(std::min<int64_t>(num_row_blocks(s.max_tokens), std::max(bs_k.back(), 2)));
    }
    as_sinks = distinct_sorted(sinks);
    as_windows = distinct_sorted(windows);
    vs_v = distinct_sorted(vs);
    vs_s = distinct_sorted(ss);
    if (as_sinks.size() > kMaxLevels || as_windows.size() > kMaxLevels || vs_v.size() > kMaxLevels ||
        vs_s.size() > kMaxLevels || bs_k.size() > kMaxLevels)
      throw InputError(kWhat, "at most " + std::to_string(kMaxLevels) + " distinct values per pattern parameter");
    const int nx = static_cast<int>(vs_v.size()), ny = static_cast<int>(vs_s.size());
    max_groups = static_cast<int>(std::max<size_t>({1, as_sinks.size() * as_windows.size(), vs_v.size() * vs_s.size(),
                                                    bs_k.size()}));

    // The a_shape and block-sparse sweeps (one launch), then the vertical-slash one (a second: its
    // kernel keeps saved sums in shared memory).
    std::map<int, int> pass_of;  // family -> pass
    auto pass_for = [&](int family) {
      auto [it, fresh] = pass_of.emplace(family, static_cast<int>(passes.size()));
      if (fresh) {
        SweepPass p;
        p.family = family;
        passes.push_back(p);
        pass_cands.resize(passes.size() * max_groups, -1);
      }
      return it->second;
    };
    vs_col_parts.assign(static_cast<size_t>(ny), 0);
    for (Pattern family : {Pattern::a_shape, Pattern::block_sparse, Pattern::vertical_slash})
      for (size_t c = 0; c < grid.size(); ++c) {
        const PatternConfig& cfg = grid[c];
        if (cfg.pattern != family) continue;
        int p = 0, a = 0;
        if (family == Pattern::a_shape) {
          const int n_sinks = static_cast<int>(as_sinks.size()), n_windows = static_cast<int>(as_windows.size());
          p = pass_for(kSweepAShape);
          a = level_index(as_windows, cfg.p2) * n_sinks + level_index(as_sinks, cfg.p1);
          passes[p].n_groups = a_shape_last_stage(n_sinks, n_windows);
        } else if (family == Pattern::block_sparse) {
          p = pass_for(kSweepBlockSparse);
          a = level_index(bs_k, cfg.p1);
          passes[p].n_groups = std::max(passes[p].n_groups, a + 1);
        } else {
          p = pass_for(kSweepVerticalSlash);
          const int x = level_index(vs_v, cfg.p1), y = level_index(vs_s, cfg.p2);
          a = y * nx + x;
          passes[p].n_groups = vs_last_stage(nx, ny);
          vs_col_parts[static_cast<size_t>(y)] = std::max(vs_col_parts[static_cast<size_t>(y)], x + 1);
        }
        pass_cands[static_cast<size_t>(p) * max_groups + a] = static_cast<int32_t>(c);
      }
    first_vs_pass = has_vs() ? pass_of.at(kSweepVerticalSlash) : static_cast<int>(passes.size());
    for (int32_t v : vs_v) col_stride = std::max(col_stride, vs_kept(v, st.v_sink, s.max_tokens));
    for (int32_t x : vs_s) off_stride = std::max(off_stride, vs_kept(x, st.s_local, s.max_tokens));
    // The largest whole number of KV groups whose workspace stays under the cap (at least one).
    const int kv_group = s.n_heads / s.n_kv_heads;
    for (int g = s.n_kv_heads; g >= 1; --g) {
      group_heads = g * kv_group;
      WorkspaceCarver sizing;
      carve(sizing);
      bytes = sizing.used;
      if (bytes <= workspace_cap) break;
    }
  }

  void carve(WorkspaceCarver& c) {
    const int64_t h = group_heads, n = shape.max_tokens;
    d_passes = c.take<SweepPass>(static_cast<int64_t>(passes.size()));
    d_pass_cands = c.take<int32_t>(static_cast<int64_t>(pass_cands.size()));
    d_sinks = c.take<int32_t>(static_cast<int64_t>(as_sinks.size() + as_windows.size()));
    d_counts = c.take<int32_t>(static_cast<int64_t>(vs_v.size() + vs_s.size()));
    d_col_parts = c.take<int32_t>(static_cast<int64_t>(vs_s.size()));
    if (has_vs()) {
      const int64_t nx = static_cast<int64_t>(vs_v.size()), ny = static_cast<int64_t>(vs_s.size());
      col_score = c.take<float>(h * n);
      diag_score = c.take<float>(h * n);
      vs_scratch = c.take<float>(vs_scratch_floats(h, n));
      col_lists = c.take<int32_t>(nx * h * col_stride);
      col_groups = c.take<int32_t>(h * col_stride);
      off_lists = c.take<int32_t>(ny * h * off_stride);
      col_level = c.take<int8_t>(h * n);
      off_level = c.take<int8_t>(h * n);
      y_of = c.take<int8_t>(h * n);
      diag_groups = c.take<int32_t>(h * n);
      diag_end = c.take<int32_t>(h * ny);
    }
    if (has_bs()) {
      const int64_t nb = num_row_blocks(n), hkv = h / (shape.n_heads / shape.n_kv_heads), d = shape.head_dim;
      pooled_q = c.take<float>(h * nb * d);
      pooled_k = c.take<float>(hkv * d * nb);
      kept = c.take<int32_t>(h * nb * bs_cap);
      kept_count = c.take<int32_t>(h * nb);
      block_level = c.take<int8_t>(h * nb * (nb + 1) / 2);
    }
    const int64_t outs = static_cast<int64_t>(n_out());
    recall = c.take<double>(outs);
    err = c.take<double>(outs);
    pairs = c.take<unsigned long long>(outs);
    underflow = c.take<int>(outs);
    ref_sq = c.take<double>(shape.n_heads);
    self_diff = c.take<double>(shape.n_heads);
    tiles = c.take<unsigned long long>(3);
  }

  ~Impl() {
    if (memory != nullptr) cudaFree(memory);
  }

  // The selections of every level (one launch per level pair), each column's and offset's
  // level, the columns grouped by level, each diagonal's level and the diagonals grouped by it.
  void build_levels(const GpuQK& qk, cudaStream_t stream) {
    const int n = qk.n_tokens, h = qk.n_heads;
    const int nx = static_cast<int>(vs_v.size()), ny = static_cast<int>(vs_s.size());
    launch_vs_scores(qk, settings.last_q, col_score, diag_score, vs_scratch, stream);
    for (int k = 0; k < std::max(nx, ny); ++k) {
      const SelectJob columns{col_score, settings.v_sink, VsCount{HeadValue{nullptr, k < nx ? vs_v[k] : -1},
                                                                  settings.v_sink, n},
                              col_stride, col_lists + static_cast<int64_t>(std::min(k, nx - 1)) * h * col_stride};
      const SelectJob offsets{diag_score, settings.s_local, VsCount{HeadValue{nullptr, k < ny ? vs_s[k] : -1},
                                                                    settings.s_local, n},
                              off_stride, off_lists + static_cast<int64_t>(std::min(k, ny - 1)) * h * off_stride};
      launch_select_pair(columns, offsets, RunsJob{}, h, n, stream);
    }
    launch_selection_levels(col_lists, d_counts, nx, h, n, col_stride, col_level, stream);
    launch_level_groups(col_lists, d_counts, nx, h, col_stride, col_level, n, col_groups, stream);
    launch_selection_levels(off_lists, d_counts + nx, ny, h, n, off_stride, off_level, stream);
    launch_window_levels(off_level, h, n, y_of, stream);
    launch_level_lists(y_of, ny, h, n, diag_groups, diag_end, stream);
  }

  // Each key block's level in each row block: one block-sparse selection per grid value, from the
  // last down.
  void build_block_levels(const GpuQK& qk, cudaStream_t stream) {
    const int nb = static_cast<int>(num_row_blocks(qk.n_tokens)), h = qk.n_heads;
    const int nk = static_cast<int>(bs_k.size());
    launch_block_pool(qk, pooled_q, pooled_k, stream);
    HC_CHECK_CUDA(cudaMemsetAsync(block_level, nk, static_cast<size_t>(h) * nb * (nb + 1) / 2, stream));
    for (int a = nk - 1; a >= 0; --a) {
      launch_block_select(qk, pooled_q, pooled_k, HeadValue{nullptr, bs_k[a]}, bs_cap, kept, kept_count, stream);
      launch_block_levels(kept, kept_count, bs_cap, h, nb, a, block_level, stream);
    }
  }
};

GridProberGpu::GridProberGpu(const std::vector<PatternConfig>& candidates, const LayerShape& shape,
                             const EstimatorSettings& settings, int64_t workspace_cap)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  m.prepare(candidates, shape, settings, workspace_cap);
  m.memory = allocate_workspace(m.bytes, shape.max_tokens, kWhat);
  WorkspaceCarver carver{static_cast<char*>(m.memory), 0};
  m.carve(carver);
  if (!m.passes.empty()) {
    HC_CHECK_CUDA(cudaMemcpy(m.d_passes, m.passes.data(), m.passes.size() * sizeof(SweepPass), cudaMemcpyHostToDevice));
    HC_CHECK_CUDA(cudaMemcpy(m.d_pass_cands, m.pass_cands.data(), m.pass_cands.size() * sizeof(int32_t),
                             cudaMemcpyHostToDevice));
  }
  if (!m.vs_col_parts.empty())
    HC_CHECK_CUDA(cudaMemcpy(m.d_col_parts, m.vs_col_parts.data(), m.vs_col_parts.size() * sizeof(int32_t),
                             cudaMemcpyHostToDevice));
  if (!m.as_sinks.empty()) {
    std::vector<int32_t> sinks_windows = m.as_sinks;
    sinks_windows.insert(sinks_windows.end(), m.as_windows.begin(), m.as_windows.end());
    HC_CHECK_CUDA(cudaMemcpy(m.d_sinks, sinks_windows.data(), sinks_windows.size() * sizeof(int32_t),
                             cudaMemcpyHostToDevice));
  }
}

GridProberGpu::~GridProberGpu() = default;
GridProberGpu::GridProberGpu(GridProberGpu&&) noexcept = default;
GridProberGpu& GridProberGpu::operator=(GridProberGpu&&) noexcept = default;

bool GridProberGpu::covers(size_t c) const { return c < impl_->covered.size() && impl_->covered[c]; }

std::vector<bool> GridProberGpu::coverage(const std::vector<PatternConfig>& candidates) {
  std::vector<bool> out;
  for (const PatternConfig& c : candidates) out.push_back(c.pattern != Pattern::dense);
  return out;
}

int64_t GridProberGpu::workspace_bytes(const std::vector<PatternConfig>& candidates, const LayerShape& shape,
                                       const EstimatorSettings& settings, int64_t workspace_cap) {
  Impl m;
  m.prepare(candidates, shape, settings, workspace_cap);
  return m.bytes;
}

int GridProberGpu::heads_per_pass() const { return impl_->group_heads; }

GridProberGpu::SweepTiles GridProberGpu::last_tiles() const { return impl_->last; }

std::vector<GridProbeMeasure> GridProberGpu::probe(const GridProbeLayer& layer, cudaStream_t stream) {
  Impl& m = *impl_;
  const LayerShape& s = m.shape;
  const int n = layer.n_tokens, h = s.n_heads, d = s.head_dim;
  if (n < 1 || n > s.max_tokens)
    throw InputError(kWhat, "n_tokens " + std::to_string(n) + " is not in 1.." + std::to_string(s.max_tokens));
  if (!layer.q || !layer.k || !layer.v || !layer.o_ref || !layer.lse)
    throw InputError(kWhat, "q, k, v, o_ref and lse are required");
  std::vector<GridProbeMeasure> out(m.n_out());
  m.last = SweepTiles{};
  if (m.passes.empty()) return out;

  const int64_t q_stride = layer.q_row_stride > 0 ? layer.q_row_stride : int64_t(h) * d;
  const int64_t k_stride = layer.k_row_stride > 0 ? layer.k_row_stride : int64_t(s.n_kv_heads) * d;
  const int64_t v_stride = layer.v_row_stride > 0 ? layer.v_row_stride : int64_t(s.n_kv_heads) * d;
  m.host_counts.clear();
  for (int32_t v : m.vs_v) m.host_counts.push_back(vs_kept(v, m.settings.v_sink, n));
  for (int32_t x : m.vs_s) m.host_counts.push_back(vs_kept(x, m.settings.s_local, n));
  if (!m.host_counts.empty())
    HC_CHECK_CUDA(cudaMemcpyAsync(m.d_counts, m.host_counts.data(), m.host_counts.size() * sizeof(int32_t),
                                  cudaMemcpyHostToDevice, stream));
  const size_t outs = m.n_out();
  HC_CHECK_CUDA(cudaMemsetAsync(m.recall, 0, outs * sizeof(double), stream));
  HC_CHECK_CUDA(cudaMemsetAsync(m.err, 0, outs * sizeof(double), stream));
  HC_CHECK_CUDA(cudaMemsetAsync(m.pairs, 0, outs * sizeof(unsigned long long), stream));
  HC_CHECK_CUDA(cudaMemsetAsync(m.underflow, 0, outs * sizeof(int), stream));
  HC_CHECK_CUDA(cudaMemsetAsync(m.tiles, 0, 3 * sizeof(unsigned long long), stream));
  head_squared_errors_gpu(layer.o_ref, layer.o_ref, n, h, d, m.self_diff, m.ref_sq, stream);

  SweepArgs a;
  a.q_stride = q_stride;
  a.k_stride = k_stride;
  a.v_stride = v_stride;
  a.o_stride = int64_t(h) * d;
  a.n_tokens = n;
  a.group = h / s.n_kv_heads;
  a.out_heads = h;
  a.n_row_blocks = static_cast<int>(num_row_blocks(n));
  a.scale_log2 = static_cast<float>(kLog2e / std::sqrt(static_cast<double>(d)));
  a.passes = m.d_passes;
  a.pass_cands = m.d_pass_cands;
  a.max_groups = m.max_groups;
  a.sinks = m.d_sinks;
  a.windows = m.d_sinks + m.as_sinks.size();
  a.n_sinks = static_cast<int>(m.as_sinks.size());
  a.n_windows = static_cast<int>(m.as_windows.size());
  a.col_groups = m.col_groups;
  a.col_level_end = m.d_counts;
  a.col_stride = m.col_stride;
  a.diag_groups = m.diag_groups;
  a.diag_end = m.diag_end;
  a.col_parts = m.d_col_parts;
  a.y_of = m.y_of;
  a.n_col_levels = static_cast<int>(m.vs_v.size());
  a.n_off_levels = static_cast<int>(m.vs_s.size());
  a.block_level = m.block_level;
  a.recall = m.recall;
  a.err = m.err;
  a.pairs = m.pairs;
  a.underflow = m.underflow;
  a.tiles = m.tiles;
  // Head groups one after the other through the same workspace: their levels, then their sweeps.
  for (int h0 = 0; h0 < h; h0 += m.group_heads) {
    const int heads = std::min(m.group_heads, h - h0), kv0 = h0 / a.group;
    const auto* q0 = static_cast<const __nv_bfloat16*>(layer.q) + int64_t(h0) * d;
    const auto* k0 = static_cast<const __nv_bfloat16*>(layer.k) + int64_t(kv0) * d;
    const GpuQK qk{q0, k0, AttnDType::kBF16, n, heads, heads / a.group, d, q_stride, k_stride};
    if (m.has_vs()) m.build_levels(qk, stream);
    if (m.has_bs()) m.build_block_levels(qk, stream);

    a.q = q0;
    a.k = k0;
    a.v = static_cast<const __nv_bfloat16*>(layer.v) + int64_t(kv0) * d;
    a.o_ref = static_cast<const __nv_bfloat16*>(layer.o_ref) + int64_t(h0) * d;
    a.lse = layer.lse + int64_t(h0) * n;
    a.n_heads = heads;
    a.head_base = h0;
    a.first_pass = 0;
    a.n_passes = m.first_vs_pass;
    launch_grid_sweep(a, d, false, stream);  // the a_shape and block-sparse sweeps
    a.first_pass = m.first_vs_pass;
    a.n_passes = static_cast<int>(m.passes.size()) - m.first_vs_pass;
    launch_grid_sweep(a, d, true, stream);  // the vertical-slash one
  }

  std::vector<double> recall(outs), err(outs), ref(h);
  std::vector<unsigned long long> pairs(outs);
  std::vector<int> underflow(outs);
  HC_CHECK_CUDA(cudaMemcpyAsync(recall.data(), m.recall, outs * sizeof(double), cudaMemcpyDeviceToHost, stream));
  HC_CHECK_CUDA(cudaMemcpyAsync(err.data(), m.err, outs * sizeof(double), cudaMemcpyDeviceToHost, stream));
  HC_CHECK_CUDA(cudaMemcpyAsync(pairs.data(), m.pairs, outs * sizeof(unsigned long long), cudaMemcpyDeviceToHost,
                                stream));
  HC_CHECK_CUDA(cudaMemcpyAsync(underflow.data(), m.underflow, outs * sizeof(int), cudaMemcpyDeviceToHost, stream));
  HC_CHECK_CUDA(cudaMemcpyAsync(ref.data(), m.ref_sq, h * sizeof(double), cudaMemcpyDeviceToHost, stream));
  unsigned long long tiles[3] = {0, 0, 0};
  HC_CHECK_CUDA(cudaMemcpyAsync(tiles, m.tiles, sizeof tiles, cudaMemcpyDeviceToHost, stream));
  HC_CHECK_CUDA(cudaStreamSynchronize(stream));
  const unsigned long long nb = static_cast<unsigned long long>(num_row_blocks(n));
  m.last = SweepTiles{tiles[kSweepAShape], tiles[kSweepVerticalSlash], tiles[kSweepBlockSparse],
                      static_cast<unsigned long long>(h) * nb * (nb + 1) / 2};

  for (size_t c = 0; c < m.candidates.size(); ++c) {
    if (!m.covered[c]) continue;
    const PatternConfig& cfg = m.candidates[c];
    double as_cost = 0;  // a_shape: the same index on every head, its pairs counted on the host
    if (cfg.pattern == Pattern::a_shape)
      as_cost = head_cost_flops(build_a_shape_index(n, 1, cfg.p1, cfg.p2), 0, cfg, d, m.settings);
    const double estimator = estimator_flops(cfg, n, d, m.settings);
    for (int head = 0; head < h; ++head) {
      const size_t at = c * static_cast<size_t>(h) + static_cast<size_t>(head);
      GridProbeMeasure& r = out[at];
      r.measured = underflow[at] == 0;
      r.recall = recall[at] / static_cast<double>(n);
      r.out_err = output_error(err[at], ref[static_cast<size_t>(head)]);
      r.cost = cfg.pattern == Pattern::a_shape ? as_cost : static_cast<double>(pairs[at]) * 4.0 * d + estimator;
    }
  }
  return out;
}

}  // namespace hc::kernels

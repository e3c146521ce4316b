// The layer planner (layer_plan.h): one workspace, carved once; plan enqueues the index-building
// stages of index_device.cuh with per-head parameters read from a device table of the profile.
#include <algorithm>
#include <cstdio>
#include <limits>
#include <string>

#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/attention/attention_launch.h"
#include "kernels/attention/tile_columns.h"
#include "kernels/sparse/device_pool.h"
#include "kernels/sparse/index_device.cuh"
#include "kernels/sparse/layer_plan.h"

namespace hc::kernels {

namespace {

using namespace detail;

constexpr const char* kWhat = "layer plan";

// The per-head table of one layer, [kFields][H] int32 on the device.
enum Field : int { kPattern = 0, kSink, kLocal, kVsV, kVsS, kBsK, kFields };
// Dense heads are the closed form with no sink and a window past any N.
constexpr int kDenseLocal = 1 << 30;

struct LayerInfo {
  bool has_vs = false, has_bs = false, all_dense = true, all_static = true;
};

}  // namespace

struct LayerPlanner::Impl {
  LayerShape shape;
  EstimatorSettings settings;
  std::vector<LayerInfo> info;  // [layers]
  int64_t bytes = 0;
  void* memory = nullptr;

  // Workspace pieces (null when no layer needs them).
  int32_t* table = nullptr;                                    // [layers][kFields][H]
  float* col_score = nullptr;                                  // [H, N]
  float* diag_score = nullptr;                                 // [H, N]
  float* vs_scratch = nullptr;                                 // vs_scratch_floats(H, N)
  int32_t* columns = nullptr;                                  // [H, col_stride]
  int32_t* offsets = nullptr;                                  // [H, off_stride]
  int32_t* run_start = nullptr;                                // [H, off_stride]
  int32_t* n_runs = nullptr;                                   // [H]
  float* pooled_q = nullptr;                                   // [H, nb, d]
  float* pooled_k = nullptr;                                   // [Hkv, d, nb]
  int32_t* kept = nullptr;                                     // [H, nb, cap]
  int32_t* kept_count = nullptr;                               // [H * nb]
  unsigned long long* lookback = nullptr;                      // [slot_lookback_words(H, nb) + 1]
  int32_t* range_offsets = nullptr;                            // [H * nb + 1]
  int32_t* col_offsets = nullptr;                              // [H * nb + 1]
  int32_t* range_begin = nullptr;                              // [range_room]
  int32_t* range_end = nullptr;                                // [range_room]
  int32_t* cols = nullptr;                                     // [col_room]
  int32_t* band_sink = nullptr;                                // [H]
  int32_t* band_local = nullptr;                               // [H]
  int32_t* tile_entries = nullptr;                             // [col_room]
  int32_t* tile_counts = nullptr;                              // [H * work tiles]
  int* tile_counter = nullptr;                                 // [2], zeroed once (attention_launch.h)
  int col_stride = 0, off_stride = 0, cap = 0;
  int64_t range_room = 0, col_room = 0;

  // Heads per plan group: the whole layer, or whole KV groups when the layer's index would pass
  // the workspace cap or int32 offsets (layer_plan.h). The per-head buffers hold one group.
  int group_heads = 0;

  // State of the last estimate / build.
  GpuQK layer_qk;  // the last Q/K given (read again by run for the groups after the first)
  GpuQK qk;        // its current group's heads
  int h0 = 0;      // the current group's first head
  int layer = -1;
  bool built = false;

  // The second stream of plan's fork/join and its two events (made with the workspace).
  cudaStream_t side = nullptr;
  cudaEvent_t fork = nullptr, join = nullptr;

  // Layer l's field f for the current group's heads.
  const int32_t* field(int l, Field f) const {
    return table + (static_cast<int64_t>(l) * kFields + f) * shape.n_heads + h0;
  }
  int kv_group() const { return shape.n_heads / shape.n_kv_heads; }
  // A row stride as given, or (0) the packed one of `heads` heads.
  int64_t row_stride(int64_t given, int heads) const { return given > 0 ? given : int64_t(heads) * shape.head_dim; }
  // The current group: heads [first, first + group_heads) of the last Q and K.
  void set_group(int first) {
    h0 = first;
    const int64_t elem = 2;  // bf16 or fp16
    qk = layer_qk;
    qk.q = static_cast<const char*>(layer_qk.q) + int64_t(first) * shape.head_dim * elem;
    qk.k = static_cast<const char*>(layer_qk.k) + int64_t(first / kv_group()) * shape.head_dim * elem;
    qk.n_heads = group_heads;
    qk.n_kv_heads = group_heads / kv_group();
    qk.q_row_stride = row_stride(layer_qk.q_row_stride, shape.n_heads);
    qk.k_row_stride = row_stride(layer_qk.k_row_stride, shape.n_kv_heads);
    built = false;
  }
  // The whole layer's attention params narrowed to the current group's heads.
  AttentionParams group_params(const AttentionParams& p) const {
    if (group_heads == shape.n_heads) return p;
    const int64_t elem = 2, d = shape.head_dim, kv0 = h0 / kv_group();
    AttentionParams g = p;
    g.q_row_stride = row_stride(p.q_row_stride, shape.n_heads);
    g.k_row_stride = row_stride(p.k_row_stride, shape.n_kv_heads);
    g.v_row_stride = row_stride(p.v_row_stride, shape.n_kv_heads);
    g.o_row_stride = row_stride(p.o_row_stride, shape.n_heads);
    g.q = static_cast<const char*>(p.q) + h0 * d * elem;
    g.k = static_cast<const char*>(p.k) + kv0 * d * elem;
    g.v = static_cast<const char*>(p.v) + kv0 * d * elem;
    if (p.o != nullptr) g.o = static_cast<char*>(p.o) + h0 * d * elem;
    if (p.lse != nullptr) g.lse = p.lse + int64_t(h0) * p.n_tokens;
    if (p.probe_lse != nullptr) g.probe_lse = p.probe_lse + int64_t(h0) * p.n_tokens;
    if (p.probe_recall != nullptr) g.probe_recall = p.probe_recall + h0;
    if (p.probe_pairs != nullptr) g.probe_pairs = p.probe_pairs + h0;
    g.n_heads = group_heads;
    g.n_kv_heads = group_heads / kv_group();
    return g;
  }
  int n_tokens() const { return qk.n_tokens; }
  VsCount vs_columns(int l) const { return VsCount{HeadValue{field(l, kVsV), 0}, settings.v_sink, n_tokens()}; }
  VsCount vs_offsets(int l) const { return VsCount{HeadValue{field(l, kVsS), 0}, settings.s_local, n_tokens()}; }

  void take_qk(const GpuQK& next);
  // The current group's whole plan: its estimates and index (the two chains forked where both run).
  void plan_group(int l, cudaStream_t stream);
  void vs_estimate(cudaStream_t stream);
  void bs_estimate(cudaStream_t stream);
  void vs_select(int l, cudaStream_t stream);
  void bs_select(int l, cudaStream_t stream);
  void slots(int l, cudaStream_t stream);  // count, offsets and fill in one launch: the index of layer l
  // The slots' look-back status and ticket, zero before each build's slot launch.
  void reset_lookback(cudaStream_t stream) {
    const int64_t words = slot_lookback_words(group_heads, num_row_blocks(n_tokens())) + 1;
    HC_CHECK_CUDA(cudaMemsetAsync(lookback, 0, static_cast<size_t>(words) * sizeof(unsigned long long), stream));
  }
  // The gathered columns merged per work tile, for run (layers with vertical-slash heads).
  void merge(cudaStream_t stream) {
    merge_tile_columns_into(view(), sparse_blocks_per_tile(shape.head_dim, info[static_cast<size_t>(layer)].all_static),
                            col_room, tile_entries, tile_counts, stream);
  }
  SparseIndexView view() const;

  ~Impl() {
    if (memory != nullptr) cudaFree(memory);
    if (side != nullptr) cudaStreamDestroy(side);
    if (fork != nullptr) cudaEventDestroy(fork);
    if (join != nullptr) cudaEventDestroy(join);
  }

  void carve(WorkspaceCarver& c, bool any_vs, bool any_bs, int layers_count) {
    const int64_t h = group_heads, n = shape.max_tokens, nb = num_row_blocks(n), d = shape.head_dim;
    table = c.take<int32_t>(int64_t(layers_count) * kFields * shape.n_heads);
    if (any_vs) {
      col_score = c.take<float>(h * n);
      diag_score = c.take<float>(h * n);
      vs_scratch = c.take<float>(vs_scratch_floats(h, n));
      columns = c.take<int32_t>(h * col_stride);
      offsets = c.take<int32_t>(h * off_stride);
      run_start = c.take<int32_t>(h * off_stride);
      n_runs = c.take<int32_t>(h);
    }
    if (any_bs) {
      pooled_q = c.take<float>(h * nb * d);
      pooled_k = c.take<float>(h / kv_group() * nb * d);
      kept = c.take<int32_t>(h * nb * cap);
      kept_count = c.take<int32_t>(h * nb);
    }
    lookback = c.take<unsigned long long>(slot_lookback_words(h, nb) + 1);
    range_offsets = c.take<int32_t>(h * nb + 1);
    col_offsets = c.take<int32_t>(h * nb + 1);
    range_begin = c.take<int32_t>(range_room);
    range_end = c.take<int32_t>(range_room);
    cols = c.take<int32_t>(col_room);
    band_sink = c.take<int32_t>(h);
    band_local = c.take<int32_t>(h);
    if (any_vs) {
      tile_entries = c.take<int32_t>(col_room);
      tile_counts = c.take<int32_t>(h * num_work_row_tiles(n, 1));
    }
    tile_counter = c.take<int>(2);
  }
};

namespace {

// Checks the profile and shape and sizes everything (m's layout, without memory): the host table
// [layers][kFields][H] to upload and whether any layer needs each estimate.
void prepare(LayerPlanner::Impl& m, const std::vector<std::vector<PatternConfig>>& layers, const LayerShape& shape,
             const EstimatorSettings& settings, int64_t workspace_cap, std::vector<int32_t>& table, bool& any_vs,
             bool& any_bs) {
  m.shape = shape;
  m.settings = settings;
  if (layers.empty()) throw InputError(kWhat, "a plan needs at least one layer");
  check_tokens_heads(shape.max_tokens, shape.n_heads);
  if (shape.n_kv_heads < 1 || shape.n_heads % shape.n_kv_heads != 0)
    throw InputError(kWhat, "n_heads must be a positive multiple of n_kv_heads");
  if (shape.head_dim != 64 && shape.head_dim != 128)
    throw InputError(kWhat, "head_dim " + std::to_string(shape.head_dim) + " is unsupported (64 or 128)");
  if (settings.last_q < 1 || (settings.last_q > 64 && shape.max_tokens > 64) || settings.v_sink < 0 ||
      settings.s_local < 0)
    throw InputError(kWhat, "estimator settings need 1 <= last_q <= 64 and v_sink, s_local >= 0");

  const int h_count = shape.n_heads, n = shape.max_tokens;
  const int64_t nb = num_row_blocks(n);
  table.assign(layers.size() * kFields * static_cast<size_t>(h_count), 0);  // [layers][kFields][H]
  std::vector<HeadBounds> bounds(layers.size() * static_cast<size_t>(h_count));  // [layers][H]
  any_vs = any_bs = false;
  for (size_t l = 0; l < layers.size(); ++l) {
    const std::vector<PatternConfig>& heads = layers[l];
    if (static_cast<int>(heads.size()) != h_count)
      throw InputError(kWhat, "layer " + std::to_string(l) + " has " + std::to_string(heads.size()) +
                                  " head configs for " + std::to_string(h_count) + " heads");
    LayerInfo info;
    for (int h = 0; h < h_count; ++h) {
      const PatternConfig& c = heads[static_cast<size_t>(h)];
      check_config(c, std::string(kWhat) + ": layer " + std::to_string(l) + " head " + std::to_string(h));
      auto at = [&](Field f) -> int32_t& { return table[(l * kFields + f) * h_count + static_cast<size_t>(h)]; };
      at(kPattern) = static_cast<int32_t>(c.pattern);
      at(kSink) = c.pattern == Pattern::a_shape ? c.p1 : 0;
      at(kLocal) = c.pattern == Pattern::a_shape ? c.p2 : kDenseLocal;
      at(kVsV) = c.pattern == Pattern::vertical_slash ? c.p1 : -1;
      at(kVsS) = c.pattern == Pattern::vertical_slash ? c.p2 : -1;
      at(kBsK) = c.pattern == Pattern::block_sparse ? c.p1 : -1;
      info.all_dense = info.all_dense && c.pattern == Pattern::dense;
      info.all_static = info.all_static && (c.pattern == Pattern::dense || c.pattern == Pattern::a_shape);
      if (c.pattern == Pattern::vertical_slash) {
        info.has_vs = true;
        m.col_stride = std::max(m.col_stride, vs_kept(c.p1, settings.v_sink, n));
        m.off_stride = std::max(m.off_stride, vs_kept(c.p2, settings.s_local, n));
      }
      if (c.pattern == Pattern::block_sparse) {
        info.has_bs = true;
        m.cap = std::max<int>(m.cap, static_cast<int>(std::min<int64_t>(nb, std::max(c.p1, 2))));
      }
      bounds[l * static_cast<size_t>(h_count) + static_cast<size_t>(h)] = head_bounds(c, n, settings);
    }
    any_vs = any_vs || info.has_vs;
    any_bs = any_bs || info.has_bs;
    m.info.push_back(info);
  }
  if (any_bs) check_block_select_tokens(n, shape.head_dim);

  // The most KV groups per plan group (a divisor of their count, so the groups are equal) whose
  // index fits int32 offsets and whose workspace the cap; one KV group at least, within int32.
  const int kv_group = h_count / shape.n_kv_heads;
  bool fits_offsets = false;
  for (int g = shape.n_kv_heads; g >= 1; --g) {
    if (shape.n_kv_heads % g != 0) continue;
    m.group_heads = g * kv_group;
    m.range_room = m.col_room = 0;
    for (size_t l = 0; l < layers.size(); ++l)
      for (int first = 0; first < h_count; first += m.group_heads) {
        HeadBounds group;
        for (int h = first; h < first + m.group_heads; ++h) {
          group.ranges += bounds[l * static_cast<size_t>(h_count) + static_cast<size_t>(h)].ranges;
          group.cols += bounds[l * static_cast<size_t>(h_count) + static_cast<size_t>(h)].cols;
        }
        m.range_room = std::max(m.range_room, group.ranges);
        m.col_room = std::max(m.col_room, group.cols);
      }
    fits_offsets = m.range_room <= std::numeric_limits<int32_t>::max() &&
                   m.col_room <= std::numeric_limits<int32_t>::max();
    if (!fits_offsets) continue;
    WorkspaceCarver sizing;
    m.carve(sizing, any_vs, any_bs, static_cast<int>(layers.size()));
    m.bytes = sizing.used;
    if (m.bytes <= workspace_cap) break;
  }
  if (!fits_offsets)
    throw InputError(kWhat, "an index of this profile at " + std::to_string(n) + " tokens could hold more than " +
                                "2^31 - 1 ranges or columns (int32 offsets) even for one KV group's " +
                                std::to_string(kv_group) + " heads");
}

}  // namespace

int64_t LayerPlanner::workspace_bytes(const std::vector<std::vector<PatternConfig>>& layers, const LayerShape& shape,
                                      const EstimatorSettings& settings, int64_t workspace_cap) {
  Impl m;
  std::vector<int32_t> table;
  bool any_vs = false, any_bs = false;
  prepare(m, layers, shape, settings, workspace_cap, table, any_vs, any_bs);
  return m.bytes;
}

LayerPlanner::LayerPlanner(const std::vector<std::vector<PatternConfig>>& layers, const LayerShape& shape,
                           const EstimatorSettings& settings, cudaStream_t stream, int64_t workspace_cap)
    : impl_(std::make_unique<Impl>()) {
  Impl& m = *impl_;
  std::vector<int32_t> table;
  bool any_vs = false, any_bs = false;
  prepare(m, layers, shape, settings, workspace_cap, table, any_vs, any_bs);
  m.memory = allocate_workspace(m.bytes, shape.max_tokens, kWhat);
  HC_CHECK_CUDA(cudaStreamCreateWithFlags(&m.side, cudaStreamNonBlocking));
  HC_CHECK_CUDA(cudaEventCreateWithFlags(&m.fork, cudaEventDisableTiming));
  HC_CHECK_CUDA(cudaEventCreateWithFlags(&m.join, cudaEventDisableTiming));
  WorkspaceCarver carver{static_cast<char*>(m.memory), 0};
  m.carve(carver, any_vs, any_bs, static_cast<int>(layers.size()));
  HC_CHECK_CUDA(cudaMemcpyAsync(m.table, table.data(), table.size() * sizeof(int32_t), cudaMemcpyHostToDevice, stream));
  HC_CHECK_CUDA(cudaMemsetAsync(m.tile_counter, 0, 2 * sizeof(int), stream));
  HC_CHECK_CUDA(cudaStreamSynchronize(stream));  // the host table is freed on return
}

LayerPlanner::~LayerPlanner() = default;
LayerPlanner::LayerPlanner(LayerPlanner&&) noexcept = default;
LayerPlanner& LayerPlanner::operator=(LayerPlanner&&) noexcept = default;

int LayerPlanner::layers() const { return static_cast<int>(impl_->info.size()); }
bool LayerPlanner::all_dense(int layer) const { return impl_->info.at(static_cast<size_t>(layer)).all_dense; }
int64_t LayerPlanner::workspace_bytes() const { return impl_->bytes; }
int LayerPlanner::heads_per_group() const { return impl_->group_heads; }

namespace {

void check_layer(int layer, int count) {
  if (layer < 0 || layer >= count)
    throw InputError(kWhat, "layer " + std::to_string(layer) + " is not in 0.." + std::to_string(count - 1));
}

}  // namespace

namespace {

// Throws unless qk fits the plan's shape.
void check_plan_qk(const GpuQK& qk, const LayerShape& shape) {
  check_qk(qk);
  if (qk.n_heads != shape.n_heads || qk.n_kv_heads != shape.n_kv_heads || qk.head_dim != shape.head_dim ||
      qk.n_tokens > shape.max_tokens)
    throw InputError(kWhat, "q/k (" + std::to_string(qk.n_tokens) + " tokens, " + std::to_string(qk.n_heads) +
                                " heads, " + std::to_string(qk.n_kv_heads) + " kv heads, d = " +
                                std::to_string(qk.head_dim) + ") do not fit the plan's shape (up to " +
                                std::to_string(shape.max_tokens) + " tokens, " + std::to_string(shape.n_heads) +
                                ", " + std::to_string(shape.n_kv_heads) + ", d = " + std::to_string(shape.head_dim) +
                                ")");
}

}  // namespace

// The stages of a layer's plan (layer_plan.h): estimates, selections, slots.
void LayerPlanner::Impl::vs_estimate(cudaStream_t stream) {
  launch_vs_scores(qk, settings.last_q, col_score, diag_score, vs_scratch, stream);
}
void LayerPlanner::Impl::bs_estimate(cudaStream_t stream) { launch_block_pool(qk, pooled_q, pooled_k, stream); }
void LayerPlanner::Impl::vs_select(int l, cudaStream_t stream) {
  const int n = n_tokens();
  launch_select_pair(SelectJob{col_score, settings.v_sink, vs_columns(l), col_stride, columns},
                     SelectJob{diag_score, settings.s_local, vs_offsets(l), off_stride, offsets},
                     RunsJob{run_start, n_runs}, group_heads, n, stream);
}
void LayerPlanner::Impl::bs_select(int l, cudaStream_t stream) {
  launch_block_select(qk, pooled_q, pooled_k, HeadValue{field(l, kBsK), 0}, cap, kept, kept_count, stream);
}
void LayerPlanner::Impl::slots(int l, cudaStream_t stream) {
  const LayerInfo& li = info[static_cast<size_t>(l)];
  const int n = n_tokens(), h_count = group_heads;
  const int nb = static_cast<int>(num_row_blocks(n)), n_slots = h_count * nb;
  SlotRule rule;
  rule.n = n;
  rule.nb = nb;
  rule.pattern = HeadValue{field(l, kPattern), 0};
  rule.sink = HeadValue{field(l, kSink), 0};
  rule.local = HeadValue{field(l, kLocal), 0};
  if (li.has_vs) {
    rule.columns = columns;
    rule.col_stride = col_stride;
    rule.n_columns = vs_columns(l);
    rule.offsets = offsets;
    rule.off_stride = off_stride;
    rule.n_offsets = vs_offsets(l);
    rule.run_start = run_start;
    rule.n_runs = n_runs;
  }
  if (li.has_bs) {
    rule.kept = kept;
    rule.kept_count = kept_count;
    rule.cap = cap;
  }
  SlotLookback slot_lookback;
  slot_lookback.status = lookback;
  slot_lookback.ticket = reinterpret_cast<int*>(lookback + slot_lookback_words(h_count, nb));
  launch_slot_one_pass(rule, n_slots, slot_lookback, range_offsets, col_offsets, range_begin, range_end, cols,
                       band_sink, band_local, stream);
  layer = l;
  built = true;
}

// The Q and K the next estimate or plan reads (checked against the plan's shape), from its first
// head group; the last index is stale from here on.
void LayerPlanner::Impl::take_qk(const GpuQK& next) {
  check_plan_qk(next, shape);
  layer_qk = next;
  set_group(0);
}

void LayerPlanner::Impl::plan_group(int l, cudaStream_t stream) {
  const LayerInfo& li = info[static_cast<size_t>(l)];
  reset_lookback(stream);  // first, so that no memset sits inside the chain of launches
  // The vertical-slash and block-sparse chains are independent: with both in the layer, the
  // block-sparse one runs on a second stream, forked from and joined back into `stream` (each
  // chain is a few small launches that leave most SMs idle at 8K tokens).
  const bool forked = li.has_vs && li.has_bs;
  if (forked) {
    HC_CHECK_CUDA(cudaEventRecord(fork, stream));
    HC_CHECK_CUDA(cudaStreamWaitEvent(side, fork, 0));
  }
  cudaStream_t bs_stream = forked ? side : stream;
  if (li.has_bs) {
    bs_estimate(bs_stream);
    bs_select(l, bs_stream);
  }
  if (li.has_vs) {
    vs_estimate(stream);
    vs_select(l, stream);
  }
  if (forked) {
    HC_CHECK_CUDA(cudaEventRecord(join, side));
    HC_CHECK_CUDA(cudaStreamWaitEvent(stream, join, 0));
  }
  slots(l, stream);
  if (li.has_vs) merge(stream);
}

void LayerPlanner::estimate(const GpuQK& qk, cudaStream_t stream) {
  Impl& m = *impl_;
  m.take_qk(qk);
  if (m.col_score != nullptr) m.vs_estimate(stream);
  if (m.pooled_q != nullptr) m.bs_estimate(stream);
}

void LayerPlanner::build(int layer, cudaStream_t stream) {
  Impl& m = *impl_;
  check_layer(layer, layers());
  if (m.qk.n_tokens < 1) throw InputError(kWhat, "build needs an estimate first (plan or estimate)");
  const LayerInfo& info = m.info[static_cast<size_t>(layer)];
  m.reset_lookback(stream);
  if (info.has_vs) m.vs_select(layer, stream);
  if (info.has_bs) m.bs_select(layer, stream);
  m.slots(layer, stream);
  if (info.has_vs) m.merge(stream);
}

void LayerPlanner::plan(int layer, const GpuQK& qk, cudaStream_t stream) {
  Impl& m = *impl_;
  check_layer(layer, layers());
  m.take_qk(qk);
  m.layer = layer;
  if (m.info[static_cast<size_t>(layer)].all_dense) return;  // nothing to build: run takes the dense kernel
  m.plan_group(layer, stream);
}

SparseIndexView LayerPlanner::index() const { return impl_->view(); }

SparseIndexView LayerPlanner::Impl::view() const {
  SparseIndexView v;
  if (!built) return v;
  v.n_heads = group_heads;
  v.n_tokens = n_tokens();
  v.range_offsets = range_offsets;
  v.range_begin = range_begin;
  v.range_end = range_end;
  v.col_offsets = col_offsets;
  v.cols = cols;
  v.band_sink = band_sink;
  v.band_local = band_local;
  v.total_cols = -1;
  v.col_capacity = col_room;
  v.row_blocks_share_tiles = info[static_cast<size_t>(layer)].all_static;
  return v;
}

void LayerPlanner::run(const AttentionParams& params, cudaStream_t stream) {
  Impl& m = *impl_;
  if (m.layer < 0) throw InputError(kWhat, "run needs a plan first");
  if (params.n_tokens != m.n_tokens() || params.n_heads != m.shape.n_heads ||
      params.n_kv_heads != m.shape.n_kv_heads || params.head_dim != m.shape.head_dim)
    throw InputError(kWhat, "the attention's shape (" + std::to_string(params.n_tokens) + " tokens, " +
                                std::to_string(params.n_heads) + " heads) is not the plan's (" +
                                std::to_string(m.n_tokens()) + ", " + std::to_string(m.shape.n_heads) + ")");
  const LayerInfo& info = m.info[static_cast<size_t>(m.layer)];
  const bool probe = params.probe_lse != nullptr;
  if (!probe && info.all_dense) {
    dense_attention_forward(params, stream);
    return;
  }
  if (!probe && !m.built) throw InputError(kWhat, "run needs the layer's index (plan or build)");
  // One launch for the whole layer, or one per head group, each after its group's plan (the
  // first group's is the one plan or build made).
  for (int first = 0; first < m.shape.n_heads; first += m.group_heads) {
    if (!m.built || m.h0 != first) {
      m.set_group(first);
      m.plan_group(m.layer, stream);
    }
    const AttentionParams p = m.group_params(params);
    if (probe) sparse_attention_forward(p, index(), stream);
    else
      sparse_attention_prepared(p, index(), info.has_vs ? m.tile_entries : nullptr,
                                info.has_vs ? m.tile_counts : nullptr, m.tile_counter, stream);
  }
}

}  // namespace hc::kernels

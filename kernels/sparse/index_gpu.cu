// GPU index builders (kernels/sparse/index_gpu.h). The static patterns (dense, a_shape) are
// written in closed form by one kernel; the estimated ones run their estimate and selection
// stages, then the slot stage twice over all (head, row block) slots: once counting ranges and
// columns, once writing them at the offsets an exclusive scan of the counts gives (the stages:
// index_device.cuh).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/sparse/device_pool.h"
#include "kernels/sparse/index_device.cuh"
#include "kernels/sparse/index_gpu.h"

namespace hc::kernels {

namespace detail {

void check_tokens_heads(int64_t n_tokens, int64_t n_heads) {
  if (n_tokens < 1 || n_tokens > std::numeric_limits<int32_t>::max() / 2)
    throw InputError(kIndexWhat, "n_tokens must be in [1, 2^30], got " + std::to_string(n_tokens));
  if (n_heads < 1) throw InputError(kIndexWhat, "n_heads must be >= 1, got " + std::to_string(n_heads));
}

void check_qk(const GpuQK& qk) {
  check_tokens_heads(qk.n_tokens, qk.n_heads);
  if (qk.q == nullptr || qk.k == nullptr) throw InputError(kIndexWhat, "estimator needs device q and k");
  if (qk.n_kv_heads < 1 || qk.n_heads % qk.n_kv_heads != 0)
    throw InputError(kIndexWhat, "n_heads must be a positive multiple of n_kv_heads");
  if (qk.head_dim != 64 && qk.head_dim != 128)
    throw InputError(kIndexWhat, "head_dim " + std::to_string(qk.head_dim) + " is unsupported (64 or 128)");
  if (qk.q_row_stride < 0 || qk.q_row_stride % 8 || qk.k_row_stride < 0 || qk.k_row_stride % 8)
    throw InputError(kIndexWhat, "row strides must be non-negative multiples of 8 elements");
}

}  // namespace detail

namespace {

using namespace detail;

// ---- static patterns (dense, a_shape): the whole index in closed form, one kernel ----

// A slot's ranges depend only on its row block: dense [0, r1 + 1); a_shape the sink range
// [0, min(sink, r1 + 1)) and the local range [max(0, r0 - local + 1), r1 + 1), merged when they
// touch. They stay apart (two ranges) exactly when sink > 0 and r0 - local + 1 > sink, i.e. from
// row block two_from = (sink + local - 1) / 64 + 1 on, so the ranges before row block rb number
// rb + max(0, rb - two_from) and every offset is known without a scan. One kernel writes the
// whole index: the general two passes (count, scan, fill), a host count and three fills took most
// of a 40-55 us A-shape build at 8K tokens, in launch and allocation latency (H100).
struct StaticRule {
  int n, nb, n_heads;
  int sink, local;  // a_shape; sink = 0 and local = n: one range per slot (dense)
  int two_from;     // first row block with two ranges (nb: none)
  __host__ __device__ int64_t ranges_before(int64_t rb) const { return rb + (rb > two_from ? rb - two_from : 0); }
  __host__ __device__ int64_t per_head() const { return ranges_before(nb); }
};
StaticRule static_rule(int n, int n_heads, int sink, int local) {
  const int nb = static_cast<int>(num_row_blocks(n));
  StaticRule r{n, nb, n_heads, sink, local, nb};
  if (sink > 0) r.two_from = static_cast<int>(std::min<int64_t>(nb, (int64_t(sink) + local - 1) / kBlock + 1));
  return r;
}

// One thread per slot (and one for the final offsets). range_offsets, col_offsets [H nb + 1],
// range_begin/end [H per_head], band_sink/local [H] (or null).
__global__ void static_index_kernel(StaticRule rule, int32_t* range_offsets, int32_t* range_begin,
                                    int32_t* range_end, int32_t* col_offsets, int32_t* band_sink,
                                    int32_t* band_local) {
  const int64_t n_slots = int64_t(rule.n_heads) * rule.nb;
  const int64_t slot = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (slot < rule.n_heads && band_sink != nullptr) {
    band_sink[slot] = rule.sink;
    band_local[slot] = rule.local;
  }
  if (slot > n_slots) return;
  const int64_t h = slot / rule.nb, rb = slot % rule.nb;
  const int64_t at = h * rule.per_head() + rule.ranges_before(rb);
  range_offsets[slot] = static_cast<int32_t>(at);
  col_offsets[slot] = 0;
  if (slot == n_slots) return;
  const int r0 = static_cast<int>(rb) * kBlock, r1 = last_row(static_cast<int>(rb), rule.n);
  const int local_begin = max(0, r0 - rule.local + 1);
  if (rb >= rule.two_from) {
    range_begin[at] = 0;
    range_end[at] = rule.sink;
    range_begin[at + 1] = local_begin;
    range_end[at + 1] = r1 + 1;
  } else {
    range_begin[at] = rule.sink > 0 ? 0 : local_begin;
    range_end[at] = r1 + 1;
  }
}

DeviceSparseIndex build_static_index(const StaticRule& rule, bool band, cudaStream_t stream) {
  const int64_t n_slots = int64_t(rule.n_heads) * rule.nb;
  const int64_t total = rule.n_heads * rule.per_head();
  if (total > std::numeric_limits<int32_t>::max())
    throw InputError(kIndexWhat, "the index has more than 2^31 - 1 ranges (int32 offsets)");
  // One allocation for every array (each its own allocation took a few us more per build).
  const int64_t band_ints = band ? 2 * int64_t(rule.n_heads) : 0;
  auto all = device_alloc<int32_t>(2 * (n_slots + 1) + 2 * total + band_ints, stream);
  auto part = [&](int64_t offset) { return std::shared_ptr<int32_t>(all, all.get() + offset); };
  DeviceSparseIndex out;
  using A = DeviceIndexAccess;
  A::n_heads(out) = rule.n_heads;
  A::n_tokens(out) = rule.n;
  A::total_ranges(out) = total;
  A::total_cols(out) = 0;
  A::col_capacity(out) = 0;
  A::row_blocks_share_tiles(out) = true;  // dense and a_shape (build_static_index's patterns)
  A::range_offsets(out) = part(0);
  A::col_offsets(out) = part(n_slots + 1);
  A::range_begin(out) = part(2 * (n_slots + 1));
  A::range_end(out) = part(2 * (n_slots + 1) + total);
  A::cols(out) = part(0);  // no columns: any valid device pointer
  if (band) {
    A::band_sink(out) = part(2 * (n_slots + 1) + 2 * total);
    A::band_local(out) = part(2 * (n_slots + 1) + 2 * total + rule.n_heads);
  }
  const int64_t threads = std::max<int64_t>(n_slots + 1, rule.n_heads);
  static_index_kernel<<<static_cast<unsigned>((threads + 255) / 256), 256, 0, stream>>>(
      rule, A::range_offsets(out).get(), A::range_begin(out).get(), A::range_end(out).get(),
      A::col_offsets(out).get(), band ? A::band_sink(out).get() : nullptr, band ? A::band_local(out).get() : nullptr);
  HC_CHECK_LAUNCH();
  return out;
}

// ---- estimated patterns: count per slot, scan, fill ----

// out's range and column offsets ([n_slots + 1] each, one allocation), and the per-slot counts
// [2][n_slots] they are scanned from (returned: scratch for launch_slot_offsets).
std::shared_ptr<int32_t> allocate_offsets(DeviceSparseIndex& out, int64_t n_slots, cudaStream_t stream) {
  auto counts = device_alloc<int32_t>(2 * n_slots, stream, true);
  auto offsets = device_alloc<int32_t>(2 * (n_slots + 1), stream);
  DeviceIndexAccess::range_offsets(out) = std::shared_ptr<int32_t>(offsets, offsets.get());
  DeviceIndexAccess::col_offsets(out) = std::shared_ptr<int32_t>(offsets, offsets.get() + n_slots + 1);
  return counts;
}
// offsets[n_slots] of each of the `count` offset arrays, on the host: a copy each and one stream
// synchronisation. A scan's -1 (a total past 2^31 - 1) is an error.
void read_totals(const int32_t* const* offsets, int count, int64_t n_slots, int64_t* totals, cudaStream_t stream) {
  int32_t last[2] = {0, 0};
  for (int i = 0; i < count; ++i)
    HC_CHECK_CUDA(cudaMemcpyAsync(&last[i], offsets[i] + n_slots, sizeof(int32_t), cudaMemcpyDeviceToHost, stream));
  HC_CHECK_CUDA(cudaStreamSynchronize(stream));
  for (int i = 0; i < count; ++i) {
    if (last[i] < 0) throw InputError(kIndexWhat, "the index has more than 2^31 - 1 ranges or columns (int32 offsets)");
    totals[i] = last[i];
  }
}
// out's totals read back from its offsets.
void read_totals(DeviceSparseIndex& out, int64_t n_slots, cudaStream_t stream) {
  const int32_t* offsets[2] = {DeviceIndexAccess::range_offsets(out).get(), DeviceIndexAccess::col_offsets(out).get()};
  int64_t totals[2];
  read_totals(offsets, 2, n_slots, totals, stream);
  DeviceIndexAccess::total_ranges(out) = totals[0];
  DeviceIndexAccess::total_cols(out) = totals[1];
}
// out's range_begin, range_end [range_room] and cols [col_room], one allocation.
void allocate_entries(DeviceSparseIndex& out, int64_t range_room, int64_t col_room, cudaStream_t stream) {
  using A = DeviceIndexAccess;
  auto entries = device_alloc<int32_t>(2 * range_room + col_room, stream);
  A::range_begin(out) = std::shared_ptr<int32_t>(entries, entries.get());
  A::range_end(out) = std::shared_ptr<int32_t>(entries, entries.get() + range_room);
  A::cols(out) = std::shared_ptr<int32_t>(entries, entries.get() + 2 * range_room);
  A::col_capacity(out) = col_room;
}

// Up to this many bytes of ranges and columns by the bounds, a build allocates from them and
// fills the index at once; beyond, it reads the exact totals back first (a copy to the host and a
// stream synchronisation, the device idle until the host has launched the fill). The read-back
// cost 20-25 us per build: H100, headcal bench sparse, build ms, 8K tokens, d = 64: vertical-slash
// 0.101-0.113 -> 0.079-0.085, block_sparse(100) 0.070 -> 0.046; 32K, d = 128: block_sparse(100)
// 0.327 -> 0.304. 32 MiB (the most an index then holds beyond its size) covers headcal bench's
// block-sparse builds up to 32K tokens at H = 32 (128K at H = 9) and its vertical-slash builds at
// 8K but for (3500,100) at d = 128.
constexpr int64_t kBoundedBuildBytes = int64_t(32) << 20;

// Estimated patterns: counts per slot, offsets by scans, then the ranges and columns written at
// their offsets, into arrays sized by the bounds or, where those are large, by the totals.
DeviceSparseIndex build_from_slots(const SlotRule& rule, int64_t n_tokens, int64_t n_heads, const HeadBounds& bounds,
                                   cudaStream_t stream) {
  const int64_t nb = num_row_blocks(n_tokens);
  const int64_t n_slots = n_heads * nb;
  if (n_slots > std::numeric_limits<int32_t>::max() / 2)
    throw InputError(kIndexWhat, "too many (head, row block) slots");
  DeviceSparseIndex out;
  using A = DeviceIndexAccess;
  A::n_heads(out) = n_heads;
  A::n_tokens(out) = n_tokens;
  const auto counts = allocate_offsets(out, n_slots, stream);
  launch_slot_offsets(rule, static_cast<int>(n_slots), counts.get(), A::range_offsets(out).get(),
                      A::col_offsets(out).get(), stream);
  int64_t range_room = n_heads * bounds.ranges, col_room = n_heads * bounds.cols;
  if ((2 * range_room + col_room) * int64_t(sizeof(int32_t)) <= kBoundedBuildBytes) {
    // Below 2^31 entries, so the scans' offsets cannot overflow; the totals stay on the device.
    A::total_ranges(out) = -1;
    A::total_cols(out) = -1;
  } else {
    read_totals(out, n_slots, stream);
    range_room = A::total_ranges(out);
    col_room = A::total_cols(out);
  }
  allocate_entries(out, range_room, col_room, stream);
  launch_slot_fill(rule, static_cast<int>(n_slots), A::range_offsets(out).get(), A::col_offsets(out).get(),
                   A::range_begin(out).get(), A::range_end(out).get(), A::cols(out).get(), nullptr, nullptr, stream);
  return out;
}


}  // namespace

SparseIndexView DeviceSparseIndex::view() const {
  SparseIndexView v;
  v.n_heads = n_heads_;
  v.n_tokens = n_tokens_;
  v.range_offsets = range_offsets_.get();
  v.range_begin = range_begin_.get();
  v.range_end = range_end_.get();
  v.col_offsets = col_offsets_.get();
  v.cols = cols_.get();
  v.band_sink = band_sink_.get();
  v.band_local = band_local_.get();
  v.total_cols = total_cols_;
  v.col_capacity = col_capacity_;
  v.row_blocks_share_tiles = row_blocks_share_tiles_;
  return v;
}

int64_t DeviceSparseIndex::total_ranges(cudaStream_t stream) const {
  const int32_t* offsets = range_offsets_.get();
  if (total_ranges_ < 0) read_totals(&offsets, 1, n_heads_ * num_row_blocks(n_tokens_), &total_ranges_, stream);
  return total_ranges_;
}
int64_t DeviceSparseIndex::total_cols(cudaStream_t stream) const {
  const int32_t* offsets = col_offsets_.get();
  if (total_cols_ < 0) read_totals(&offsets, 1, n_heads_ * num_row_blocks(n_tokens_), &total_cols_, stream);
  return total_cols_;
}

SparseIndex DeviceSparseIndex::to_host(cudaStream_t stream) const {
  SparseIndex h;
  h.n_heads = n_heads_;
  h.n_tokens = n_tokens_;
  h.row_blocks_share_tiles = row_blocks_share_tiles_;
  const int64_t n_slots = n_heads_ * num_row_blocks(n_tokens_);
  auto copy = [&](std::vector<int32_t>& dst, const std::shared_ptr<int32_t>& src, int64_t count) {
    dst.resize(static_cast<size_t>(count));
    if (count > 0)
      HC_CHECK_CUDA(cudaMemcpyAsync(dst.data(), src.get(), count * sizeof(int32_t), cudaMemcpyDeviceToHost, stream));
  };
  if (n_heads_ == 0) return h;
  copy(h.range_offsets, range_offsets_, n_slots + 1);
  copy(h.col_offsets, col_offsets_, n_slots + 1);
  const int64_t n_ranges = total_ranges(stream), n_cols = total_cols(stream);
  copy(h.range_begin, range_begin_, n_ranges);
  copy(h.range_end, range_end_, n_ranges);
  copy(h.cols, cols_, n_cols);
  if (band_local_) {
    copy(h.band_sink, band_sink_, n_heads_);
    copy(h.band_local, band_local_, n_heads_);
  }
  HC_CHECK_CUDA(cudaStreamSynchronize(stream));
  return h;
}

DeviceSparseIndex build_dense_index_gpu(int64_t n_tokens, int64_t n_heads, cudaStream_t stream) {
  check_tokens_heads(n_tokens, n_heads);
  return build_static_index(static_rule(static_cast<int>(n_tokens), static_cast<int>(n_heads), 0,
                                        static_cast<int>(n_tokens)),
                            false, stream);
}

DeviceSparseIndex build_a_shape_index_gpu(int64_t n_tokens, int64_t n_heads, int sink, int local,
                                          cudaStream_t stream) {
  check_tokens_heads(n_tokens, n_heads);
  if (sink < 0 || local < 1) throw InputError(kIndexWhat, "a_shape needs sink >= 0 and local >= 1");
  return build_static_index(static_rule(static_cast<int>(n_tokens), static_cast<int>(n_heads), sink, local), true,
                            stream);
}

void vertical_slash_scores_gpu(const GpuQK& qk, int last_q, float* col_score, float* diag_score,
                               cudaStream_t stream) {
  check_qk(qk);
  if (last_q < 1) throw InputError(kIndexWhat, "last_q must be >= 1");
  if (last_q > 64 && qk.n_tokens > 64) throw InputError(kIndexWhat, "the GPU estimator supports last_q <= 64");
  auto scratch = device_alloc<float>(static_cast<size_t>(vs_scratch_floats(qk.n_heads, qk.n_tokens)), stream);
  launch_vs_scores(qk, last_q, col_score, diag_score, scratch.get(), stream);
}

DeviceSparseIndex vertical_slash_index_from_scores_gpu(const float* col_score, const float* diag_score,
                                                       int64_t n_heads, int64_t n_tokens, int v, int s,
                                                       int v_sink, int s_local, cudaStream_t stream) {
  check_tokens_heads(n_tokens, n_heads);
  if (v < 0 || s < 0 || v_sink < 0 || s_local < 0)
    throw InputError(kIndexWhat, "vertical_slash needs v, s, v_sink, s_local >= 0");
  const int n = static_cast<int>(n_tokens), heads = static_cast<int>(n_heads);
  const VsCount n_columns{HeadValue{nullptr, v}, v_sink, n}, n_offsets{HeadValue{nullptr, s}, s_local, n};
  const int col_stride = vs_kept(v, v_sink, n), off_stride = vs_kept(s, s_local, n);
  auto columns = device_alloc<int32_t>(size_t(n_heads) * col_stride, stream);   // [H, |V|]
  auto offsets = device_alloc<int32_t>(size_t(n_heads) * off_stride, stream);   // [H, |S|]
  auto run_start = device_alloc<int32_t>(size_t(n_heads) * off_stride, stream);  // [H, |S|]
  auto n_runs = device_alloc<int32_t>(size_t(n_heads), stream);                 // [H]
  launch_select_pair(SelectJob{col_score, v_sink, n_columns, col_stride, columns.get()},
                     SelectJob{diag_score, s_local, n_offsets, off_stride, offsets.get()},
                     RunsJob{run_start.get(), n_runs.get()}, heads, n, stream);
  SlotRule rule;
  rule.n = n;
  rule.nb = static_cast<int>(num_row_blocks(n));
  rule.pattern = HeadValue{nullptr, static_cast<int>(Pattern::vertical_slash)};
  rule.columns = columns.get();
  rule.col_stride = col_stride;
  rule.n_columns = n_columns;
  rule.offsets = offsets.get();
  rule.off_stride = off_stride;
  rule.n_offsets = n_offsets;
  rule.run_start = run_start.get();
  rule.n_runs = n_runs.get();
  const HeadBounds bounds =
      head_bounds({Pattern::vertical_slash, v, s}, n_tokens, EstimatorSettings{64, v_sink, s_local});
  return build_from_slots(rule, n_tokens, n_heads, bounds, stream);
}

DeviceSparseIndex build_vertical_slash_index_gpu(const GpuQK& qk, int v, int s, const EstimatorSettings& settings,
                                                 cudaStream_t stream) {
  check_qk(qk);
  auto col = device_alloc<float>(size_t(qk.n_heads) * qk.n_tokens, stream);   // [H, N]
  auto diag = device_alloc<float>(size_t(qk.n_heads) * qk.n_tokens, stream);  // [H, N]
  vertical_slash_scores_gpu(qk, settings.last_q, col.get(), diag.get(), stream);
  return vertical_slash_index_from_scores_gpu(col.get(), diag.get(), qk.n_heads, qk.n_tokens, v, s,
                                              settings.v_sink, settings.s_local, stream);
}

DeviceSparseIndex build_block_sparse_index_gpu(const GpuQK& qk, int k_blocks, cudaStream_t stream) {
  check_qk(qk);
  if (k_blocks < 1) throw InputError(kIndexWhat, "block_sparse needs k_blocks >= 1");
  check_block_select_tokens(qk.n_tokens, qk.head_dim);
  const int n = qk.n_tokens, d = static_cast<int>(qk.head_dim);
  const int nb = static_cast<int>(num_row_blocks(n));
  auto pooled_q = device_alloc<float>(size_t(qk.n_heads) * nb * d, stream);     // [H, nb, d]
  auto pooled_k = device_alloc<float>(size_t(qk.n_kv_heads) * nb * d, stream);  // [Hkv, d, nb]
  launch_block_pool(qk, pooled_q.get(), pooled_k.get(), stream);
  const int cap = std::min(nb, std::max(k_blocks, 2));
  auto kept = device_alloc<int32_t>(size_t(qk.n_heads) * nb * cap, stream);  // [H, nb, cap]
  auto kept_count = device_alloc<int32_t>(size_t(qk.n_heads) * nb, stream);   // [H * nb]
  launch_block_select(qk, pooled_q.get(), pooled_k.get(), HeadValue{nullptr, k_blocks}, cap, kept.get(),
                      kept_count.get(), stream);
  SlotRule rule;
  rule.n = n;
  rule.nb = nb;
  rule.pattern = HeadValue{nullptr, static_cast<int>(Pattern::block_sparse)};
  rule.kept = kept.get();
  rule.kept_count = kept_count.get();
  rule.cap = cap;
  return build_from_slots(rule, n, qk.n_heads, head_bounds({Pattern::block_sparse, k_blocks, 0}, n, {}), stream);
}

}  // namespace hc::kernels

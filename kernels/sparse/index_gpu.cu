// GPU index builders (kernels/sparse/index_gpu.h). The static patterns (dense, a_shape) are
// written in closed form by one kernel; the estimated ones run a per-slot rule twice over all
// (head, row block) slots: once counting ranges and columns, once writing them at the offsets an
// exclusive scan of the counts gives (the CSR layout of sparse_index.h).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cooperative_groups.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/attention/flash_forward.cuh"
#include "kernels/attention/hopper_forward.cuh"  // wgmma, descriptors, panel layout
#include "kernels/sparse/block_scan.cuh"
#include "kernels/sparse/device_pool.h"
#include "kernels/sparse/index_gpu.h"

namespace hc::kernels {

struct DeviceIndexAccess {
  static DeviceSparseIndex& self(DeviceSparseIndex& x) { return x; }
  static int64_t& n_heads(DeviceSparseIndex& x) { return x.n_heads_; }
  static int64_t& n_tokens(DeviceSparseIndex& x) { return x.n_tokens_; }
  static int64_t& total_ranges(DeviceSparseIndex& x) { return x.total_ranges_; }
  static int64_t& total_cols(DeviceSparseIndex& x) { return x.total_cols_; }
  static int64_t& col_capacity(DeviceSparseIndex& x) { return x.col_capacity_; }
  static bool& row_blocks_share_tiles(DeviceSparseIndex& x) { return x.row_blocks_share_tiles_; }
  static std::shared_ptr<int32_t>& range_offsets(DeviceSparseIndex& x) { return x.range_offsets_; }
  static std::shared_ptr<int32_t>& range_begin(DeviceSparseIndex& x) { return x.range_begin_; }
  static std::shared_ptr<int32_t>& range_end(DeviceSparseIndex& x) { return x.range_end_; }
  static std::shared_ptr<int32_t>& col_offsets(DeviceSparseIndex& x) { return x.col_offsets_; }
  static std::shared_ptr<int32_t>& cols(DeviceSparseIndex& x) { return x.cols_; }
  static std::shared_ptr<int32_t>& band_sink(DeviceSparseIndex& x) { return x.band_sink_; }
  static std::shared_ptr<int32_t>& band_local(DeviceSparseIndex& x) { return x.band_local_; }
};

namespace {

using detail::block_exclusive_scan;
using detail::device_alloc;
using detail::warp_inclusive_sum;

constexpr const char* kWhat = "sparse index (GPU)";

__host__ __device__ __forceinline__ int last_row(int rb, int n) {
  return rb * kBlock + kBlock - 1 < n - 1 ? rb * kBlock + kBlock - 1 : n - 1;
}

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
    throw InputError(kWhat, "the index has more than 2^31 - 1 ranges (int32 offsets)");
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

// Offset o <= r1 covers [max(0, r1 - o - 63), r1 - o + 1); columns c <= r1 outside the merged
// ranges are gathered. Larger offsets give smaller begins.
// Two offsets' ranges merge exactly when the offsets differ by <= 64, so the merged ranges of any
// slot are the head's runs of offsets (consecutive gaps <= 64), the last one cut at r1: a slot
// walks runs, not offsets (1000/6096 at 8K tokens took 6.9 ms walking offsets one by one). Runs
// never touch one another (a gap of more than 64 offsets leaves at least one key between their
// ranges), so a slot has exactly one range per usable run.
struct VerticalSlashSlot {
  int n, nb;
  const int32_t* columns;  // [H, n_columns] ascending
  int n_columns;
  const int32_t* offsets;  // [H, n_offsets] ascending
  int n_offsets;
  const int32_t* run_start;  // [H, n_offsets]: index in offsets of each run's first offset
  const int32_t* n_runs;     // [H]

  // The usable offsets (<= r1) of a slot's head: off[0 .. usable).
  __device__ int usable_offsets(const int32_t* off, int r1) const {
    return detail::count_at_most(off, n_offsets, r1);
  }

  // Keys [x, y) of run k of a slot whose first n_run runs start below `usable` (runs ascend by
  // offset, so run 0 has the highest keys): offsets off[runs[k]] .. off[last] covering
  // [max(0, r1 - off[last] - 63), r1 - off[runs[k]] + 1).
  __device__ int2 run_keys(const int32_t* off, const int32_t* runs, int n_run, int usable, int r1, int k) const {
    const int last = k + 1 < n_run ? runs[k + 1] - 1 : usable - 1;
    return make_int2(max(0, r1 - off[last] - (kBlock - 1)), r1 - off[runs[k]] + 1);
  }
};

// Vertical-slash slots, one warp each. Range p of the slot (ascending keys) is run n_run - 1 - p,
// written by lane p % 32 (lane 0 walking the runs one after another: 51 + 65 us for the two passes
// at 32K tokens, H = 32, vertical_slash(30,800), 25 + 34 us like this; ncu on H100). The kept columns are those in the gaps
// between the runs' ranges, so the lanes find each gap's columns by two binary searches and
// copy them contiguously (a thread per slot walking up to thousands of columns took 3.1 ms of a
// 7 ms build at 128K tokens, H = 32, v = 3500; testing every column against the offsets, one warp
// per slot, 0.27 ms per pass, and 0.15 ms per pass at 32K tokens, H = 9; ncu on H100).
__global__ void vs_slot_pass_kernel(VerticalSlashSlot rule, int n_slots, int32_t* range_counts, int32_t* col_counts,
                                    const int32_t* range_offsets, const int32_t* col_offsets,
                                    int32_t* range_begin, int32_t* range_end, int32_t* cols, bool fill) {
  const int slot = static_cast<int>((static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5);
  const int lane = threadIdx.x & 31;
  if (slot >= n_slots) return;  // whole warps leave together
  const int h = slot / rule.nb, r1 = last_row(slot % rule.nb, rule.n);
  const int32_t* off = rule.offsets + static_cast<int64_t>(h) * rule.n_offsets;
  const int32_t* col = rule.columns + static_cast<int64_t>(h) * rule.n_columns;
  const int32_t* runs = rule.run_start + static_cast<int64_t>(h) * rule.n_offsets;
  const int usable = rule.usable_offsets(off, r1);
  const int n_run = usable > 0 ? detail::count_at_most(runs, rule.n_runs[h], usable - 1) : 0;
  if (fill) {
    const int at = range_offsets[slot];
    for (int p = lane; p < n_run; p += 32) {
      const int2 keys = rule.run_keys(off, runs, n_run, usable, r1, n_run - 1 - p);
      range_begin[at + p] = keys.x;
      range_end[at + p] = keys.y;
    }
  } else if (lane == 0) {
    range_counts[slot] = n_run;
  }
  const int n_usable = detail::count_at_most(col, rule.n_columns, r1);  // columns <= r1
  // Gaps in ascending key order: gap 0 below the lowest range, gap g between the ranges of runs
  // n_run - g and n_run - g - 1, gap n_run above the highest. Gap g's columns are
  // col[first .. first + count).
  auto gap_columns = [&](int g, int& first, int& count) {
    const int a = g == 0 ? 0 : rule.run_keys(off, runs, n_run, usable, r1, n_run - g).y;
    const int b = g == n_run ? r1 + 1 : rule.run_keys(off, runs, n_run, usable, r1, n_run - 1 - g).x;
    first = detail::count_at_most(col, n_usable, a - 1);
    count = a < b ? detail::count_at_most(col, n_usable, b - 1) - first : 0;
  };
  int written = 0;
  for (int base = 0; base <= n_run; base += 32) {
    const int g = base + lane;
    int first = 0, count = 0;
    if (g <= n_run) gap_columns(g, first, count);
    const int before = warp_inclusive_sum(count) - count;
    if (fill) {
      int32_t* out = cols + col_offsets[slot] + written;
      for (int j = 0; j < 32 && base + j <= n_run; ++j) {  // the chunk's gaps in key order
        const int gf = __shfl_sync(0xffffffffu, first, j);
        const int gc = __shfl_sync(0xffffffffu, count, j);
        const int gb = __shfl_sync(0xffffffffu, before, j);
#pragma unroll 4
        for (int x = lane; x < gc; x += 32) out[gb + x] = col[gf + x];
      }
    }
    written += __shfl_sync(0xffffffffu, before + count, 31);
  }
  if (!fill && lane == 0) col_counts[slot] = written;
}

// Kept key block c covers [64c, min(64c + 64, r1 + 1)); adjacent kept blocks merge.
struct BlockSparseSlot {
  int n, nb;
  const int32_t* kept;        // [H, nb, cap] ascending per slot
  const int32_t* kept_count;  // [H * nb]
  int cap;
};

// Block-sparse slots, one warp each: a kept block starts a range unless its predecessor is kept,
// ends one unless its successor is; the i-th start and the i-th end make range i, placed by
// ballots (a thread per slot walking its kept blocks took 22-26 us per pass at 8K tokens, H = 9,
// and 28 us at 32K, H = 32; ncu on H100). No gathered columns.
__global__ void block_sparse_slot_pass_kernel(BlockSparseSlot rule, int n_slots, int32_t* range_counts,
                                              int32_t* col_counts, const int32_t* range_offsets,
                                              int32_t* range_begin, int32_t* range_end, bool fill) {
  const int slot = static_cast<int>((static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5);
  const int lane = threadIdx.x & 31;
  if (slot >= n_slots) return;  // whole warps leave together
  const int r1 = last_row(slot % rule.nb, rule.n);
  const int32_t* k = rule.kept + static_cast<int64_t>(slot) * rule.cap;
  const int m = rule.kept_count[slot];
  const int at = fill ? range_offsets[slot] : 0;
  const unsigned below = (1u << lane) - 1u;
  int starts = 0, ends = 0;
  for (int base = 0; base < m; base += 32) {
    const int x = base + lane;
    const bool valid = x < m;
    const int c = valid ? k[x] : 0;
    const bool start = valid && (x == 0 || k[x - 1] != c - 1);
    const bool end = valid && (x == m - 1 || k[x + 1] != c + 1);
    const unsigned start_mask = __ballot_sync(0xffffffffu, start);
    const unsigned end_mask = __ballot_sync(0xffffffffu, end);
    if (fill && start) range_begin[at + starts + __popc(start_mask & below)] = c * kBlock;
    if (fill && end) range_end[at + ends + __popc(end_mask & below)] = min(c * kBlock + kBlock, r1 + 1);
    starts += __popc(start_mask);
    ends += __popc(end_mask);
  }
  if (!fill && lane == 0) {
    range_counts[slot] = starts;
    col_counts[slot] = 0;
  }
}

// offsets[0..n] = exclusive scan of counts[0..n-1], for the range counts (CTA 0) and the column
// counts (CTA 1, when given) in one launch; n up to a few million. Rounds of kScanRound counts
// staged through shared memory with coalesced loads and stores, each thread summing kScanItems
// consecutive ones (a round of 1024 counts with three barriers took 19 us per scan at 16K slots,
// two scans per build; ncu on H100). The sum is taken in 64 bits: a total past 2^31 - 1 (an
// index too large for int32 offsets) is reported as offsets[n] = -1.
constexpr int kScanThreads = 1024, kScanItems = 8, kScanRound = kScanThreads * kScanItems;
__global__ void __launch_bounds__(kScanThreads) scan_counts_kernel(const int32_t* __restrict__ counts0,
                                                                   int32_t* __restrict__ offsets0,
                                                                   const int32_t* __restrict__ counts1,
                                                                   int32_t* __restrict__ offsets1, int n) {
  __shared__ int32_t s_round[kScanRound];
  __shared__ long long s_warp[33];
  const int32_t* counts = blockIdx.x == 0 ? counts0 : counts1;
  int32_t* offsets = blockIdx.x == 0 ? offsets0 : offsets1;
  if (counts == nullptr) return;
  const int tid = threadIdx.x;
  long long carry = 0;  // sum of the rounds before
  for (int base = 0; base < n; base += kScanRound) {
#pragma unroll
    for (int i = 0; i < kScanItems; ++i) {
      const int x = base + i * kScanThreads + tid;
      s_round[i * kScanThreads + tid] = x < n ? counts[x] : 0;
    }
    __syncthreads();
    int v[kScanItems];
    long long sum = 0;
#pragma unroll
    for (int i = 0; i < kScanItems; ++i) {
      v[i] = s_round[tid * kScanItems + i];
      sum += v[i];
    }
    long long round_total = 0;
    long long at = carry + block_exclusive_scan<kScanThreads, long long>(sum, s_warp, &round_total);
#pragma unroll
    for (int i = 0; i < kScanItems; ++i) {
      s_round[tid * kScanItems + i] = at <= 0x7fffffffLL ? static_cast<int32_t>(at) : -1;
      at += v[i];
    }
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kScanItems; ++i) {
      const int x = base + i * kScanThreads + tid;
      if (x < n) offsets[x] = s_round[i * kScanThreads + tid];
    }
    carry += round_total;
    __syncthreads();  // the round's values are read before the next round overwrites them
  }
  if (tid == 0) offsets[n] = carry <= 0x7fffffffLL ? static_cast<int32_t>(carry) : -1;
}

// One pass over the slots (a warp each): counts (fill = false) or writes (fill = true).
void launch_slot_pass(const BlockSparseSlot& rule, int n_slots, int32_t* range_counts, int32_t* col_counts,
                      const int32_t* range_offsets, const int32_t* /*col_offsets*/, int32_t* range_begin,
                      int32_t* range_end, int32_t* /*cols*/, bool fill, cudaStream_t stream) {
  const int threads = 256;  // 8 slots per block
  const int blocks = static_cast<int>((static_cast<int64_t>(n_slots) * 32 + threads - 1) / threads);
  block_sparse_slot_pass_kernel<<<blocks, threads, 0, stream>>>(rule, n_slots, range_counts, col_counts,
                                                                range_offsets, range_begin, range_end, fill);
  HC_CHECK_LAUNCH();
}
void launch_slot_pass(const VerticalSlashSlot& rule, int n_slots, int32_t* range_counts, int32_t* col_counts,
                      const int32_t* range_offsets, const int32_t* col_offsets, int32_t* range_begin,
                      int32_t* range_end, int32_t* cols, bool fill, cudaStream_t stream) {
  const int threads = 256;  // 8 slots per block
  const int blocks = static_cast<int>((static_cast<int64_t>(n_slots) * 32 + threads - 1) / threads);
  vs_slot_pass_kernel<<<blocks, threads, 0, stream>>>(rule, n_slots, range_counts, col_counts, range_offsets,
                                                      col_offsets, range_begin, range_end, cols, fill);
  HC_CHECK_LAUNCH();
}

// The two halves every slot-by-slot build shares (the estimated patterns' builds and
// stack_heads_gpu): out's offsets, scanned from per-slot counts, then its entry arrays.
// counts [2][n_slots] (ranges, then columns) and out's range and column offsets ([n_slots + 1]
// each, one allocation); the counts are the caller's to fill before scan_offsets.
std::shared_ptr<int32_t> allocate_offsets(DeviceSparseIndex& out, int64_t n_slots, cudaStream_t stream) {
  auto counts = device_alloc<int32_t>(2 * n_slots, stream, true);
  auto offsets = device_alloc<int32_t>(2 * (n_slots + 1), stream);
  DeviceIndexAccess::range_offsets(out) = std::shared_ptr<int32_t>(offsets, offsets.get());
  DeviceIndexAccess::col_offsets(out) = std::shared_ptr<int32_t>(offsets, offsets.get() + n_slots + 1);
  return counts;
}
// Both exclusive scans of the counts into out's offsets, in one launch.
void scan_offsets(const int32_t* counts, DeviceSparseIndex& out, int64_t n_slots, cudaStream_t stream) {
  scan_counts_kernel<<<2, kScanThreads, 0, stream>>>(counts, DeviceIndexAccess::range_offsets(out).get(),
                                                     counts + n_slots, DeviceIndexAccess::col_offsets(out).get(),
                                                     static_cast<int>(n_slots));
  HC_CHECK_LAUNCH();
}
// offsets[n_slots] of each of the `count` offset arrays, on the host: a copy each and one stream
// synchronisation. A scan's -1 (a total past 2^31 - 1) is an error.
void read_totals(const int32_t* const* offsets, int count, int64_t n_slots, int64_t* totals, cudaStream_t stream) {
  int32_t last[2] = {0, 0};
  for (int i = 0; i < count; ++i)
    HC_CHECK_CUDA(cudaMemcpyAsync(&last[i], offsets[i] + n_slots, sizeof(int32_t), cudaMemcpyDeviceToHost, stream));
  HC_CHECK_CUDA(cudaStreamSynchronize(stream));
  for (int i = 0; i < count; ++i) {
    if (last[i] < 0) throw InputError(kWhat, "the index has more than 2^31 - 1 ranges or columns (int32 offsets)");
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
// out's range_begin, range_end [range_room] and cols [col_room], one allocation with `extra` ints
// after them, which the returned pointer shares (null for none).
std::shared_ptr<int32_t> allocate_entries(DeviceSparseIndex& out, int64_t range_room, int64_t col_room, int64_t extra,
                                          cudaStream_t stream) {
  using A = DeviceIndexAccess;
  auto entries = device_alloc<int32_t>(2 * range_room + col_room + extra, stream);
  A::range_begin(out) = std::shared_ptr<int32_t>(entries, entries.get());
  A::range_end(out) = std::shared_ptr<int32_t>(entries, entries.get() + range_room);
  A::cols(out) = std::shared_ptr<int32_t>(entries, entries.get() + 2 * range_room);
  A::col_capacity(out) = col_room;
  return extra > 0 ? std::shared_ptr<int32_t>(entries, entries.get() + 2 * range_room + col_room) : nullptr;
}

// Bounds on one head's ranges and columns over all its slots, from the rule's parameters alone.
struct HeadBounds {
  int64_t ranges = 0, cols = 0;
};
// A vertical-slash slot's ranges never touch and are kBlock keys or wider, but for one cut at key
// 0, all below r1 + 1 <= kBlock (rb + 1): at most rb + 2 of them, and at most one per offset. Its
// columns are distinct keys up to r1, at most one per kept column.
HeadBounds head_bounds(const VerticalSlashSlot& rule) {
  HeadBounds b;
  for (int64_t rb = 0; rb < rule.nb; ++rb) {
    b.ranges += std::min<int64_t>(rule.n_offsets, rb + 2);
    b.cols += std::min<int64_t>(rule.n_columns, std::min<int64_t>((rb + 1) * kBlock, rule.n));
  }
  return b;
}
// A block-sparse slot: at most one range per kept block, of which there are at most rb + 1.
HeadBounds head_bounds(const BlockSparseSlot& rule) {
  HeadBounds b;
  for (int64_t rb = 0; rb < rule.nb; ++rb) b.ranges += std::min<int64_t>(rule.cap, rb + 1);
  return b;
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
template <class Slot>
DeviceSparseIndex build_from_slots(const Slot& rule, int64_t n_tokens, int64_t n_heads,
                                   cudaStream_t stream) {
  const int64_t nb = num_row_blocks(n_tokens);
  const int64_t n_slots = n_heads * nb;
  if (n_slots > std::numeric_limits<int32_t>::max() / 2)
    throw InputError(kWhat, "too many (head, row block) slots");
  DeviceSparseIndex out;
  using A = DeviceIndexAccess;
  A::n_heads(out) = n_heads;
  A::n_tokens(out) = n_tokens;
  const auto counts = allocate_offsets(out, n_slots, stream);
  launch_slot_pass(rule, static_cast<int>(n_slots), counts.get(), counts.get() + n_slots, nullptr, nullptr, nullptr,
                   nullptr, nullptr, false, stream);
  scan_offsets(counts.get(), out, n_slots, stream);
  const HeadBounds bounds = head_bounds(rule);
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
  allocate_entries(out, range_room, col_room, 0, stream);
  launch_slot_pass(rule, static_cast<int>(n_slots), nullptr, nullptr, A::range_offsets(out).get(),
                   A::col_offsets(out).get(), A::range_begin(out).get(), A::range_end(out).get(), A::cols(out).get(),
                   true, stream);
  return out;
}

void check_tokens_heads(int64_t n_tokens, int64_t n_heads) {
  if (n_tokens < 1 || n_tokens > std::numeric_limits<int32_t>::max() / 2)
    throw InputError(kWhat, "n_tokens must be in [1, 2^30], got " + std::to_string(n_tokens));
  if (n_heads < 1) throw InputError(kWhat, "n_heads must be >= 1, got " + std::to_string(n_heads));
}

void check_qk(const GpuQK& qk) {
  check_tokens_heads(qk.n_tokens, qk.n_heads);
  if (qk.q == nullptr || qk.k == nullptr) throw InputError(kWhat, "estimator needs device q and k");
  if (qk.n_kv_heads < 1 || qk.n_heads % qk.n_kv_heads != 0)
    throw InputError(kWhat, "n_heads must be a positive multiple of n_kv_heads");
  if (qk.head_dim != 64 && qk.head_dim != 128)
    throw InputError(kWhat, "head_dim " + std::to_string(qk.head_dim) + " is unsupported (64 or 128)");
  if (qk.q_row_stride < 0 || qk.q_row_stride % 8 || qk.k_row_stride < 0 || qk.k_row_stride % 8)
    throw InputError(kWhat, "row strides must be non-negative multiples of 8 elements");
}

// ---- top-k selection (forced entries first, then score desc, ties toward the lower index) ----

// Order-preserving map of a float to uint32 (larger float, larger key); NaN ranks as -inf, as
// on the CPU. Forced entries get 0xffffffff, above every float.
__device__ __forceinline__ uint32_t order_key(float f) {
  if (f != f) f = -__builtin_huge_valf();
  const uint32_t b = __float_as_uint(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

// Adds the active lanes' bins to a shared histogram, one atomic per distinct bin of the warp
// (called by whole warps). The candidates of a radix pass mostly share their leading bits, and a
// per-lane atomicAdd on one bin serialised 1024 threads: the vertical-slash selection took
// 237 us at 128K tokens, H = 32, 184 us with this (ncu on H100).
__device__ __forceinline__ void histogram_add(int* hist, uint32_t bin, bool active) {
  const unsigned lanes = __ballot_sync(0xffffffffu, active);
  if (!active) return;
  const unsigned same = __match_any_sync(lanes, bin);
  if ((threadIdx.x & 31) == __ffs(same) - 1) atomicAdd(&hist[bin], __popc(same));
}

// The digit of a 256-bin histogram (counts of the candidates' current 8 bits) that holds the
// remaining-th largest candidate: s_sel[0] = digit, s_sel[1] = its rank within the digit. Run by
// warp 0: lane l sums digits 255 - 8l .. 248 - 8l, a warp scan finds the lane where the count
// from the top reaches `remaining`, and that lane walks its 8 digits (one thread walking 256
// digits four times per selection dominated the block-sparse builder: 4.3 ms at 128K tokens,
// H = 32).
__device__ void find_digit(const int* hist, int remaining, int* s_sel) {
  const int lane = threadIdx.x & 31;
  int sum = 0;
#pragma unroll
  for (int j = 0; j < 8; ++j) sum += hist[255 - 8 * lane - j];
  const int inc = warp_inclusive_sum(sum);
  const unsigned reach = __ballot_sync(0xffffffffu, inc >= remaining);
  if (lane == __ffs(reach) - 1) {
    int cum = inc - sum;
    for (int j = 0; j < 8; ++j) {
      const int dgt = 255 - 8 * lane - j;
      if (cum + hist[dgt] >= remaining) {
        s_sel[0] = dgt;
        s_sel[1] = remaining - cum;
        break;
      }
      cum += hist[dgt];
    }
  }
}

// Writes the selected indices of [lo, hi) (this thread's contiguous part): keys above threshold,
// and keys equal to it while fewer than `remaining` equal ones come before. gt_before / eq_before:
// the counts of such keys before lo. out is in index order.
template <class KeyOf>
__device__ void write_selected(int lo, int hi, KeyOf key_of, uint32_t threshold, int remaining, int gt_before,
                               int eq_before, int32_t* out) {
  int pos = gt_before + min(eq_before, remaining);
  for (int x = lo; x < hi; ++x) {
    const uint32_t key = key_of(x);
    if (key > threshold || (key == threshold && eq_before++ < remaining)) out[pos++] = x;
  }
}

// Radix select, 8 bits at a time from the top, over this CTA's keys key_of(c_lo .. c_hi - 1):
// returns the value of the k-th largest key of the whole selection (threshold) and sets
// `remaining` to how many keys equal to it are kept. combined_histogram() is called once the
// CTA's histogram s_hist is complete and returns the histogram of the whole selection (s_hist
// itself for one CTA; the sum over a cluster for select_per_head_kernel).
template <int kThreads, class KeyOf, class Combine>
__device__ uint32_t radix_threshold(int c_lo, int c_hi, int k, KeyOf key_of, int* s_hist, int* s_sel,
                                    Combine combined_histogram, int& remaining) {
  const int tid = threadIdx.x;
  uint32_t prefix = 0, mask = 0;
  remaining = k;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = tid; i < 256; i += kThreads) s_hist[i] = 0;
    __syncthreads();
    for (int base = c_lo + (tid & ~31); base < c_hi; base += kThreads) {  // warp-uniform trips
      const int x = base + (tid & 31);
      const uint32_t key = x < c_hi ? key_of(x) : 0u;
      histogram_add(s_hist, (key >> shift) & 255u, x < c_hi && (key & mask) == prefix);
    }
    const int* hist = combined_histogram();
    if (tid < 32) find_digit(hist, remaining, s_sel);
    __syncthreads();
    prefix |= static_cast<uint32_t>(s_sel[0]) << shift;
    mask |= 255u << shift;
    remaining = s_sel[1];
    __syncthreads();
  }
  return prefix;
}

// Each thread's contiguous part [lo, hi) of this CTA's keys c_lo .. c_hi - 1, and how many keys
// above / equal to the threshold come before it in the CTA (gt_before, eq_before) and in all
// (gt_total, eq_total).
struct ThresholdCounts {
  int lo, hi, gt_before, eq_before, gt_total, eq_total;
};
template <int kThreads, class KeyOf>
__device__ ThresholdCounts count_against_threshold(int c_lo, int c_hi, KeyOf key_of, uint32_t threshold,
                                                   int* s_warp) {
  ThresholdCounts t;
  const int chunk = (c_hi - c_lo + kThreads - 1) / kThreads;
  t.lo = min(c_hi, c_lo + static_cast<int>(threadIdx.x) * chunk);
  t.hi = min(c_hi, t.lo + chunk);
  int n_gt = 0, n_eq = 0;
  for (int x = t.lo; x < t.hi; ++x) {
    const uint32_t key = key_of(x);
    n_gt += key > threshold;
    n_eq += key == threshold;
  }
  t.gt_total = t.eq_total = 0;
  t.gt_before = block_exclusive_scan<kThreads>(n_gt, s_warp, &t.gt_total);
  t.eq_before = block_exclusive_scan<kThreads>(n_eq, s_warp, &t.eq_total);
  return t;
}

// Top-k selection over one head's scores by a cluster of CTAs (launch attribute), each owning a
// contiguous part of the entries: the histograms of a radix pass are added across the cluster
// through distributed shared memory, and the final counts give each CTA its place in the output.
// One 1024-thread CTA per head took 77 us per selection at 32K tokens and 330 us at 128K (H = 9,
// ncu on H100), with 9 of 132 SMs busy. The cluster is as large as fills the SMs once (both
// selections of every head), at most kSelectCluster: at 8K tokens clusters of 8 took 25 us for
// H = 9 (one CTA per head: 38 us) but left 512 CTAs in four waves for H = 32, where one CTA per
// head made the whole build 0.23 -> 0.17 ms, and this rule (clusters of 2) 0.16-0.19 ms (H100).
constexpr int kSelectCluster = 8;
struct SelectJob {
  const float* score;  // [H, n]
  int n_forced;        // entries < n_forced are forced
  int k_eff;           // entries to keep per head (0: no job)
  int32_t* out;        // [H, k_eff]
};
__global__ void __launch_bounds__(1024) select_per_head_kernel(SelectJob first, SelectJob second, int n) {
  constexpr int kThreads = 1024;
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  __shared__ int s_hist[256], s_total[256];
  __shared__ int s_sel[2];
  __shared__ int s_warp[33];
  __shared__ int s_cta_counts[2];  // this CTA's entries above / equal to the threshold
  const SelectJob job = blockIdx.y == 0 ? first : second;
  if (job.k_eff == 0) return;  // the whole cluster (same blockIdx.y)
  const int cluster_size = static_cast<int>(cluster.num_blocks());
  const int head = blockIdx.x / cluster_size;
  const int rank = static_cast<int>(cluster.block_rank());
  const int tid = threadIdx.x;
  const float* s = job.score + static_cast<int64_t>(head) * n;
  int32_t* out = job.out + static_cast<int64_t>(head) * job.k_eff;
  auto key_of = [&](int x) { return x < job.n_forced ? 0xffffffffu : order_key(s[x]); };
  const int part = (n + cluster_size - 1) / cluster_size;
  const int c_lo = min(n, rank * part), c_hi = min(n, c_lo + part);
  if (job.k_eff >= n) {
    for (int x = c_lo + tid; x < c_hi; x += kThreads) out[x] = x;
    return;
  }
  int remaining = 0;  // keys equal to the threshold that are kept
  const uint32_t threshold = radix_threshold<kThreads>(c_lo, c_hi, job.k_eff, key_of, s_hist, s_sel, [&]() {
    cluster.sync();  // every CTA's histogram is complete
    for (int i = tid; i < 256; i += kThreads) {
      int sum = 0;
      for (int r = 0; r < cluster_size; ++r) sum += cluster.map_shared_rank(s_hist, r)[i];
      s_total[i] = sum;
    }
    cluster.sync();  // every CTA has read the histograms (they are zeroed next pass)
    return static_cast<const int*>(s_total);
  }, remaining);
  const ThresholdCounts c = count_against_threshold<kThreads>(c_lo, c_hi, key_of, threshold, s_warp);
  if (tid == 0) {
    s_cta_counts[0] = c.gt_total;
    s_cta_counts[1] = c.eq_total;
  }
  cluster.sync();  // every CTA's counts are there
  int cta_gt = 0, cta_eq = 0;
  for (int r = 0; r < rank; ++r) {
    const int* counts = cluster.map_shared_rank(s_cta_counts, r);
    cta_gt += counts[0];
    cta_eq += counts[1];
  }
  cluster.sync();  // no CTA leaves while another still reads its counts
  write_selected(c.lo, c.hi, key_of, threshold, remaining, cta_gt + c.gt_before, cta_eq + c.eq_before, out);
}

// The same selection for up to kRegisterSelectMax entries per head: one 1024-thread CTA per head
// and job, each thread holding its contiguous part of the keys in registers, so a radix pass is
// a histogram of registers and three barriers (the cluster kernel reads its keys from global
// memory in every pass and adds the CTAs' histograms through two cluster barriers: 23.6 us at
// 8K tokens for H = 9 and 24 for H = 32, about a quarter of the vertical-slash build; this one
// 18.3 and 19.0 us; ncu on H100).
constexpr int kRegisterSelectKeys = 16;  // keys per thread
constexpr int kRegisterSelectMax = 1024 * kRegisterSelectKeys;
__global__ void __launch_bounds__(1024) select_per_head_registers_kernel(SelectJob first, SelectJob second, int n) {
  constexpr int kThreads = 1024;
  __shared__ int s_hist[256];
  __shared__ int s_sel[2];
  __shared__ int s_warp[33];
  const SelectJob job = blockIdx.y == 0 ? first : second;
  if (job.k_eff == 0) return;
  const int head = blockIdx.x, tid = threadIdx.x;
  const float* s = job.score + static_cast<int64_t>(head) * n;
  int32_t* out = job.out + static_cast<int64_t>(head) * job.k_eff;
  if (job.k_eff >= n) {
    for (int x = tid; x < n; x += kThreads) out[x] = x;
    return;
  }
  const int chunk = (n + kThreads - 1) / kThreads;  // <= kRegisterSelectKeys, the same for every thread
  const int lo = min(n, tid * chunk), count = min(n, lo + chunk) - lo;
  uint32_t key[kRegisterSelectKeys];
#pragma unroll
  for (int i = 0; i < kRegisterSelectKeys; ++i) {
    const int x = lo + i;
    key[i] = i < count ? (x < job.n_forced ? 0xffffffffu : order_key(s[x])) : 0u;
  }
  uint32_t prefix = 0, mask = 0;
  int remaining = job.k_eff;
  for (int shift = 24; shift >= 0; shift -= 8) {
    if (tid < 256) s_hist[tid] = 0;
    __syncthreads();
#pragma unroll
    for (int i = 0; i < kRegisterSelectKeys; ++i)
      if (i < chunk)  // uniform: histogram_add is called by whole warps
        histogram_add(s_hist, (key[i] >> shift) & 255u, i < count && (key[i] & mask) == prefix);
    __syncthreads();
    if (tid < 32) find_digit(s_hist, remaining, s_sel);
    __syncthreads();
    prefix |= static_cast<uint32_t>(s_sel[0]) << shift;
    mask |= 255u << shift;
    remaining = s_sel[1];
    // s_sel is next written after two more barriers, s_hist next zeroed after every thread passed
    // the one above (find_digit is done with it).
  }
  int n_gt = 0, n_eq = 0;
#pragma unroll
  for (int i = 0; i < kRegisterSelectKeys; ++i) {
    n_gt += i < count && key[i] > prefix;
    n_eq += i < count && key[i] == prefix;
  }
  int gt_total = 0, eq_total = 0;
  const int gt_before = block_exclusive_scan<kThreads>(n_gt, s_warp, &gt_total);
  int eq_before = block_exclusive_scan<kThreads>(n_eq, s_warp, &eq_total);
  int pos = gt_before + min(eq_before, remaining);
#pragma unroll
  for (int i = 0; i < kRegisterSelectKeys; ++i)
    if (i < count && (key[i] > prefix || (key[i] == prefix && eq_before++ < remaining))) out[pos++] = lo + i;
}

// One block per head: run_start[h] = indices x of offsets[h] starting a run (x == 0 or
// offsets[x] - offsets[x-1] > 64), ascending; n_runs[h] their count.
__global__ void offset_runs_kernel(const int32_t* offsets, int n_offsets, int32_t* run_start, int32_t* n_runs) {
  constexpr int kThreads = 1024;
  __shared__ int s_warp[33];
  const int32_t* off = offsets + static_cast<int64_t>(blockIdx.x) * n_offsets;
  int32_t* out = run_start + static_cast<int64_t>(blockIdx.x) * n_offsets;
  const int chunk = (n_offsets + kThreads - 1) / kThreads;
  const int lo = min(n_offsets, static_cast<int>(threadIdx.x) * chunk), hi = min(n_offsets, lo + chunk);
  auto starts = [&](int x) { return x == 0 || off[x] - off[x - 1] > kBlock; };
  int count = 0;
  for (int x = lo; x < hi; ++x) count += starts(x);
  int total = 0;
  int pos = block_exclusive_scan<kThreads>(count, s_warp, &total);
  for (int x = lo; x < hi; ++x)
    if (starts(x)) out[pos++] = x;
  if (threadIdx.x == 0) n_runs[blockIdx.x] = total;
}


// ---- vertical-slash estimate ----

// The estimator works on tiles of 64 keys x the last L <= 64 queries, never storing the scores
// (an [H, 64, N] fp32 buffer was written once and read twice: 1 GB at 128K tokens, H = 32, and
// 2.35 ms of a 3.6 ms vertical-slash build on H100, ncu). Pass 1 gives each row's LSE from
// per-tile partials; pass 2 recomputes the tile and sums A = exp(S - LSE) per column (whole in
// the tile) and per diagonal (a diagonal crosses at most two tiles: per-tile partials, added in
// tile order). Every sum has a fixed order, so the index is reproducible.

// A CTA (one warpgroup) takes one head and a run of consecutive 64-key tiles: the head's last
// queries stay in shared memory, the key tiles stream through a ring of cp.async stages, so the
// next tiles load while this one is computed, and each tile's scores are one wgmma sequence.
// Against one CTA per (head, tile), loading the queries and its tile and then computing with
// nothing in flight (160 + 267 us for the two passes at 32K tokens, H = 32, d = 128), the ring
// alone measured 167 + 243 us; what made the passes faster then was leaving the masks out of the
// tiles that need none (below; the two builds at 32K, d = 128: 0.54-0.65 -> 0.40-0.47 ms with the
// selection changes). The wgmma scores (est_score_tile) took the passes from 88 + 149 to 74 + 129
// us at 32K and from 337 + 578 to 284 + 486 us at 128K (d = 128, ncu on H100, clocks unlocked;
// d = 64 unchanged). Grouping a KV group's heads in one CTA, each K tile loaded once for all of
// them, did not pay: 4 heads per CTA (mma.sync) gave 0.97-0.99x the builds at d = 128 and
// 1.05-1.09x at d = 64, where only 12 warps fit per SM.
// Ring stages: 3 at d = 64; 2 at d = 128, which leaves shared memory for three CTAs per SM in
// pass 2 instead of two (4 stages at both head dims: builds at 32K and 128K, d = 128, 6-12%
// slower, at 8K unchanged; H100 A/B).
template <int D>
constexpr int est_stages() {
  return D == 128 ? 2 : 3;
}
constexpr int kEstThreads = 128;
constexpr int kEstARow = 65;  // A tile [64][65] fp32: padded so that the diagonal reads avoid bank conflicts
// Pass 2's reductions: column partials per warp [4][64], diagonal partials per half [2][128].
constexpr int kEstReduceFloats = 4 * 64 + 2 * 128;

template <int D>
constexpr int est_smem_bytes(int pass) {  // +1024: the tiles' alignment (128-byte swizzle atoms)
  return (1 + est_stages<D>()) * 64 * D * 2 + (pass == 2 ? (64 * kEstARow + kEstReduceFloats) * 4 : 0) + 1024;
}

// 64 rows [64][D] (bf16/fp16) into a shared tile in the wgmma operand layout (64-column panels of
// [64][128 bytes], 128-byte swizzle: detail::panel_offset), rows >= valid_rows zero-filled.
template <typename T, int D>
__device__ __forceinline__ void est_load_rows(uint32_t dst, const T* src, int64_t stride, int valid_rows) {
  constexpr int kChunks = D / 8;
  for (int idx = threadIdx.x; idx < 64 * kChunks; idx += kEstThreads) {
    const int r = idx / kChunks, c = idx % kChunks;
    const bool ok = r < valid_rows;
    detail::cp_async_16(dst + detail::panel_offset<64>(r, c), src + (ok ? r : 0) * stride + c * 8, ok);
  }
}

// S tile s[nb][e] = q_{i_r} . k_j (unscaled) for r = 16 warp + g + 8 (e >> 1),
// j = j0 + 8 nb + 2 t4 + (e & 1), by the CTA's four warps as one warpgroup: m64n64k16 wgmmas with
// the queries and the key tile from shared memory (q_desc, k_desc: descriptor low words). Per
// warp mma.sync fragments read the whole key tile into every warp (ldmatrix) and made the passes
// bound by shared-memory traffic (L1 81% busy, a third of the warps' stalls on its queue in pass
// 2 at 128K tokens, d = 128; ncu on H100).
template <typename T, int D>
__device__ __forceinline__ void est_score_tile(uint32_t q_desc, uint32_t k_desc, float (&s)[8][4]) {
  using namespace detail;
  wgmma_fence();  // the first wgmma overwrites s (scale_d = 0), as the attention kernel's QK^T
#pragma unroll
  for (int kk = 0; kk < D / 16; ++kk) {
    const uint32_t off = (kk >> 2) * (64 * 128) + (kk & 3) * 32;  // panel, then 16 columns = 32 bytes
    Wgmma<T, 64>::ss(s, smem_desc_at(q_desc, off), smem_desc_at(k_desc, off), kk > 0 ? 1 : 0);
  }
  wgmma_commit();
  wgmma_wait<0>();
  fence_accumulators<8>(s);
}

// Pass 1 (kPass == 1): per (tile, row) the max and the sum of exp(S - max) over the row's keys
// j <= i_r in the tile: partial [H, 64, n_tiles, 2]. Pass 2: A = exp(S * scale - lse) on the tile;
// col_score[h][j] = sum_r A[r][j] for the tile's keys, and the tile's diagonal partials:
// diag_partial[h][tile][63 + r - jj] = sum over the tile's entries (r, j0 + jj) of A (127
// diagonals, offset o = first_row - j0 + r - jj). Grid (H, chunks): CTA (h, c) takes tiles
// [c * per_cta, (c + 1) * per_cta); the heads of a KV group read a K tile at about the same time.
template <typename T, int D, int kPass>
__global__ void __launch_bounds__(kEstThreads) vs_estimate_kernel(const T* q, const T* k, int64_t q_stride,
                                                                  int64_t k_stride, int n, int n_last, int group,
                                                                  float scale, int n_tiles, int per_cta,
                                                                  float* partial, const float* lse,
                                                                  float* col_score, float* diag_partial) {
  using namespace detail;
  constexpr int kTileBytes = 64 * D * 2;
  constexpr int kEstStages = est_stages<D>();
  extern __shared__ __align__(128) unsigned char est_smem_raw[];
  unsigned char* est_smem = align_smem_1024(est_smem_raw);
  const uint32_t sQ = smem_addr(est_smem);  // [64][D], then K stages [kEstStages][64][D], then A
  auto stage_addr = [&](int st) { return sQ + (1 + st) * kTileBytes; };
  const uint32_t q_desc = smem_desc_low(sQ, 16);
  float(*sA)[kEstARow] = reinterpret_cast<float(*)[kEstARow]>(est_smem + (1 + kEstStages) * kTileBytes);
  float(*s_col)[64] = reinterpret_cast<float(*)[64]>(&sA[64][0]);  // [4 warps][64 keys]
  float(*s_diag)[128] = reinterpret_cast<float(*)[128]>(&s_col[4][0]);  // [2 halves of the rows][128]
  const int head = blockIdx.x, kv_head = head / group;
  const int t_begin = blockIdx.y * per_cta, t_end = min(n_tiles, t_begin + per_cta);
  if (t_begin >= t_end) return;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31, g = lane >> 2, t4 = lane & 3;
  const int first_row = n - n_last;
  const T* k_head = k + kv_head * D;
  auto load_tile = [&](int t, int st) {
    est_load_rows<T, D>(stage_addr(st), k_head + static_cast<int64_t>(t) * 64 * k_stride, k_stride, n - t * 64);
  };
  est_load_rows<T, D>(sQ, q + static_cast<int64_t>(first_row) * q_stride + head * D, q_stride, n_last);
#pragma unroll
  for (int st = 0; st < kEstStages - 1; ++st) {
    if (t_begin + st < t_end) load_tile(t_begin + st, st);
    cp_async_commit();  // one group per stage, empty or not, so the waits below count uniformly
  }
  float l[2];
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    const int r = warp * 16 + g + 8 * h;
    l[h] = kPass == 2 && r < n_last ? lse[head * 64 + r] : 0.f;
  }
  for (int t = t_begin, i = 0; t < t_end; ++t, ++i) {
    cp_async_wait<kEstStages - 2>();  // tile t (and the queries) landed for this thread
    fence_proxy_async();              // cp.async writes, read by wgmma next
    __syncthreads();                  // ... for every thread; all are done with tile t - 1's stage
    if (t + kEstStages - 1 < t_end) load_tile(t + kEstStages - 1, (i + kEstStages - 1) % kEstStages);
    cp_async_commit();
    float s[8][4];
    est_score_tile<T, D>(q_desc, smem_desc_low(stage_addr(i % kEstStages), 16), s);
    const int j0 = t * 64;
    // Tiles wholly before the first query row, with all 64 query rows present, need no mask
    // (all but the last one or two of a head): ncu had the masks' index arithmetic and branches at
    // several times the tensor instructions (H100, 32K tokens, d = 128).
    const bool unmasked = n_last == 64 && j0 + 63 < first_row;
    auto keep = [&](int r, int j, auto masked) {
      if constexpr (decltype(masked)::value) return r < n_last && j <= first_row + r && j < n;
      else return true;
    };
    // exp(x * scale - m) as exp2(x * scale log2(e) - m log2(e)): one FFMA and the EX2 unit.
    const float scale_log2 = scale * 1.4426950408889634f;
    if constexpr (kPass == 1) {
      auto row_stats = [&](auto masked) {
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int r = warp * 16 + g + 8 * h;
          float mx = -__builtin_huge_valf();
#pragma unroll
          for (int nb = 0; nb < 8; ++nb)
#pragma unroll
            for (int e = 0; e < 2; ++e)
              if (keep(r, j0 + nb * 8 + 2 * t4 + e, masked)) mx = fmaxf(mx, s[nb][2 * h + e]);
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
          mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
          const float m_log2 = mx * scale_log2;
          float sum = 0.f;
#pragma unroll
          for (int nb = 0; nb < 8; ++nb)
#pragma unroll
            for (int e = 0; e < 2; ++e)
              if (keep(r, j0 + nb * 8 + 2 * t4 + e, masked)) sum += exp2f(fmaf(s[nb][2 * h + e], scale_log2, -m_log2));
          sum += __shfl_xor_sync(0xffffffffu, sum, 1);
          sum += __shfl_xor_sync(0xffffffffu, sum, 2);
          if (t4 == 0 && r < n_last) {
            float* out = partial + ((static_cast<int64_t>(head) * 64 + r) * n_tiles + t) * 2;
            out[0] = mx * scale;
            out[1] = sum;
          }
        }
      };
      if (unmasked) row_stats(std::false_type{});
      else row_stats(std::true_type{});
    } else {
      // A into shared memory for the diagonals; the columns' sums over this warp's 16 rows from
      // registers (over the two rows of a thread, then across g by shuffles).
      auto a_tile = [&](auto masked) {
        const float l_log2[2] = {l[0] * 1.4426950408889634f, l[1] * 1.4426950408889634f};
#pragma unroll
        for (int nb = 0; nb < 8; ++nb)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float col = 0.f;
#pragma unroll
            for (int h = 0; h < 2; ++h) {
              const int r = warp * 16 + g + 8 * h;
              const int jj = nb * 8 + 2 * t4 + e;
              const float x = keep(r, j0 + jj, masked) ? exp2f(fmaf(s[nb][2 * h + e], scale_log2, -l_log2[h])) : 0.f;
              sA[r][jj] = x;
              col += x;
            }
#pragma unroll
            for (int off = 4; off < 32; off <<= 1) col += __shfl_xor_sync(0xffffffffu, col, off);
            if (g == 0) s_col[warp][nb * 8 + 2 * t4 + e] = col;
          }
      };
      if (unmasked) a_tile(std::false_type{});
      else a_tile(std::true_type{});
      __syncthreads();  // A and the column partials complete (the next tile's first barrier guards their reuse)
      // Diagonal x = 63 + r - jj. Thread p < 64 of a half takes diagonals p (rows 0 .. p) and
      // p + 64 (rows p + 1 .. 63): one walk over the rows, each half of the CTA over half of them.
      // Four partial sums of each (rows r mod 4), added in a fixed order, instead of one chain of
      // 32 dependent adds per tile, where most of the pass's FADD samples were: pass 484-493 ->
      // 470-472 us at 128K tokens, d = 128 (ncu on H100).
      {
        const int p = tid & 63, half = tid >> 6;
        float dlo[4] = {0.f, 0.f, 0.f, 0.f}, dhi[4] = {0.f, 0.f, 0.f, 0.f};
#pragma unroll
        for (int i = 0; i < 32; ++i) {
          const int r = 32 * half + i;
          const float x = sA[r][(r - p + 63) & 63];  // (r - p - 1) mod 64: the same column for r > p
          if (r <= p) dlo[i & 3] += x;
          else dhi[i & 3] += x;
        }
        s_diag[half][p] = (dlo[0] + dlo[1]) + (dlo[2] + dlo[3]);
        s_diag[half][p + 64] = (dhi[0] + dhi[1]) + (dhi[2] + dhi[3]);
      }
      __syncthreads();
      if (tid < 64 && j0 + tid < n)
        col_score[static_cast<int64_t>(head) * n + j0 + tid] =
            ((s_col[0][tid] + s_col[1][tid]) + s_col[2][tid]) + s_col[3][tid];
      if (tid < 127) diag_partial[(static_cast<int64_t>(head) * n_tiles + t) * 128 + tid] = s_diag[0][tid] + s_diag[1][tid];
    }
  }
  cp_async_wait<0>();  // nothing in flight when the CTA leaves
}

// lse[h][r] = log sum_{j <= i_r} exp(S[h][r][j]), from the tiles' partials.
__global__ void vs_row_lse_kernel(const float* partial, int n_tiles, float* lse) {
  constexpr int kThreads = 256;
  __shared__ float s_red[kThreads / 32];
  const int head = blockIdx.y, r = blockIdx.x;
  const float* row = partial + (static_cast<int64_t>(head) * 64 + r) * n_tiles * 2;
  auto block_reduce = [&](float v, bool is_max) {
    for (int off = 16; off > 0; off >>= 1) {
      const float y = __shfl_xor_sync(0xffffffffu, v, off);
      v = is_max ? fmaxf(v, y) : v + y;
    }
    if ((threadIdx.x & 31) == 0) s_red[threadIdx.x >> 5] = v;
    __syncthreads();
    v = s_red[0];
    for (int w = 1; w < kThreads / 32; ++w) v = is_max ? fmaxf(v, s_red[w]) : v + s_red[w];
    __syncthreads();
    return v;
  };
  float mx = -__builtin_huge_valf();
  for (int t = threadIdx.x; t < n_tiles; t += kThreads) mx = fmaxf(mx, row[2 * t]);
  mx = block_reduce(mx, true);  // finite: key 0 is in every row
  float sum = 0.f;
  for (int t = threadIdx.x; t < n_tiles; t += kThreads)
    if (row[2 * t + 1] > 0.f) sum += row[2 * t + 1] * expf(row[2 * t] - mx);
  sum = block_reduce(sum, false);
  if (threadIdx.x == 0) lse[head * 64 + r] = mx + logf(sum);
}

// diag_score[h][o] = the sum of the (at most two) tiles' partials of diagonal o, in tile order.
__global__ void vs_diag_combine_kernel(const float* diag_partial, int n, int n_last, int n_tiles,
                                       float* diag_score) {
  const int head = blockIdx.y;
  const int o = blockIdx.x * blockDim.x + threadIdx.x;
  if (o >= n) return;
  const int first_row = n - n_last;
  // Tile t holds diagonal o at index 63 + o - first_row + 64 t when that is in [0, 127).
  float sum = 0.f;
  const int base = 63 + o - first_row;
  const int t_lo = max(0, (-base + 63) / 64);
  for (int t = t_lo; t < n_tiles; ++t) {
    const int x = base + 64 * t;
    if (x < 0) continue;
    if (x >= 127) break;
    sum += diag_partial[(static_cast<int64_t>(head) * n_tiles + t) * 128 + x];
  }
  diag_score[static_cast<int64_t>(head) * n + o] = sum;
}

// ---- block-sparse estimate ----

// The mean over the rows of block b of src[row][h][x] (fp32), grid (nb, heads), into
// pooled[h][b][x] or, key_major, pooled[h][x][b] (the selection reads keys across a warp).
template <typename T>
__global__ void pool_blocks_kernel(const T* src, int64_t row_stride, int n, int d, int heads, bool key_major,
                                   float* pooled) {
  const int b = blockIdx.x, h = blockIdx.y, x = threadIdx.x, nb = gridDim.x;
  if (x >= d) return;
  const int r0 = b * kBlock, r1 = min(r0 + kBlock, n);
  float acc = 0.f;
  for (int i = r0; i < r1; ++i) acc += static_cast<float>(src[i * row_stride + h * d + x]);
  const int64_t at = key_major ? (static_cast<int64_t>(h) * d + x) * nb + b : (static_cast<int64_t>(h) * nb + b) * d + x;
  pooled[at] = acc / static_cast<float>(r1 - r0);
}

// Top-k of one row's keys by one warp (radix select, 8 bits at a time): the indices of the k_eff
// largest keys key_of(0 .. len - 1), ties toward the lower index, ascending into out. s_hist is
// the warp's own 256 ints; s_sel its own 2.
template <class KeyOf>
__device__ void warp_select_top(int len, int k_eff, KeyOf key_of, int* s_hist, int* s_sel, int32_t* out) {
  const int lane = threadIdx.x & 31;
  if (k_eff >= len) {
    for (int x = lane; x < len; x += 32) out[x] = x;
    return;
  }
  uint32_t prefix = 0, mask = 0;
  int remaining = k_eff;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int i = lane; i < 256; i += 32) s_hist[i] = 0;
    __syncwarp();
    for (int x = lane; x < len; x += 32) {  // (one atomic per distinct bin, as in radix_threshold, was slower here)
      const uint32_t key = key_of(x);
      if ((key & mask) == prefix) atomicAdd(&s_hist[(key >> shift) & 255u], 1);
    }
    __syncwarp();
    find_digit(s_hist, remaining, s_sel);
    __syncwarp();
    prefix |= static_cast<uint32_t>(s_sel[0]) << shift;
    mask |= 255u << shift;
    remaining = s_sel[1];
    __syncwarp();
  }
  // Each lane's contiguous part, its counts above / equal to the threshold, their warp prefixes.
  const int chunk = (len + 31) / 32;
  const int lo = min(len, lane * chunk), hi = min(len, lo + chunk);
  int n_gt = 0, n_eq = 0;
  for (int x = lo; x < hi; ++x) {
    const uint32_t key = key_of(x);
    n_gt += key > prefix;
    n_eq += key == prefix;
  }
  const int gt_inc = warp_inclusive_sum(n_gt), eq_inc = warp_inclusive_sum(n_eq);
  write_selected(lo, hi, key_of, prefix, remaining, gt_inc - n_gt, eq_inc - n_eq, out);
}

// Block-sparse selection. A CTA takes kRows consecutive row blocks of one head (fewer in the
// last one), longest first: their block scores against every causal key block go to shared
// memory, each pooled key row read once for all of them, then each warp selects the top-k of its
// rows (key blocks 0 and R forced). One CTA per row block, reading the head's pooled K once per
// row block and selecting with the whole CTA, took 322 us at 32K tokens and most of a 4.4 ms
// build at 128K (H = 32, d = 128; ncu on H100). kept [H, nb, cap], kept_count [H * nb].
constexpr int kSelectMaxRows = 16;
constexpr int kSelectThreads = 256;
inline size_t block_select_smem(int nb, int d, int rows) {
  return (size_t(rows) * d + size_t(rows) * nb + (kSelectThreads / 32) * 258) * sizeof(float);
}
template <int D, int kRows>
__global__ void __launch_bounds__(kSelectThreads, 2) block_select_kernel(const float* pooled_q, const float* pooled_k,
                                                                      int nb, int group, float scale, int k_blocks,
                                                                      int cap, int32_t* kept, int32_t* kept_count) {
  extern __shared__ float smem[];
  float* s_q = smem;                                     // [kRows][D], rows past the last one zero
  float* s_score = s_q + kRows * D;                      // [kRows][nb]
  int* s_warp = reinterpret_cast<int*>(s_score + static_cast<size_t>(kRows) * nb);  // [warps][258]
  const int head = blockIdx.y, kv_head = head / group;
  const int R0 = (gridDim.x - 1 - blockIdx.x) * kRows;  // the longest rows go first
  const int rows = min(kRows, nb - R0);
  const int n_keys = R0 + rows;  // key blocks 0 .. R0 + rows - 1
  for (int i = threadIdx.x; i < kRows * D; i += kSelectThreads)
    s_q[i] = i < rows * D ? pooled_q[(static_cast<int64_t>(head) * nb + R0) * D + i] : 0.f;
  __syncthreads();
  // A thread per key block against every row's pooled query. The pooled keys are key-major
  // ([Hkv][d][nb]): a warp's load of one element of 32 consecutive keys is one 128-byte line
  // (stored [nb][d], each load touched 32 lines and ncu had the FMAs waiting on them).
  for (int c = threadIdx.x; c < n_keys; c += kSelectThreads) {
    const float* pk = pooled_k + static_cast<int64_t>(kv_head) * D * nb + c;  // element x at pk[x * nb]
    float acc[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) acc[r] = 0.f;
    // The key's elements kLoads at a time, all loads issued before their FMAs: four loads per
    // step of four elements took 1.88 ms at 128K tokens, H = 32, d = 128, batches of 16 1.57
    // (ncu on H100; the selection phase is 0.34 of it). The rows are a compile-time count, so
    // that the FMAs of different rows interleave (with the row count a runtime bound, each row's
    // chain of four dependent FMAs was its own branch, and ncu had 42% of the warps' stalls on
    // their fixed latency), and the next 16 elements load during this step's FMAs; two CTAs per
    // SM (launch bounds) leave 128 registers for that: kernel 1.58 -> 1.45-1.47 ms, build 2.24 ->
    // 2.13 ms (128K, d = 128). Without the bound ptxas took 48 registers and put the loads back
    // between the FMAs: build 2.39 ms. Each score's FMAs still run over x in order.
    // (Four keys per thread, each query element read once for four FMAs, took 1.73 ms at 128K
    // and doubled the time at 32K: fewer threads with work.)
    constexpr int kLoads = 16;
    float kv[kLoads], kv_next[kLoads];
#pragma unroll
    for (int u = 0; u < kLoads; ++u) kv[u] = __ldg(pk + u * nb);
#pragma unroll
    for (int x0 = 0; x0 < D; x0 += kLoads) {
      if (x0 + kLoads < D) {  // the next elements' loads go out before this step's FMAs
#pragma unroll
        for (int u = 0; u < kLoads; ++u) kv_next[u] = __ldg(pk + (x0 + kLoads + u) * nb);
      }
#pragma unroll
      for (int u = 0; u < kLoads; u += 4) {
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          const float4 qv = reinterpret_cast<const float4*>(s_q + r * D + x0 + u)[0];
          acc[r] = fmaf(qv.x, kv[u + 0], acc[r]);
          acc[r] = fmaf(qv.y, kv[u + 1], acc[r]);
          acc[r] = fmaf(qv.z, kv[u + 2], acc[r]);
          acc[r] = fmaf(qv.w, kv[u + 3], acc[r]);
        }
      }
#pragma unroll
      for (int u = 0; u < kLoads; ++u) kv[u] = kv_next[u];
    }
#pragma unroll
    for (int r = 0; r < kRows; ++r)
      if (r < rows && c <= R0 + r) s_score[r * nb + c] = acc[r] * scale;
  }
  __syncthreads();
  const int warp = threadIdx.x >> 5;
  int* s_hist = s_warp + warp * 258;
  for (int r = warp; r < rows; r += kSelectThreads / 32) {
    const int R = R0 + r, len = R + 1;
    const int n_forced = R == 0 ? 1 : 2;
    const int k_eff = min(len, max(k_blocks, n_forced));
    const int64_t slot = static_cast<int64_t>(head) * nb + R;
    const float* score = s_score + r * nb;
    warp_select_top(len, k_eff, [&](int x) { return (x == 0 || x == R) ? 0xffffffffu : order_key(score[x]); },
                    s_hist, s_hist + 256, kept + slot * cap);
    if ((threadIdx.x & 31) == 0) kept_count[slot] = k_eff;
  }
}

// Launches block_select_kernel with the most rows per CTA (of the compiled counts) whose shared
// memory lets two CTAs share an SM (their scores take 4 nb bytes per row: 16 rows up to about
// 100K tokens, 12 at 128K, fewer beyond, at least one). Eight rows with the pooled keys staged
// through shared memory in tiles were slower (select 3.28 ms at 128K, d = 128, against 2.48; ncu).
template <int D, int kRows>
void launch_block_select(const float* pooled_q, const float* pooled_k, int nb, int heads, int group, float scale,
                         int k_blocks, int cap, int32_t* kept, int32_t* kept_count, cudaStream_t stream) {
  constexpr int kNext = kRows > 12 ? 12 : kRows > 8 ? 8 : kRows > 4 ? 4 : 1;
  const size_t smem = block_select_smem(nb, D, kRows);
  if constexpr (kRows > 1) {
    if (smem > 113 * 1024) {
      launch_block_select<D, kNext>(pooled_q, pooled_k, nb, heads, group, scale, k_blocks, cap, kept, kept_count,
                                    stream);
      return;
    }
  }
  HC_CHECK_CUDA(cudaFuncSetAttribute(block_select_kernel<D, kRows>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                     int(smem)));
  block_select_kernel<D, kRows><<<dim3((nb + kRows - 1) / kRows, heads), kSelectThreads, smem, stream>>>(
      pooled_q, pooled_k, nb, group, scale, k_blocks, cap, kept, kept_count);
  HC_CHECK_LAUNCH();
}

// The estimator's two tile passes and their reductions (see vs_score_tile).
template <typename T, int D>
void launch_vs_estimate(const GpuQK& qk, int n_last, float* col_score, float* diag_score, cudaStream_t stream) {
  const int64_t qs = qk.q_row_stride ? qk.q_row_stride : int64_t(qk.n_heads) * D;
  const int64_t ks = qk.k_row_stride ? qk.k_row_stride : int64_t(qk.n_kv_heads) * D;
  const int n = qk.n_tokens, n_tiles = (n + 63) / 64, group = qk.n_heads / qk.n_kv_heads;
  const float scale = 1.f / std::sqrt(float(D));
  const T* q = static_cast<const T*>(qk.q);
  const T* k = static_cast<const T*>(qk.k);
  auto partial = device_alloc<float>(size_t(qk.n_heads) * 64 * n_tiles * 2, stream);   // [H, 64, tiles, 2]
  auto lse = device_alloc<float>(size_t(qk.n_heads) * 64, stream);                      // [H, 64]
  auto diag_partial = device_alloc<float>(size_t(qk.n_heads) * n_tiles * 128, stream);  // [H, tiles, 128]
  // One wave: enough CTAs to fill every SM once at the kernel's occupancy (more, shorter runs
  // of tiles would give each CTA less to overlap, fewer would leave SMs idle; not tuned further).
  const int sms = detail::sm_count();
  auto launch_pass = [&](auto kernel, int pass) {
    const int smem = est_smem_bytes<D>(pass);
    HC_CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
    int per_sm = 0;
    HC_CHECK_CUDA(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, kEstThreads, smem));
    const int64_t ctas_per_head =
        std::min<int64_t>(n_tiles, std::max<int64_t>(1, int64_t(std::max(per_sm, 1)) * sms / qk.n_heads));
    const int per_cta = static_cast<int>((n_tiles + ctas_per_head - 1) / ctas_per_head);
    const dim3 grid(qk.n_heads, (n_tiles + per_cta - 1) / per_cta);
    kernel<<<grid, kEstThreads, smem, stream>>>(q, k, qs, ks, n, n_last, group, scale, n_tiles, per_cta,
                                                partial.get(), lse.get(), col_score, diag_partial.get());
    HC_CHECK_LAUNCH();
  };
  launch_pass(vs_estimate_kernel<T, D, 1>, 1);
  vs_row_lse_kernel<<<dim3(n_last, qk.n_heads), 256, 0, stream>>>(partial.get(), n_tiles, lse.get());
  HC_CHECK_LAUNCH();
  launch_pass(vs_estimate_kernel<T, D, 2>, 2);
  vs_diag_combine_kernel<<<dim3((n + 255) / 256, qk.n_heads), 256, 0, stream>>>(diag_partial.get(), n, n_last,
                                                                               n_tiles, diag_score);
  HC_CHECK_LAUNCH();
}

template <typename T>
void launch_pool(const GpuQK& qk, float* pooled_q, float* pooled_k, cudaStream_t stream) {
  const int d = static_cast<int>(qk.head_dim);
  const int nb = static_cast<int>(num_row_blocks(qk.n_tokens));
  const int64_t qs = qk.q_row_stride ? qk.q_row_stride : int64_t(qk.n_heads) * d;
  const int64_t ks = qk.k_row_stride ? qk.k_row_stride : int64_t(qk.n_kv_heads) * d;
  pool_blocks_kernel<T><<<dim3(nb, qk.n_heads), d, 0, stream>>>(static_cast<const T*>(qk.q), qs, qk.n_tokens, d,
                                                               qk.n_heads, false, pooled_q);
  pool_blocks_kernel<T><<<dim3(nb, qk.n_kv_heads), d, 0, stream>>>(static_cast<const T*>(qk.k), ks, qk.n_tokens,
                                                                  d, qk.n_kv_heads, true, pooled_k);
  HC_CHECK_LAUNCH();
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

// ---- heads of several indexes stacked ----

namespace {

// Where head h of a stacked index comes from (device copy of the host table).
struct StackSource {
  const int32_t* range_offsets;
  const int32_t* range_begin;
  const int32_t* range_end;
  const int32_t* col_offsets;
  const int32_t* cols;
  const int32_t* band_sink;   // null: no band on the source
  const int32_t* band_local;
  int head;  // the head within the source
};

// Counts per output slot (fill = false: counts; true: copies at the scanned offsets), a warp per
// slot; the first slot of each head also writes the head's band.
__global__ void stack_slots_kernel(const StackSource* __restrict__ sources, int nb, int n_slots, bool fill,
                                   int32_t* range_counts, int32_t* col_counts, const int32_t* range_offsets,
                                   const int32_t* col_offsets, int32_t* range_begin, int32_t* range_end,
                                   int32_t* cols, int32_t* band_sink, int32_t* band_local) {
  const int slot = static_cast<int>((static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5);
  const int lane = threadIdx.x & 31;
  if (slot >= n_slots) return;  // whole warps leave together
  const int head = slot / nb, rb = slot % nb;
  const StackSource src = sources[head];
  const int from = src.head * nb + rb;
  const int r0 = src.range_offsets[from], r_count = src.range_offsets[from + 1] - r0;
  const int c0 = src.col_offsets[from], c_count = src.col_offsets[from + 1] - c0;
  if (!fill) {
    if (lane == 0) {
      range_counts[slot] = r_count;
      col_counts[slot] = c_count;
    }
    return;
  }
  const int r_at = range_offsets[slot], c_at = col_offsets[slot];
  for (int i = lane; i < r_count; i += 32) {
    range_begin[r_at + i] = src.range_begin[r0 + i];
    range_end[r_at + i] = src.range_end[r0 + i];
  }
  for (int i = lane; i < c_count; i += 32) cols[c_at + i] = src.cols[c0 + i];
  if (rb == 0 && lane == 0 && band_local != nullptr) {
    band_sink[head] = src.band_local != nullptr ? src.band_sink[src.head] : 0;
    band_local[head] = src.band_local != nullptr ? src.band_local[src.head] : 0;
  }
}

}  // namespace

DeviceSparseIndex stack_heads_gpu(const std::vector<const DeviceSparseIndex*>& sources,
                                  const std::vector<int64_t>& source_heads, cudaStream_t stream) {
  if (sources.empty() || sources.size() != source_heads.size())
    throw InputError(kWhat, "stack_heads_gpu needs one (source, head) pair per head, at least one");
  if (sources[0] == nullptr) throw InputError(kWhat, "stack_heads_gpu: head 0's index is missing");
  const int64_t n_tokens = sources[0]->n_tokens();
  const int64_t n_heads = static_cast<int64_t>(sources.size());
  const int64_t nb = num_row_blocks(n_tokens);
  const int64_t n_slots = n_heads * nb;
  if (n_slots > std::numeric_limits<int32_t>::max() / 2) throw InputError(kWhat, "too many (head, row block) slots");
  std::vector<StackSource> table(static_cast<size_t>(n_heads));
  bool any_band = false, share_tiles = true;
  for (int64_t h = 0; h < n_heads; ++h) {
    const DeviceSparseIndex* s = sources[static_cast<size_t>(h)];
    const int64_t head = source_heads[static_cast<size_t>(h)];
    if (s == nullptr || s->n_tokens() != n_tokens)
      throw InputError(kWhat, "stack_heads_gpu: head " + std::to_string(h) + "'s index is missing or has " +
                                  "another token count");
    if (head < 0 || head >= s->n_heads())
      throw InputError(kWhat, "stack_heads_gpu: head " + std::to_string(h) + " takes head " + std::to_string(head) +
                                  " of an index with " + std::to_string(s->n_heads()));
    const SparseIndexView v = s->view();
    table[static_cast<size_t>(h)] = {v.range_offsets, v.range_begin, v.range_end, v.col_offsets, v.cols,
                                     v.band_sink,     v.band_local,  static_cast<int>(head)};
    any_band = any_band || v.band_local != nullptr;
    share_tiles = share_tiles && v.row_blocks_share_tiles;
  }
  auto device_table = device_alloc<StackSource>(table.size(), stream, true);
  HC_CHECK_CUDA(cudaMemcpyAsync(device_table.get(), table.data(), table.size() * sizeof(StackSource),
                                cudaMemcpyHostToDevice, stream));

  DeviceSparseIndex out;
  using A = DeviceIndexAccess;
  A::n_heads(out) = n_heads;
  A::n_tokens(out) = n_tokens;
  A::row_blocks_share_tiles(out) = share_tiles;
  const auto counts = allocate_offsets(out, n_slots, stream);
  const int threads = 256;  // 8 slots per block
  const unsigned blocks = static_cast<unsigned>((n_slots * 32 + threads - 1) / threads);
  stack_slots_kernel<<<blocks, threads, 0, stream>>>(device_table.get(), static_cast<int>(nb),
                                                     static_cast<int>(n_slots), false, counts.get(),
                                                     counts.get() + n_slots, nullptr, nullptr, nullptr, nullptr,
                                                     nullptr, nullptr, nullptr);
  HC_CHECK_LAUNCH();
  scan_offsets(counts.get(), out, n_slots, stream);
  read_totals(out, n_slots, stream);
  const auto band = allocate_entries(out, A::total_ranges(out), A::total_cols(out), any_band ? 2 * n_heads : 0, stream);
  if (any_band) {
    A::band_sink(out) = band;
    A::band_local(out) = std::shared_ptr<int32_t>(band, band.get() + n_heads);
  }
  stack_slots_kernel<<<blocks, threads, 0, stream>>>(
      device_table.get(), static_cast<int>(nb), static_cast<int>(n_slots), true, nullptr, nullptr,
      A::range_offsets(out).get(), A::col_offsets(out).get(), A::range_begin(out).get(), A::range_end(out).get(),
      A::cols(out).get(), any_band ? A::band_sink(out).get() : nullptr, any_band ? A::band_local(out).get() : nullptr);
  HC_CHECK_LAUNCH();
  // The sources may be dropped on return (their memory is freed in the legacy stream's order, which
  // a non-blocking `stream` does not follow): the copy has run by then.
  HC_CHECK_CUDA(cudaStreamSynchronize(stream));
  return out;
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
  if (sink < 0 || local < 1) throw InputError(kWhat, "a_shape needs sink >= 0 and local >= 1");
  return build_static_index(static_rule(static_cast<int>(n_tokens), static_cast<int>(n_heads), sink, local), true,
                            stream);
}

void vertical_slash_scores_gpu(const GpuQK& qk, int last_q, float* col_score, float* diag_score,
                               cudaStream_t stream) {
  check_qk(qk);
  if (last_q < 1) throw InputError(kWhat, "last_q must be >= 1");
  const int n = qk.n_tokens;
  const int n_last = std::min({last_q, n, 64});
  if (last_q > 64 && n > 64) throw InputError(kWhat, "the GPU estimator supports last_q <= 64");
  const bool bf16 = qk.dtype == AttnDType::kBF16;
  if (qk.head_dim == 64) {
    if (bf16) launch_vs_estimate<__nv_bfloat16, 64>(qk, n_last, col_score, diag_score, stream);
    else launch_vs_estimate<__half, 64>(qk, n_last, col_score, diag_score, stream);
  } else {
    if (bf16) launch_vs_estimate<__nv_bfloat16, 128>(qk, n_last, col_score, diag_score, stream);
    else launch_vs_estimate<__half, 128>(qk, n_last, col_score, diag_score, stream);
  }
}

DeviceSparseIndex vertical_slash_index_from_scores_gpu(const float* col_score, const float* diag_score,
                                                       int64_t n_heads, int64_t n_tokens, int v, int s,
                                                       int v_sink, int s_local, cudaStream_t stream) {
  check_tokens_heads(n_tokens, n_heads);
  if (v < 0 || s < 0 || v_sink < 0 || s_local < 0)
    throw InputError(kWhat, "vertical_slash needs v, s, v_sink, s_local >= 0");
  const int n = static_cast<int>(n_tokens);
  // |V| = min(N, max(v, min(v_sink, N))), likewise |S| (index_ref.h).
  const int n_columns = std::min(n, std::max(v, std::min(v_sink, n)));
  const int n_offsets = std::min(n, std::max(s, std::min(s_local, n)));
  auto columns = device_alloc<int32_t>(size_t(n_heads) * n_columns, stream);
  auto offsets = device_alloc<int32_t>(size_t(n_heads) * n_offsets, stream);
  if (n_columns > 0 || n_offsets > 0) {  // both selections in one launch (blockIdx.y)
    const SelectJob col_job{col_score, v_sink, n_columns, columns.get()};
    const SelectJob diag_job{diag_score, s_local, n_offsets, offsets.get()};
    if (n <= kRegisterSelectMax) {
      const dim3 grid(static_cast<unsigned>(n_heads), 2);
      select_per_head_registers_kernel<<<grid, 1024, 0, stream>>>(col_job, diag_job, n);
      HC_CHECK_LAUNCH();
    } else {
      const unsigned cluster =
          static_cast<unsigned>(std::clamp<int64_t>(detail::sm_count() / (2 * n_heads), 1, kSelectCluster));
      cudaLaunchConfig_t config{};
      config.gridDim = dim3(static_cast<unsigned>(n_heads) * cluster, 2);
      config.blockDim = dim3(1024);
      config.stream = stream;
      cudaLaunchAttribute attribute{};
      attribute.id = cudaLaunchAttributeClusterDimension;
      attribute.val.clusterDim.x = cluster;
      attribute.val.clusterDim.y = attribute.val.clusterDim.z = 1;
      config.attrs = &attribute;
      config.numAttrs = 1;
      HC_CHECK_CUDA(cudaLaunchKernelEx(&config, select_per_head_kernel, col_job, diag_job, n));
    }
  }
  auto run_start = device_alloc<int32_t>(size_t(n_heads) * std::max(n_offsets, 1), stream);
  auto n_runs = device_alloc<int32_t>(size_t(n_heads), stream);
  if (n_offsets > 0) {
    offset_runs_kernel<<<n_heads, 1024, 0, stream>>>(offsets.get(), n_offsets, run_start.get(), n_runs.get());
    HC_CHECK_LAUNCH();
  } else {
    HC_CHECK_CUDA(cudaMemsetAsync(n_runs.get(), 0, sizeof(int32_t) * n_heads, stream));
  }
  return build_from_slots(VerticalSlashSlot{n, int(num_row_blocks(n)), columns.get(), n_columns, offsets.get(),
                                            n_offsets, run_start.get(), n_runs.get()},
                          n_tokens, n_heads, stream);
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
  if (k_blocks < 1) throw InputError(kWhat, "block_sparse needs k_blocks >= 1");
  const int n = qk.n_tokens, d = static_cast<int>(qk.head_dim);
  const int nb = static_cast<int>(num_row_blocks(n));
  // The selection keeps a row block's scores against every key block in shared memory.
  if (block_select_smem(nb, d, 1) > 227 * 1024)
    throw InputError(kWhat, "block_sparse on the GPU supports up to 3M tokens, got " + std::to_string(n));
  auto pooled_q = device_alloc<float>(size_t(qk.n_heads) * nb * d, stream);     // [H, nb, d]
  auto pooled_k = device_alloc<float>(size_t(qk.n_kv_heads) * nb * d, stream);  // [Hkv, d, nb]
  if (qk.dtype == AttnDType::kBF16) launch_pool<__nv_bfloat16>(qk, pooled_q.get(), pooled_k.get(), stream);
  else launch_pool<__half>(qk, pooled_q.get(), pooled_k.get(), stream);
  const int cap = std::min(nb, std::max(k_blocks, 2));
  auto kept = device_alloc<int32_t>(size_t(qk.n_heads) * nb * cap, stream);  // [H, nb, cap]
  auto kept_count = device_alloc<int32_t>(size_t(qk.n_heads) * nb, stream);   // [H * nb]
  const float scale = 1.f / std::sqrt(float(d));
  const int group = qk.n_heads / qk.n_kv_heads;
  if (d == 64)
    launch_block_select<64, kSelectMaxRows>(pooled_q.get(), pooled_k.get(), nb, qk.n_heads, group, scale, k_blocks,
                                            cap, kept.get(), kept_count.get(), stream);
  else
    launch_block_select<128, kSelectMaxRows>(pooled_q.get(), pooled_k.get(), nb, qk.n_heads, group, scale, k_blocks,
                                             cap, kept.get(), kept_count.get(), stream);
  return build_from_slots(BlockSparseSlot{n, nb, kept.get(), kept_count.get(), cap}, n, qk.n_heads, stream);
}

}  // namespace hc::kernels

// The slot stage of the GPU index builders (index_device.cuh): per (head, row block) slot, one warp
// counts its ranges and columns (pass 1) or writes them (pass 2) at the offsets an exclusive scan
// of the counts gives (the CSR layout of sparse_index.h), or does both in one launch, each CTA
// finding its offsets by decoupled look-back (the layer planner's build). Each warp follows its
// head's pattern.
#include <algorithm>

#include "common/cuda_check.h"
#include "kernels/chained_launch.h"
#include "kernels/device_primitives.cuh"
#include "kernels/sparse/index_device.cuh"

namespace hc::kernels::detail {
namespace {

// ---- dense and a_shape: closed form ----

// The sink range [0, min(sink, r1 + 1)) and the local range [max(0, r0 - local + 1), r1 + 1),
// merged when they touch: apart (two ranges) exactly when sink > 0 and r0 - local + 1 > sink.
// Dense is sink 0 with local >= N: one range [0, r1 + 1).
__device__ void static_slot(int sink, int local, int rb, int r1, int lane, bool fill, int at, int32_t* range_begin,
                            int32_t* range_end, int& n_ranges) {
  const int r0 = rb * kBlock;
  const int local_begin = local >= r0 + 1 ? 0 : r0 - local + 1;
  const bool apart = sink > 0 && local_begin > sink;
  n_ranges = apart ? 2 : 1;
  if (!fill || lane != 0) return;
  if (apart) {
    range_begin[at] = 0;
    range_end[at] = sink;
    range_begin[at + 1] = local_begin;
    range_end[at + 1] = r1 + 1;
  } else {
    range_begin[at] = sink > 0 ? 0 : local_begin;
    range_end[at] = r1 + 1;
  }
}

// ---- vertical_slash: the head's runs of offsets, and the columns in the gaps between them ----

// Offset o <= r1 covers [max(0, r1 - o - 63), r1 - o + 1); columns c <= r1 outside the merged
// ranges are gathered. Larger offsets give smaller begins.
// Two offsets' ranges merge exactly when the offsets differ by <= 64, so the merged ranges of any
// slot are the head's runs of offsets (consecutive gaps <= 64), the last one cut at r1: a slot
// walks runs, not offsets (1000/6096 at 8K tokens took 6.9 ms walking offsets one by one). Runs
// never touch one another (a gap of more than 64 offsets leaves at least one key between their
// ranges), so a slot has exactly one range per usable run.
//
// Keys [x, y) of run k of a slot whose first n_run runs start below `usable` (runs ascend by
// offset, so run 0 has the highest keys): offsets off[runs[k]] .. off[last] covering
// [max(0, r1 - off[last] - 63), r1 - off[runs[k]] + 1).
__device__ __forceinline__ int2 run_keys(const int32_t* off, const int32_t* runs, int n_run, int usable, int r1,
                                         int k) {
  const int last = k + 1 < n_run ? runs[k + 1] - 1 : usable - 1;
  return make_int2(max(0, r1 - off[last] - (kBlock - 1)), r1 - off[runs[k]] + 1);
}

// A vertical-slash head's selection as a slot reads it: its offsets, their runs and its columns,
// in global memory or staged in shared memory.
struct VsHead {
  const int32_t* off = nullptr;   // [n_off] ascending
  const int32_t* runs = nullptr;  // [n_runs] ascending indices into off
  const int32_t* col = nullptr;   // [n_col] ascending
  int n_off = 0, n_runs = 0, n_col = 0;
};

__device__ __forceinline__ VsHead vs_head_global(const SlotRule& rule, int h) {
  VsHead v;
  v.off = rule.offsets + static_cast<int64_t>(h) * rule.off_stride;
  v.runs = rule.run_start + static_cast<int64_t>(h) * rule.off_stride;
  v.col = rule.columns + static_cast<int64_t>(h) * rule.col_stride;
  v.n_off = rule.n_offsets.at(h);
  v.n_runs = rule.n_runs[h];
  v.n_col = rule.n_columns.at(h);
  return v;
}

// One warp per slot. Range p of the slot (ascending keys) is run n_run - 1 - p, written by lane
// p % 32 (lane 0 walking the runs one after another: 51 + 65 us for the two passes at 32K tokens,
// H = 32, vertical_slash(30,800), 25 + 34 us like this; ncu on H100). The kept columns are those
// in the gaps between the runs' ranges, so the lanes find each gap's columns by two binary
// searches and copy them contiguously (a thread per slot walking up to thousands of columns took
// 3.1 ms of a 7 ms build at 128K tokens, H = 32, v = 3500; testing every column against the
// offsets, one warp per slot, 0.27 ms per pass, and 0.15 ms per pass at 32K tokens, H = 9; ncu on
// H100).
__device__ void vs_slot(const VsHead& head, int r1, int lane, bool fill, int range_at, int col_at,
                        int32_t* range_begin, int32_t* range_end, int32_t* cols, int& n_ranges, int& n_cols) {
  const int32_t* off = head.off;
  const int32_t* col = head.col;
  const int32_t* runs = head.runs;
  const int usable = count_at_most<false>(off, head.n_off, r1);  // offsets <= r1
  const int n_run = usable > 0 ? count_at_most<false>(runs, head.n_runs, usable - 1) : 0;
  if (fill) {
    for (int p = lane; p < n_run; p += 32) {
      const int2 keys = run_keys(off, runs, n_run, usable, r1, n_run - 1 - p);
      range_begin[range_at + p] = keys.x;
      range_end[range_at + p] = keys.y;
    }
  }
  n_ranges = n_run;
  const int n_usable = count_at_most<false>(col, head.n_col, r1);  // columns <= r1
  // Gaps in ascending key order: gap 0 below the lowest range, gap g between the ranges of runs
  // n_run - g and n_run - g - 1, gap n_run above the highest. Gap g's columns are
  // col[first .. first + count).
  auto gap_columns = [&](int g, int& first, int& count) {
    const int a = g == 0 ? 0 : run_keys(off, runs, n_run, usable, r1, n_run - g).y;
    const int b = g == n_run ? r1 + 1 : run_keys(off, runs, n_run, usable, r1, n_run - 1 - g).x;
    first = count_at_most<false>(col, n_usable, a - 1);
    count = a < b ? count_at_most<false>(col, n_usable, b - 1) - first : 0;
  };
  int written = 0;
  for (int base = 0; base <= n_run; base += 32) {
    const int g = base + lane;
    int first = 0, count = 0;
    if (g <= n_run) gap_columns(g, first, count);
    const int before = warp_inclusive_sum(count) - count;
    if (fill) {
      int32_t* out = cols + col_at + written;
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
  n_cols = written;
}

// ---- block_sparse: the slot's kept key blocks ----

// Kept key block c covers [64c, min(64c + 64, r1 + 1)); adjacent kept blocks merge. One warp per
// slot: a kept block starts a range unless its predecessor is kept, ends one unless its successor
// is; the i-th start and the i-th end make range i, placed by ballots (a thread per slot walking
// its kept blocks took 22-26 us per pass at 8K tokens, H = 9, and 28 us at 32K, H = 32; ncu on
// H100). No gathered columns.
__device__ void block_sparse_slot(const SlotRule& rule, int slot, int r1, int lane, bool fill, int at,
                                  int32_t* range_begin, int32_t* range_end, int& n_ranges) {
  const int32_t* k = rule.kept + static_cast<int64_t>(slot) * rule.cap;
  const int m = rule.kept_count[slot];
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
  n_ranges = starts;
}

// Where one pass writes. Counting (fill = false): range_counts, col_counts [n_slots]. Filling:
// the entries at the scanned offsets, and each head's band when band_sink is given.
struct SlotOutput {
  int32_t* range_counts = nullptr;
  int32_t* col_counts = nullptr;
  const int32_t* range_offsets = nullptr;
  const int32_t* col_offsets = nullptr;
  int32_t* range_begin = nullptr;
  int32_t* range_end = nullptr;
  int32_t* cols = nullptr;
  int32_t* band_sink = nullptr;
  int32_t* band_local = nullptr;
  int32_t* write_range_offsets = nullptr;  // one pass: the offsets it writes
  int32_t* write_col_offsets = nullptr;
};

// The head's vertical-slash selection as the CTA's slots read it: staged in shared memory when
// stage_ints > 0 (called by every thread of the CTA: it holds a barrier), else in global memory.
// Every slot's binary searches over it are chains of dependent loads; from global memory they made
// both passes latency-bound (13 + 18 us at 8K tokens, H = 9; ncu on H200).
__device__ VsHead stage_vs_head(const SlotRule& rule, int h, int stage_ints, int32_t* s_stage) {
  VsHead vs = vs_head_global(rule, h);
  if (stage_ints > 0) {  // the host sized stage_ints for every vertical-slash head
    int32_t* s_off = s_stage;
    int32_t* s_runs = s_off + vs.n_off;
    int32_t* s_col = s_runs + vs.n_runs;
    for (int i = threadIdx.x; i < vs.n_off; i += blockDim.x) s_off[i] = __ldg(vs.off + i);
    for (int i = threadIdx.x; i < vs.n_runs; i += blockDim.x) s_runs[i] = __ldg(vs.runs + i);
    for (int i = threadIdx.x; i < vs.n_col; i += blockDim.x) s_col[i] = __ldg(vs.col + i);
    __syncthreads();
    vs.off = s_off;
    vs.runs = s_runs;
    vs.col = s_col;
  }
  return vs;
}

// Slot (h, rb)'s ranges and columns by its head's pattern (one warp): counted into n_ranges and
// n_cols, and with fill written at range_at and col_at.
__device__ void slot_entries(const SlotRule& rule, const VsHead& vs, int pattern, int h, int rb, int lane, bool fill,
                             int range_at, int col_at, const SlotOutput& out, int& n_ranges, int& n_cols) {
  const int slot = h * rule.nb + rb, r1 = last_row(rb, rule.n);
  n_ranges = 0;
  n_cols = 0;
  if (pattern == static_cast<int>(Pattern::vertical_slash)) {
    vs_slot(vs, r1, lane, fill, range_at, col_at, out.range_begin, out.range_end, out.cols, n_ranges, n_cols);
  } else if (pattern == static_cast<int>(Pattern::block_sparse)) {
    block_sparse_slot(rule, slot, r1, lane, fill, range_at, out.range_begin, out.range_end, n_ranges);
  } else {
    static_slot(rule.sink.at(h), rule.local.at(h), rb, r1, lane, fill, range_at, out.range_begin, out.range_end,
                n_ranges);
  }
}

// Head h's band (a_shape: sink, local; others 0), by the lane that fills its row block 0.
__device__ __forceinline__ void write_band(const SlotRule& rule, int pattern, int h, const SlotOutput& out) {
  if (out.band_sink == nullptr) return;
  const bool a_shape = pattern == static_cast<int>(Pattern::a_shape);
  out.band_sink[h] = a_shape ? rule.sink.at(h) : 0;
  out.band_local[h] = a_shape ? rule.local.at(h) : 0;
}

// One warp per slot, following its head's pattern (warp-uniform branches); grid (row-block groups,
// H), a CTA the kSlotWarps consecutive row blocks of one head, which with stage_ints > 0 first
// stages a vertical-slash head's selection (stage_vs_head).
constexpr int kSlotWarps = 8;
__global__ void __launch_bounds__(kSlotWarps * 32) slot_pass_kernel(SlotRule rule, SlotOutput out, bool fill,
                                                                   int stage_ints) {
  detail::chained_kernel_begins();
  extern __shared__ int32_t s_stage[];  // [stage_ints]: offsets, runs, columns
  const int h = blockIdx.y, rb = blockIdx.x * kSlotWarps + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  const int pattern = rule.pattern.at(h);
  VsHead vs;
  if (pattern == static_cast<int>(Pattern::vertical_slash)) vs = stage_vs_head(rule, h, stage_ints, s_stage);
  if (rb >= rule.nb) return;  // whole warps leave together, after the CTA's barrier
  const int slot = h * rule.nb + rb;
  int n_ranges = 0, n_cols = 0;
  slot_entries(rule, vs, pattern, h, rb, lane, fill, fill ? out.range_offsets[slot] : 0,
               fill ? out.col_offsets[slot] : 0, out, n_ranges, n_cols);
  if (lane != 0) return;
  if (!fill) {
    out.range_counts[slot] = n_ranges;
    out.col_counts[slot] = n_cols;
  } else if (rb == 0) {
    write_band(rule, pattern, h, out);
  }
}

// ---- one pass: count, look back, fill ----

// A CTA's place in the index by decoupled look-back: it publishes its own total, sums its
// predecessors' (stopping at the first that has published an inclusive prefix), then publishes its
// inclusive prefix. Status word: 0 = nothing yet, else kind << 62 | value (kind 1: the CTA's own
// total, 2: the total of it and every CTA before it). CTAs take their place in the order they
// start (a ticket), so every predecessor is running or done and the spin ends.
constexpr unsigned long long kLookbackOwn = 1ull << 62, kLookbackInclusive = 2ull << 62;
constexpr unsigned long long kLookbackValue = (1ull << 62) - 1;
__device__ long long lookback_prefix(unsigned long long* status, int cta, long long total) {
  if (cta == 0) {
    atomicExch(status, kLookbackInclusive | static_cast<unsigned long long>(total));
    return 0;
  }
  atomicExch(status + cta, kLookbackOwn | static_cast<unsigned long long>(total));
  long long prefix = 0;
  for (int p = cta - 1;; --p) {
    unsigned long long word;
    do {
      word = *reinterpret_cast<volatile unsigned long long*>(status + p);
    } while (word == 0);
    prefix += static_cast<long long>(word & kLookbackValue);
    if ((word & ~kLookbackValue) == kLookbackInclusive) break;
  }
  atomicExch(status + cta, kLookbackInclusive | static_cast<unsigned long long>(prefix + total));
  return prefix;
}

// Count, offsets and fill in one launch (SlotLookback says what it needs). Same CTA layout as
// slot_pass_kernel, but CTA t of the launch (its ticket) takes the slots of row-block group
// t % groups of head t / groups, so that slot order is ticket order.
__global__ void __launch_bounds__(kSlotWarps * 32) slot_one_pass_kernel(SlotRule rule, SlotOutput out,
                                                                       SlotLookback lookback, int stage_ints) {
  detail::chained_kernel_begins();
  extern __shared__ int32_t s_stage[];  // [stage_ints]: offsets, runs, columns
  __shared__ int s_ticket;
  __shared__ int s_counts[2][kSlotWarps];  // the warps' ranges and columns
  __shared__ long long s_base[2];          // the entries of every slot before the CTA's
  if (threadIdx.x == 0) s_ticket = atomicAdd(lookback.ticket, 1);
  __syncthreads();
  const int groups = static_cast<int>(gridDim.x);
  const int cta = s_ticket, h = cta / groups;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int rb = (cta % groups) * kSlotWarps + warp;
  const int pattern = rule.pattern.at(h);
  VsHead vs;
  if (pattern == static_cast<int>(Pattern::vertical_slash)) vs = stage_vs_head(rule, h, stage_ints, s_stage);
  const bool has_slot = rb < rule.nb;
  int n_ranges = 0, n_cols = 0;
  if (has_slot) slot_entries(rule, vs, pattern, h, rb, lane, false, 0, 0, out, n_ranges, n_cols);
  if (lane == 0) {
    s_counts[0][warp] = n_ranges;
    s_counts[1][warp] = n_cols;
  }
  __syncthreads();
  if (threadIdx.x == 0 || threadIdx.x == 32) {  // ranges and columns side by side
    const int which = threadIdx.x / 32;
    long long total = 0;
    for (int w = 0; w < kSlotWarps; ++w) total += s_counts[which][w];
    const long long base =
        lookback_prefix(lookback.status + int64_t(which) * gridDim.x * gridDim.y, cta, total);
    s_base[which] = base;
    if (cta == static_cast<int>(gridDim.x * gridDim.y) - 1) {  // the last slots: the totals
      const long long end = base + total;
      int32_t* offsets = which == 0 ? out.write_range_offsets : out.write_col_offsets;
      offsets[int64_t(rule.nb) * (gridDim.y)] = end <= 0x7fffffffLL ? static_cast<int32_t>(end) : -1;
    }
  }
  __syncthreads();
  if (!has_slot) return;
  long long range_at = s_base[0], col_at = s_base[1];
  for (int w = 0; w < warp; ++w) {
    range_at += s_counts[0][w];
    col_at += s_counts[1][w];
  }
  const int slot = h * rule.nb + rb;
  const bool fits = range_at + n_ranges <= 0x7fffffffLL && col_at + n_cols <= 0x7fffffffLL;
  if (lane == 0) {
    out.write_range_offsets[slot] = fits ? static_cast<int32_t>(range_at) : -1;
    out.write_col_offsets[slot] = fits ? static_cast<int32_t>(col_at) : -1;
    if (rb == 0) write_band(rule, pattern, h, out);
  }
  if (!fits) return;  // an index past int32 offsets: the totals say so (-1), nothing is written
  slot_entries(rule, vs, pattern, h, rb, lane, true, static_cast<int>(range_at), static_cast<int>(col_at), out,
               n_ranges, n_cols);
}

// ---- the offsets: exclusive scans of the counts ----

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
  detail::chained_kernel_begins();
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

// Staging takes up to this much shared memory per CTA (72 KB: three CTAs per SM), enough for heads
// of up to 6K columns and 6K offsets (their runs as many); larger ones search global memory.
constexpr int kMaxStageInts = 18 * 1024;

// The staged selection's size: bounds of any head's counts, the strides its selections were
// written with (0: too large to stage, global memory is searched).
int slot_stage_ints(const SlotRule& rule) {
  const int64_t stage = rule.columns != nullptr ? int64_t(rule.col_stride) + 2 * int64_t(rule.off_stride) : 0;
  return stage <= kMaxStageInts ? static_cast<int>(stage) : 0;
}
dim3 slot_grid(const SlotRule& rule, int n_slots) {
  return dim3(static_cast<unsigned>((rule.nb + kSlotWarps - 1) / kSlotWarps), static_cast<unsigned>(n_slots / rule.nb));
}
template <typename Kernel>
size_t slot_smem(Kernel kernel, int stage_ints) {
  const size_t smem = static_cast<size_t>(stage_ints) * sizeof(int32_t);
  if (smem > 48 * 1024) HC_CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem)));
  return smem;
}

// The output of a fill: the slots' ranges, columns and band.
SlotOutput entries_output(int32_t* range_begin, int32_t* range_end, int32_t* cols, int32_t* band_sink,
                          int32_t* band_local) {
  SlotOutput out;
  out.range_begin = range_begin;
  out.range_end = range_end;
  out.cols = cols;
  out.band_sink = band_sink;
  out.band_local = band_local;
  return out;
}

void launch_slot_pass(const SlotRule& rule, int n_slots, const SlotOutput& out, bool fill, cudaStream_t stream) {
  const int stage_ints = slot_stage_ints(rule);
  const size_t smem = slot_smem(slot_pass_kernel, stage_ints);
  launch_chained(slot_pass_kernel, slot_grid(rule, n_slots), kSlotWarps * 32, smem, stream, 0, rule, out, fill,
                 stage_ints);
}

}  // namespace

void launch_slot_offsets(const SlotRule& rule, int n_slots, int32_t* counts, int32_t* range_offsets,
                         int32_t* col_offsets, cudaStream_t stream) {
  SlotOutput out;
  out.range_counts = counts;
  out.col_counts = counts + n_slots;
  launch_slot_pass(rule, n_slots, out, false, stream);
  launch_chained(scan_counts_kernel, 2, kScanThreads, 0, stream, 0, counts, range_offsets, counts + n_slots,
                 col_offsets, n_slots);
}

void launch_slot_fill(const SlotRule& rule, int n_slots, const int32_t* range_offsets, const int32_t* col_offsets,
                      int32_t* range_begin, int32_t* range_end, int32_t* cols, int32_t* band_sink,
                      int32_t* band_local, cudaStream_t stream) {
  SlotOutput out = entries_output(range_begin, range_end, cols, band_sink, band_local);
  out.range_offsets = range_offsets;
  out.col_offsets = col_offsets;
  launch_slot_pass(rule, n_slots, out, true, stream);
}

// Per slot of row block rb (rows up to r1): dense and a_shape at most two ranges; a
// vertical-slash slot's ranges never touch and are kBlock keys or wider but for one cut at key 0,
// all below r1 + 1 <= kBlock (rb + 1), so at most rb + 2 of them and at most one per offset, and
// its columns are distinct keys up to r1, at most one per kept column; a block-sparse slot at most
// one range per kept block, of which there are at most rb + 1.
HeadBounds head_bounds(const PatternConfig& config, int64_t n_tokens, const EstimatorSettings& settings) {
  HeadBounds b;
  const int n = static_cast<int>(n_tokens);
  const int64_t nb = num_row_blocks(n_tokens);
  const int n_columns = vs_kept(config.p1, settings.v_sink, n), n_offsets = vs_kept(config.p2, settings.s_local, n);
  const int64_t cap = std::min<int64_t>(nb, std::max(config.p1, 2));
  for (int64_t rb = 0; rb < nb; ++rb) {
    switch (config.pattern) {
      case Pattern::dense: b.ranges += 1; break;
      case Pattern::a_shape: b.ranges += 2; break;
      case Pattern::vertical_slash:
        b.ranges += std::min<int64_t>(n_offsets, rb + 2);
        b.cols += std::min<int64_t>(n_columns, std::min<int64_t>((rb + 1) * kBlock, n));
        break;
      case Pattern::block_sparse: b.ranges += std::min<int64_t>(cap, rb + 1); break;
    }
  }
  return b;
}

int64_t slot_lookback_words(int64_t n_heads, int64_t n_row_blocks) {
  return 2 * n_heads * ((n_row_blocks + kSlotWarps - 1) / kSlotWarps);
}

void launch_slot_one_pass(const SlotRule& rule, int n_slots, const SlotLookback& lookback, int32_t* range_offsets,
                          int32_t* col_offsets, int32_t* range_begin, int32_t* range_end, int32_t* cols,
                          int32_t* band_sink, int32_t* band_local, cudaStream_t stream) {
  SlotOutput out = entries_output(range_begin, range_end, cols, band_sink, band_local);
  out.write_range_offsets = range_offsets;
  out.write_col_offsets = col_offsets;
  const int stage_ints = slot_stage_ints(rule);
  const size_t smem = slot_smem(slot_one_pass_kernel, stage_ints);
  launch_chained(slot_one_pass_kernel, slot_grid(rule, n_slots), kSlotWarps * 32, smem, stream, 0, rule, out,
                 lookback, stage_ints);
}

}  // namespace hc::kernels::detail

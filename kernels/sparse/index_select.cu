// Top-k selection of the vertical-slash estimate's columns and offsets, per head (index_device.cuh).
#include <cooperative_groups.h>

#include <algorithm>

#include "common/cuda_check.h"
#include "kernels/chained_launch.h"
#include "kernels/sparse/device_pool.h"
#include "kernels/sparse/index_device.cuh"
#include "kernels/sparse/topk_select.cuh"

namespace hc::kernels::detail {
namespace {

constexpr int kSelectCluster = 8;

// The runs of one head's selected offsets off[0 .. n_offsets) (ascending; read through L2, since
// other CTAs of a cluster may have written them): the indices x that start a run (x == 0 or
// off[x] - off[x - 1] > 64) into run_start, ascending, and their count into *n_runs; by the whole
// CTA of kThreads threads.
template <int kThreads>
__device__ void offset_runs_block(const int32_t* off, int n_offsets, int32_t* run_start, int32_t* n_runs,
                                  int* s_warp) {
  const int chunk = (n_offsets + kThreads - 1) / kThreads;
  const int lo = min(n_offsets, static_cast<int>(threadIdx.x) * chunk), hi = min(n_offsets, lo + chunk);
  auto starts = [&](int x) { return x == 0 || __ldcg(off + x) - __ldcg(off + x - 1) > kBlock; };
  int count = 0;
  for (int x = lo; x < hi; ++x) count += starts(x);
  int total = 0;
  int pos = block_exclusive_scan<kThreads>(count, s_warp, &total);
  for (int x = lo; x < hi; ++x)
    if (starts(x)) run_start[pos++] = x;
  if (threadIdx.x == 0) *n_runs = total;
}

// Top-k selection over one head's scores by a cluster of CTAs (launch attribute), each owning a
// contiguous part of the entries: the histograms of a radix pass are added across the cluster
// through distributed shared memory, and the final counts give each CTA its place in the output.
// One 1024-thread CTA per head took 77 us per selection at 32K tokens and 330 us at 128K (H = 9,
// ncu on H100), with 9 of 132 SMs busy. The cluster is as large as fills the SMs once (both
// selections of every head), at most kSelectCluster: at 8K tokens clusters of 8 took 25 us for
// H = 9 (one CTA per head: 38 us) but left 512 CTAs in four waves for H = 32, where one CTA per
// head made the whole build 0.23 -> 0.17 ms, and this rule (clusters of 2) 0.16-0.19 ms (H100).
__global__ void __launch_bounds__(1024) select_per_head_kernel(SelectJob first, SelectJob second, RunsJob runs,
                                                                int n) {
  detail::chained_kernel_begins();
  constexpr int kThreads = 1024;
  namespace cg = cooperative_groups;
  cg::cluster_group cluster = cg::this_cluster();
  __shared__ int s_hist[256], s_total[256];
  __shared__ int s_sel[2];
  __shared__ int s_warp[33];
  __shared__ int s_cta_counts[2];  // this CTA's entries above / equal to the threshold
  const SelectJob& job = blockIdx.y == 0 ? first : second;
  const int cluster_size = static_cast<int>(cluster.num_blocks());
  const int head = blockIdx.x / cluster_size;
  const int k_eff = job.count.at(head);
  const int rank = static_cast<int>(cluster.block_rank());
  const int tid = threadIdx.x;
  const bool with_runs = blockIdx.y == 1 && runs.run_start != nullptr;
  // The second job's runs, once every CTA of the cluster has written its part of the offsets.
  auto finish_runs = [&](const int32_t* offsets) {
    if (!with_runs) return;
    cluster.sync();
    if (rank == 0)
      offset_runs_block<kThreads>(offsets, k_eff, runs.run_start + static_cast<int64_t>(head) * job.out_stride,
                                  runs.n_runs + head, s_warp);
  };
  if (k_eff == 0) {  // the whole cluster (one head, one job)
    if (with_runs && rank == 0 && tid == 0) runs.n_runs[head] = 0;
    return;
  }
  const float* s = job.score + static_cast<int64_t>(head) * n;
  int32_t* out = job.out + static_cast<int64_t>(head) * job.out_stride;
  auto key_of = [&](int x) { return x < job.n_forced ? 0xffffffffu : order_key(s[x]); };
  const int part = (n + cluster_size - 1) / cluster_size;
  const int c_lo = min(n, rank * part), c_hi = min(n, c_lo + part);
  if (k_eff >= n) {
    for (int x = c_lo + tid; x < c_hi; x += kThreads) out[x] = x;
    finish_runs(out);
    return;
  }
  int remaining = 0;  // keys equal to the threshold that are kept
  const uint32_t threshold = radix_threshold<kThreads>(c_lo, c_hi, k_eff, key_of, s_hist, s_sel, [&]() {
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
  finish_runs(out);
}

// The same selection for up to kRegisterSelectMax entries per head: one 1024-thread CTA per head
// and job, each thread holding its contiguous part of the keys in registers, so a radix pass is
// a histogram of registers and three barriers (the cluster kernel reads its keys from global
// memory in every pass and adds the CTAs' histograms through two cluster barriers: 23.6 us at
// 8K tokens for H = 9 and 24 for H = 32, about a quarter of the vertical-slash build; this one
// 18.3 and 19.0 us; ncu on H100).
constexpr int kRegisterSelectKeys = 16;  // keys per thread
constexpr int kRegisterSelectMax = 1024 * kRegisterSelectKeys;
__global__ void __launch_bounds__(1024) select_per_head_registers_kernel(SelectJob first, SelectJob second,
                                                                          RunsJob runs, int n) {
  detail::chained_kernel_begins();
  constexpr int kThreads = 1024;
  __shared__ int s_hist[256];
  __shared__ int s_sel[2];
  __shared__ int s_warp[33];
  const SelectJob& job = blockIdx.y == 0 ? first : second;
  const int head = blockIdx.x, tid = threadIdx.x;
  const int k_eff = job.count.at(head);
  const bool with_runs = blockIdx.y == 1 && runs.run_start != nullptr;
  auto finish_runs = [&](const int32_t* offsets) {  // the second job's runs, from this CTA's output
    if (!with_runs) return;
    __syncthreads();
    offset_runs_block<kThreads>(offsets, k_eff, runs.run_start + static_cast<int64_t>(head) * job.out_stride,
                                runs.n_runs + head, s_warp);
  };
  if (k_eff == 0) {
    if (with_runs && tid == 0) runs.n_runs[head] = 0;
    return;
  }
  const float* s = job.score + static_cast<int64_t>(head) * n;
  int32_t* out = job.out + static_cast<int64_t>(head) * job.out_stride;
  if (k_eff >= n) {
    for (int x = tid; x < n; x += kThreads) out[x] = x;
    finish_runs(out);
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
  int remaining = k_eff;
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
  finish_runs(out);
}

}  // namespace

void launch_select_pair(const SelectJob& first, const SelectJob& second, const RunsJob& runs, int n_heads, int n,
                        cudaStream_t stream) {
  if (n <= kRegisterSelectMax) {
    launch_chained(select_per_head_registers_kernel, dim3(static_cast<unsigned>(n_heads), 2), 1024, 0, stream, 0, first,
                   second, runs, n);
    return;
  }
  const unsigned cluster = static_cast<unsigned>(std::clamp(sm_count() / (2 * n_heads), 1, kSelectCluster));
  launch_chained(select_per_head_kernel, dim3(static_cast<unsigned>(n_heads) * cluster, 2), 1024, 0, stream, cluster,
                 first, second, runs, n);
}

}  // namespace hc::kernels::detail

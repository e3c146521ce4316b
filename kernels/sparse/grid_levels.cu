// Selection levels of the GPU grid probe (grid_probe_device.cuh): which grid value first keeps a
// column or an offset, the columns grouped by that level, each diagonal's level and the
// diagonals grouped by it.
#include <algorithm>

#include "common/cuda_check.h"
#include "kernels/device_primitives.cuh"
#include "kernels/sparse/grid_probe_device.cuh"

namespace hc::kernels::detail {
namespace {

constexpr int kThreads = 1024;
constexpr int8_t kNoLevel = 127;  // above every level (levels < 127: grid_probe_gpu.cu checks)

// One CTA per head: every entry starts at n_levels (kept by none), then each level's list, from
// the last level down, writes its level over it; the smallest level keeping an entry writes last.
__global__ void __launch_bounds__(kThreads) selection_levels_kernel(const int32_t* lists, const int32_t* count,
                                                                    int n_levels, int n_heads, int n,
                                                                    int list_stride, int8_t* level_of) {
  const int h = blockIdx.x;
  int8_t* out = level_of + static_cast<int64_t>(h) * n;
  for (int x = threadIdx.x; x < n; x += kThreads) out[x] = static_cast<int8_t>(n_levels);
  __syncthreads();
  for (int a = n_levels - 1; a >= 0; --a) {
    const int32_t* list = lists + (static_cast<int64_t>(a) * n_heads + h) * list_stride;
    const int m = count[a];
    for (int x = threadIdx.x; x < m; x += kThreads) out[list[x]] = static_cast<int8_t>(a);
    __syncthreads();
  }
}

// One CTA per (head, level): the entries of the level's list whose level it is, compacted in order.
__global__ void __launch_bounds__(kThreads) level_groups_kernel(const int32_t* lists, const int32_t* count,
                                                                int n_heads, int list_stride, const int8_t* level_of,
                                                                int n, int32_t* groups) {
  __shared__ int s_warp[33];
  const int h = blockIdx.x, a = blockIdx.y;
  const int32_t* list = lists + (static_cast<int64_t>(a) * n_heads + h) * list_stride;
  const int8_t* level = level_of + static_cast<int64_t>(h) * n;
  int32_t* out = groups + static_cast<int64_t>(h) * list_stride + (a > 0 ? count[a - 1] : 0);
  const int m = count[a];
  int base = 0;
  for (int x0 = 0; x0 < m; x0 += kThreads) {
    const int x = x0 + static_cast<int>(threadIdx.x);
    const int entry = x < m ? list[x] : 0;
    const bool keep = x < m && level[entry] == a;
    int total = 0;
    const int pos = block_exclusive_scan<kThreads>(keep ? 1 : 0, s_warp, &total);
    if (keep) out[base + pos] = entry;
    base += total;
  }
}

// y_of[h][t] = min of offset_level[h][o] over the 64 offsets o in [t - 63, t] (o >= 0).
__global__ void __launch_bounds__(kThreads) window_levels_kernel(const int8_t* offset_level, int n, int8_t* y_of) {
  __shared__ int8_t s_level[kThreads + 63];
  const int h = blockIdx.y;
  const int t0 = blockIdx.x * kThreads;
  const int8_t* in = offset_level + static_cast<int64_t>(h) * n;
  for (int i = threadIdx.x; i < kThreads + 63; i += kThreads) {
    const int o = t0 - 63 + i;
    s_level[i] = o >= 0 && o < n ? in[o] : kNoLevel;
  }
  __syncthreads();
  const int t = t0 + static_cast<int>(threadIdx.x);
  if (t >= n) return;
  int best = kNoLevel;
  for (int w = 0; w < 64; ++w) best = min(best, static_cast<int>(s_level[threadIdx.x + w]));
  y_of[static_cast<int64_t>(h) * n + t] = static_cast<int8_t>(best);
}

// One CTA per (row block, head): its kept blocks' level.
__global__ void __launch_bounds__(128) block_levels_kernel(const int32_t* kept, const int32_t* kept_count, int cap,
                                                           int nb, int level, int8_t* block_level) {
  const int R = blockIdx.x, h = blockIdx.y;
  const int64_t slot = static_cast<int64_t>(h) * nb + R;
  int8_t* row = block_level + static_cast<int64_t>(h) * nb * (nb + 1) / 2 + static_cast<int64_t>(R) * (R + 1) / 2;
  const int count = kept_count[slot];
  for (int x = threadIdx.x; x < count; x += blockDim.x) row[kept[slot * cap + x]] = static_cast<int8_t>(level);
}

// One CTA per (head, level): the diagonals of lower levels counted (where the level's group
// starts), then the level's own compacted in order.
__global__ void __launch_bounds__(kThreads) level_lists_kernel(const int8_t* y_of, int n, int n_levels,
                                                               int32_t* groups, int32_t* end) {
  __shared__ int s_warp[33];
  const int h = blockIdx.x, b = blockIdx.y;
  const int8_t* y = y_of + static_cast<int64_t>(h) * n;
  int below = 0;
  for (int t = threadIdx.x; t < n; t += kThreads) below += y[t] < b ? 1 : 0;
  int start = 0;
  block_exclusive_scan<kThreads>(below, s_warp, &start);
  int32_t* out = groups + static_cast<int64_t>(h) * n + start;
  int base = 0;
  for (int t0 = 0; t0 < n; t0 += kThreads) {
    const int t = t0 + static_cast<int>(threadIdx.x);
    const bool keep = t < n && y[t] == b;
    int total = 0;
    const int pos = block_exclusive_scan<kThreads>(keep ? 1 : 0, s_warp, &total);
    if (keep) out[base + pos] = t;
    base += total;
  }
  if (threadIdx.x == 0) end[static_cast<int64_t>(h) * n_levels + b] = start + base;
}

}  // namespace

void launch_block_levels(const int32_t* kept, const int32_t* kept_count, int cap, int n_heads, int nb, int level,
                         int8_t* block_level, cudaStream_t stream) {
  block_levels_kernel<<<dim3(nb, n_heads), 128, 0, stream>>>(kept, kept_count, cap, nb, level, block_level);
  HC_CHECK_LAUNCH();
}

void launch_level_lists(const int8_t* y_of, int n_levels, int n_heads, int n, int32_t* groups, int32_t* end,
                        cudaStream_t stream) {
  level_lists_kernel<<<dim3(n_heads, n_levels), kThreads, 0, stream>>>(y_of, n, n_levels, groups, end);
  HC_CHECK_LAUNCH();
}

void launch_selection_levels(const int32_t* lists, const int32_t* count, int n_levels, int n_heads, int n,
                             int list_stride, int8_t* level_of, cudaStream_t stream) {
  selection_levels_kernel<<<n_heads, kThreads, 0, stream>>>(lists, count, n_levels, n_heads, n, list_stride, level_of);
  HC_CHECK_LAUNCH();
}

void launch_level_groups(const int32_t* lists, const int32_t* count, int n_levels, int n_heads, int list_stride,
                         const int8_t* level_of, int n, int32_t* groups, cudaStream_t stream) {
  level_groups_kernel<<<dim3(n_heads, n_levels), kThreads, 0, stream>>>(lists, count, n_heads, list_stride, level_of,
                                                                        n, groups);
  HC_CHECK_LAUNCH();
}

void launch_window_levels(const int8_t* offset_level, int n_heads, int n, int8_t* y_of, cudaStream_t stream) {
  window_levels_kernel<<<dim3((n + kThreads - 1) / kThreads, n_heads), kThreads, 0, stream>>>(offset_level, n, y_of);
  HC_CHECK_LAUNCH();
}

}  // namespace hc::kernels::detail

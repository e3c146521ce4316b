// Launchers of the attention kernel (kernels/attention/flash_forward.cuh): argument checks,
// dispatch over dtype x head_dim x {dense fast path, index-driven, index-driven + probe}.
#include <cuda.h>
#include <cudaTypedefs.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>

#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/attention/attention.h"
#include "kernels/attention/attention_launch.h"
#include "kernels/attention/flash_forward.cuh"
#include "kernels/attention/hopper_forward.cuh"
#include "kernels/attention/tile_columns.h"
#include "kernels/chained_launch.h"
#include "kernels/sparse/device_pool.h"

namespace hc::kernels {
namespace {

using detail::FlashArgs;

void check_params(const AttentionParams& p, const char* who) {
  const std::string w = who;
  if (p.q == nullptr || p.k == nullptr || p.v == nullptr)
    throw InputError(w, "q, k and v must be device pointers");
  if (p.head_dim != 64 && p.head_dim != 128)
    throw InputError(w, "head_dim " + std::to_string(p.head_dim) + " is unsupported (64 or 128)");
  if (p.n_tokens <= 0 || p.n_heads <= 0 || p.n_kv_heads <= 0)
    throw InputError(w, "n_tokens, n_heads and n_kv_heads must be positive");
  if (p.n_heads % p.n_kv_heads != 0)
    throw InputError(w, "n_heads " + std::to_string(p.n_heads) + " is not a multiple of n_kv_heads " +
                            std::to_string(p.n_kv_heads));
  // The kernels read and write rows in 16-byte pieces (TMA, cp.async, the Hopper O copy-out).
  for (const void* ptr : {p.q, p.k, p.v, static_cast<const void*>(p.o)})
    if (reinterpret_cast<uintptr_t>(ptr) % 16 != 0)
      throw InputError(w, "q, k, v and o must be 16-byte aligned");
  for (int64_t stride : {p.q_row_stride, p.k_row_stride, p.v_row_stride, p.o_row_stride})
    if (stride < 0 || stride % 8 != 0)
      throw InputError(w, "row strides must be non-negative multiples of 8 elements (16 bytes)");
  if (p.dtype != AttnDType::kBF16 && p.dtype != AttnDType::kFP16)
    throw InputError(w, "dtype must be bf16 or fp16");
}

FlashArgs make_args(const AttentionParams& p, int n_row_tiles) {
  FlashArgs a{};
  a.q = p.q;
  a.k = p.k;
  a.v = p.v;
  a.o = p.o;
  a.lse = p.lse;
  a.n_tokens = p.n_tokens;
  a.n_heads = p.n_heads;
  a.group = p.n_heads / p.n_kv_heads;
  a.n_row_tiles = n_row_tiles;
  const int64_t d = p.head_dim;
  a.q_stride = p.q_row_stride ? p.q_row_stride : p.n_heads * d;
  a.k_stride = p.k_row_stride ? p.k_row_stride : p.n_kv_heads * d;
  a.v_stride = p.v_row_stride ? p.v_row_stride : p.n_kv_heads * d;
  a.o_stride = p.o_row_stride ? p.o_row_stride : p.n_heads * d;
  const float scale = p.softmax_scale > 0.f ? p.softmax_scale : 1.f / std::sqrt(float(p.head_dim));
  a.scale_log2 = scale * detail::kLog2e;
  a.probe_lse = p.probe_lse;
  a.probe_recall = p.probe_recall;
  a.probe_pairs = reinterpret_cast<unsigned long long*>(p.probe_pairs);
  return a;
}

template <typename T, int D, int kWarps, int kM, bool kDense, bool kProbe>
void launch(const FlashArgs& a, cudaStream_t stream) {
  auto kernel = detail::flash_forward_kernel<T, D, kWarps, kM, kDense, kProbe>;
  constexpr int smem = detail::flash_smem_bytes<D, kWarps, kM>();
  HC_CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  const long long blocks = static_cast<long long>(a.n_row_tiles) * a.n_heads;
  if (blocks > 0x7fffffffLL) throw InputError("attention", "too many (row tile, head) pairs");
  kernel<<<static_cast<unsigned>(blocks), kWarps * 32, smem, stream>>>(a);
  HC_CHECK_LAUNCH();
}

// Calls f(TypeDim<T, D>{}) for the params' dtype and head_dim (both checked by check_params).
template <typename T, int D>
struct TypeDim {
  using Type = T;
  static constexpr int kD = D;
};
template <class F>
void for_dtype_and_dim(const AttentionParams& p, F&& f) {
  const bool bf16 = p.dtype == AttnDType::kBF16;
  if (p.head_dim == 64) {
    if (bf16) f(TypeDim<__nv_bfloat16, 64>{});
    else f(TypeDim<__half, 64>{});
  } else {
    if (bf16) f(TypeDim<__nv_bfloat16, 128>{});
    else f(TypeDim<__half, 128>{});
  }
}

template <int kWarps, int kM, bool kDense, bool kProbe>
void dispatch(const AttentionParams& p, const FlashArgs& a, cudaStream_t stream) {
  for_dtype_and_dim(p, [&](auto td) {
    using TD = decltype(td);
    launch<typename TD::Type, TD::kD, kWarps, kM, kDense, kProbe>(a, stream);
  });
}

// A 2-D bulk-copy map over Q, K or V seen as [n_tokens rows][heads * head_dim columns] (row
// stride in elements), read in boxes of 64 columns (128 bytes, the swizzle width) x box_rows
// rows, with the 128-byte swizzle the kernel's shared-memory tiles use. Rows past n_tokens read
// as 0. base is 16-byte aligned (check_params).
CUtensorMap make_row_map(const void* base, bool bf16, int64_t n_tokens, int64_t width, int64_t row_stride,
                         int box_rows) {
  static PFN_cuTensorMapEncodeTiled_v12000 encode = [] {
    void* fn = nullptr;
    cudaDriverEntryPointQueryResult found{};
    HC_CHECK_CUDA(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &fn, 12000, cudaEnableDefault, &found));
    if (fn == nullptr || found != cudaDriverEntryPointSuccess)
      throw DeviceError("cuTensorMapEncodeTiled is not available from the CUDA driver");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(fn);
  }();
  CUtensorMap map{};
  const cuuint64_t dims[2] = {static_cast<cuuint64_t>(width), static_cast<cuuint64_t>(n_tokens)};
  const cuuint64_t strides[1] = {static_cast<cuuint64_t>(row_stride) * 2};
  const cuuint32_t box[2] = {64, static_cast<cuuint32_t>(box_rows)};
  const cuuint32_t element_strides[2] = {1, 1};
  const CUresult r = encode(&map, bf16 ? CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 : CU_TENSOR_MAP_DATA_TYPE_FLOAT16, 2,
                            const_cast<void*>(base), dims, strides, box, element_strides,
                            CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                            CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  if (r != CUDA_SUCCESS)
    throw DeviceError("cuTensorMapEncodeTiled failed with CUresult " + std::to_string(static_cast<int>(r)));
  return map;
}

template <typename T, int D, bool kDense, int kStages, int kConsumers>
void launch_hopper(const FlashArgs& args, long long work_tiles, cudaStream_t stream) {
  using Traits = detail::HopperTraits<D, kDense, kStages, kConsumers>;
  auto kernel = detail::hopper_forward_kernel<T, D, kDense, kStages, kConsumers>;
  constexpr int smem = Traits::kSmemBytes;
  HC_CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  if (work_tiles > 0x7fffffffLL) throw InputError("attention", "too many (row tile, head) pairs");
  constexpr bool kBF16 = std::is_same<T, __nv_bfloat16>::value;
  const int64_t kv_width = static_cast<int64_t>(args.n_heads / args.group) * D;
  const CUtensorMap q_map = make_row_map(args.q, kBF16, args.n_tokens, int64_t(args.n_heads) * D, args.q_stride, 64);
  const CUtensorMap k_map = make_row_map(args.k, kBF16, args.n_tokens, kv_width, args.k_stride, Traits::kN);
  const CUtensorMap v_map = make_row_map(args.v, kBF16, args.n_tokens, kv_width, args.v_stride, Traits::kN);
  // Index-driven: one CTA per SM, each taking work tiles until none is left (hopper_scheduler.cuh).
  // Dense: one CTA per work tile. The tests cap the grid (detail::ScopedCtaCap) to run many work
  // tiles through few CTAs.
  FlashArgs a = args;
  long long ctas = work_tiles;
  if (!kDense) ctas = std::min<long long>(ctas, detail::sm_count());
  if (const int cap = detail::persistent_cta_cap(); cap > 0) ctas = std::min<long long>(ctas, cap);
  std::shared_ptr<int> counter;
  if (ctas < work_tiles) {
    if (a.tile_counter == nullptr) {  // the caller's (a layer plan's workspace, zero) or one of our own
      counter = detail::device_alloc<int>(2, stream, true);
      a.tile_counter = counter.get();
      HC_CHECK_CUDA(cudaMemsetAsync(a.tile_counter, 0, 2 * sizeof(int), stream));
    }
  } else {
    a.tile_counter = nullptr;
  }
  // Chained (kernels/chained_launch.h): the index-driven kernel follows the plan's last kernel.
  detail::launch_chained(kernel, static_cast<unsigned>(ctas), Traits::kThreads, smem, stream, 0, a, q_map, k_map,
                         v_map);
}

template <typename T, int D, bool kDense, int kConsumers>
void launch_hopper_stages(const FlashArgs& a, long long ctas, cudaStream_t stream) {
  // Shared-memory stages of the K/V ring. Dense (128-key stages): measured on H100 (headcal
  // bench dense, bf16, TMA loads) 3 stages 0.233 / 3.181 / 1.022 / 16.46 ms vs 2 stages 0.234 /
  // 3.208 / 1.037 / 16.38 (8K and 32K, d = 64 and 128): within noise, but at 128K, d = 128,
  // 255 vs 274 ms. Index-driven (64-key stages, some gathered by cp.async, with a longer
  // latency): 8, or as many as fit next to the two Q buffers (4 at d = 128 with three consumers;
  // 5 with two, before d = 128 took three); at d = 64, 11 (all
  // that fit) and 8 were within noise of each other (H100, 128K and 32K, 5 configurations). At
  // d = 128 with three consumers, 3 and 5 stages (one Q buffer) were within noise of 4 too
  // (geomean 1.005 and 1.009 over the 18 d = 128 points of headcal bench sparse, kernel ms).
  // Dense at d = 64 with 4 or 6 stages (the pipelined consumers hold one more) was within 1% of 3. Issuing the next tile's QK^T before
  // this tile's softmax was tried and lost 15-35%: two score buffers spill at d = 128 (1.625 vs
  // 1.022 ms at 8K); the overlap the dense kernel has is PV under the next softmax
  // (hopper_consumer.cuh).
  constexpr int kStages = std::min(kDense ? 3 : 8, detail::HopperShape<D, kDense, kConsumers>::max_stages());
  launch_hopper<T, D, kDense, kStages, kConsumers>(a, ctas, stream);
}

// `consumers` = detail::hopper_consumers(head_dim, kDense, ...), which also sized a.n_row_tiles.
template <bool kDense>
void dispatch_hopper(const AttentionParams& p, const FlashArgs& a, long long ctas, int consumers,
                     cudaStream_t stream) {
  for_dtype_and_dim(p, [&](auto td) {
    using TD = decltype(td);
    using T = typename TD::Type;
    constexpr int kD = TD::kD;
    if constexpr (kDense) {
      launch_hopper_stages<T, kD, true, detail::hopper_consumers(kD, true, false)>(a, ctas, stream);
    } else if constexpr (kD == 128) {
      launch_hopper_stages<T, kD, false, detail::hopper_consumers(kD, false, false)>(a, ctas, stream);
    } else {
      if (consumers == 3) launch_hopper_stages<T, kD, false, 3>(a, ctas, stream);
      else launch_hopper_stages<T, kD, false, 2>(a, ctas, stream);
    }
  });
}

__global__ void probe_finalize_kernel(double* recall, int n_heads, double inv_n) {
  const int h = blockIdx.x * blockDim.x + threadIdx.x;
  if (h < n_heads) recall[h] *= inv_n;
}

void check_index(const AttentionParams& p, const SparseIndexView& index, const char* who) {
  if (index.n_heads != p.n_heads || index.n_tokens != p.n_tokens)
    throw InputError(who, "index shape (" + std::to_string(index.n_heads) + " heads, " +
                              std::to_string(index.n_tokens) + " tokens) does not match the attention (" +
                              std::to_string(p.n_heads) + ", " + std::to_string(p.n_tokens) + ")");
  if (index.range_offsets == nullptr || index.col_offsets == nullptr)
    throw InputError(who, "index offsets must be device pointers");
}

FlashArgs index_args(const AttentionParams& p, const SparseIndexView& index) {
  FlashArgs a = make_args(p, static_cast<int>(num_row_blocks(p.n_tokens)));
  a.range_offsets = index.range_offsets;
  a.range_begin = index.range_begin;
  a.range_end = index.range_end;
  a.col_offsets = index.col_offsets;
  a.cols = index.cols;
  a.band_sink = index.band_sink;
  a.band_local = index.band_local;
  return a;
}

}  // namespace

namespace detail {

namespace {
std::atomic<int> g_cta_cap{0};
}
int persistent_cta_cap() { return g_cta_cap.load(std::memory_order_relaxed); }
ScopedCtaCap::ScopedCtaCap(int ctas) : previous_(g_cta_cap.exchange(ctas)) {}
ScopedCtaCap::~ScopedCtaCap() { g_cta_cap.store(previous_); }

int sparse_blocks_per_tile(int head_dim, bool row_blocks_share_tiles) {
  return hopper_consumers(head_dim, false, row_blocks_share_tiles);
}

void sparse_attention_prepared(const AttentionParams& p, const SparseIndexView& index, const int32_t* tile_entries,
                               const int32_t* tile_entry_counts, int* tile_counter, cudaStream_t stream) {
  check_params(p, "sparse_attention_forward");
  check_index(p, index, "sparse_attention_forward");
  if (p.probe_lse != nullptr) throw InputError("sparse_attention_forward", "probe mode runs the probe kernel");
  // Work tiles of (head, blocks_per_tile consecutive 64-row blocks), taken by persistent CTAs in
  // KV-group order (FlashArgs::kv_group_order).
  const int blocks_per_tile = sparse_blocks_per_tile(static_cast<int>(p.head_dim), index.row_blocks_share_tiles);
  FlashArgs tiled = index_args(p, index);
  tiled.n_row_tiles = static_cast<int>(num_work_row_tiles(p.n_tokens, blocks_per_tile));
  tiled.kv_group_order = 1;
  tiled.tile_entries = tile_entries;
  tiled.tile_entry_counts = tile_entry_counts;
  tiled.tile_counter = tile_counter;
  dispatch_hopper<false>(p, tiled, static_cast<long long>(tiled.n_row_tiles) * p.n_heads, blocks_per_tile, stream);
}

}  // namespace detail

// Dense path: the Hopper kernel (hopper_forward.cuh), 192-row (d = 64) or 128-row (d = 128)
// CTAs, 128-key tiles (speeds on H100: headcal bench dense, docs/PERFORMANCE.md).
void dense_attention_forward(const AttentionParams& p, cudaStream_t stream) {
  check_params(p, "dense_attention_forward");
  if (p.probe_lse != nullptr)
    throw InputError("dense_attention_forward", "probe mode needs sparse_attention_forward");
  const int consumers = detail::hopper_consumers(static_cast<int>(p.head_dim), true, false);
  const int n_tiles = static_cast<int>(num_work_row_tiles(p.n_tokens, consumers));
  dispatch_hopper<true>(p, make_args(p, n_tiles), static_cast<long long>(n_tiles) * p.n_heads, consumers, stream);
}

void sparse_attention_forward(const AttentionParams& p, const SparseIndexView& index,
                              cudaStream_t stream) {
  check_params(p, "sparse_attention_forward");
  check_index(p, index, "sparse_attention_forward");
  if (p.probe_lse != nullptr) {
    if (p.probe_recall == nullptr || p.probe_pairs == nullptr)
      throw InputError("sparse_attention_forward", "probe mode needs probe_recall and probe_pairs");
    HC_CHECK_CUDA(cudaMemsetAsync(p.probe_recall, 0, sizeof(double) * p.n_heads, stream));
    HC_CHECK_CUDA(cudaMemsetAsync(p.probe_pairs, 0, sizeof(long long) * p.n_heads, stream));
    dispatch<4, 1, false, true>(p, index_args(p, index), stream);
    probe_finalize_kernel<<<(p.n_heads + 127) / 128, 128, 0, stream>>>(p.probe_recall, p.n_heads,
                                                                         1.0 / p.n_tokens);
    HC_CHECK_LAUNCH();
    return;
  }
  // The blocks' gathered columns, merged (tile_columns.h), each key loaded once for all
  // consumers. vertical_slash(3500,100) at 128K, d = 128, H100, kernel only: 16.1 ms with each
  // block's columns in stages of their own, 13.2 merged (21.2 before stages whose keys are all
  // both blocks' skipped the per-key mask); the merge pass itself 0.44 ms (ncu). Loading each
  // block's stages for one consumer only, alternating, was 17.8.
  // The merge's room: the column count, or a bound on it (the merge writes below the count).
  int64_t col_room = index.total_cols >= 0 ? index.total_cols : index.col_capacity;
  if (col_room < 0) {
    int32_t last = 0;
    const int64_t n_slots = static_cast<int64_t>(p.n_heads) * num_row_blocks(p.n_tokens);
    HC_CHECK_CUDA(cudaMemcpyAsync(&last, index.col_offsets + n_slots, sizeof(last), cudaMemcpyDeviceToHost, stream));
    HC_CHECK_CUDA(cudaStreamSynchronize(stream));
    col_room = last;
  }
  TileColumnsDevice tile_columns;
  if (col_room > 0) {
    const int blocks_per_tile =
        detail::sparse_blocks_per_tile(static_cast<int>(p.head_dim), index.row_blocks_share_tiles);
    tile_columns = merge_tile_columns_gpu(index, blocks_per_tile, col_room, stream);
  }
  detail::sparse_attention_prepared(p, index, tile_columns.entries.get(), tile_columns.counts.get(), nullptr, stream);
}

}  // namespace hc::kernels

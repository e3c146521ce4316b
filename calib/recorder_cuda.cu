// CUDA streaming recorder (see calib/recorder.h for the statistics and the map cell mapping).
//
// One CTA per (query head, 64-row block), looping over the causal 64-key blocks (each block from
// its own start, wrapping around; the next K tile loads by cp.async during this one). Eight warps,
// each 16 rows x 32 keys of a tile: S = Q K^T by mma.sync into registers, P = exp(scale*S - lse)
// masked causally, there too. Then:
//   - column sums over the warp's rows of each map row cell, by shuffles, added into `cell_cols`
//     (shared); its column sums give colmass (64 global atomics per tile), its runs of equal
//     column cell, summed by a segmented scan across each warp, the map (usually 2 global atomics
//     per tile at long N, one per warp);
//   - P written to shared memory skewed (row r, key c at column (c - r) mod 64), where each column
//     holds two diagonals split at one row: summed by four threads each, 127 global atomics per
//     tile.
// Two barriers per tile: `cell_cols` is double-buffered (a buffer is cleared the tile after it
// is read). Global accumulators are fp32: a colmass entry gets at most N / 64 tile contributions.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "calib/recorder.h"
#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/attention/flash_forward.cuh"
#include "kernels/device_primitives.cuh"

namespace hc {
namespace {

using kernels::detail::copy_tile_rows;
using kernels::detail::cp_async_commit;
using kernels::detail::cp_async_wait;
using kernels::detail::ldmatrix_x4;
using kernels::detail::load_q_fragments;
using kernels::detail::MmaOp;
using kernels::detail::smem_addr;

constexpr int kTile = 64;      // rows and keys per tile (B in DESIGN.md)
constexpr int kWarps = 8;      // warp w: rows 16 (w / 2) .. +16, keys 32 (w % 2) .. +32 of a tile
constexpr int kThreads = kWarps * 32;
// Skewed P rows, floats: pitch = 8 (mod 32 banks) makes the diagonal walk's reads (four rows
// 1 apart, eight columns) conflict-free; the writes are at most 2-way.
constexpr int kSkewPitch = kTile + 8;

template <int D>
struct Smem {
  static constexpr size_t q_bytes = sizeof(__nv_bfloat16) * kTile * D;  // swizzled [64, D]
  static constexpr size_t k_bytes = 2 * q_bytes;                        // double-buffered
  static constexpr size_t p_bytes = sizeof(float) * kTile * kSkewPitch;
  static constexpr size_t cell_bytes = 2 * sizeof(float) * kTile * kTile;  // [2][row cell slot, column]
  static constexpr size_t misc_bytes = sizeof(float) * kTile + 2 * sizeof(int) * kTile;
  static constexpr size_t total = q_bytes + k_bytes + p_bytes + cell_bytes + misc_bytes;
};

struct RecorderArgs {
  const __nv_bfloat16* q;  // [N, q_stride], head h at column h*D
  const __nv_bfloat16* k;  // [N, k_stride], kv head at column kvh*D
  const float* lse;        // [H, N]
  float* colmass;          // [H, N]
  float* diagmass;         // [H, N]
  float* map;              // [H, M, M]
  int n_tokens, n_heads, group, cells;
  long long q_stride, k_stride;
  float scale_log2;  // softmax scale * log2(e)
  int n_row_blocks;
};

template <int D>
__global__ void __launch_bounds__(kThreads) recorder_kernel(RecorderArgs a) {
  using Mma = MmaOp<__nv_bfloat16>;
  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* q_s = smem;                                                    // [64][D] bf16, swizzled
  unsigned char* k_s2 = smem + Smem<D>::q_bytes;                                // [2][64][D]
  float* p_skew = reinterpret_cast<float*>(k_s2 + Smem<D>::k_bytes);           // [64][kSkewPitch]
  float* cell_cols2 = p_skew + kTile * kSkewPitch;                              // [2][64 slots][64 columns]
  float* row_lse = cell_cols2 + 2 * kTile * kTile;                              // [64] lse * log2(e)
  int* row_cell = reinterpret_cast<int*>(row_lse + kTile);                      // [64] map row cell of each row
  int* col_cell = row_cell + kTile;                                             // [64] map column cell of each key

  const int h = blockIdx.y;
  const int rb = a.n_row_blocks - 1 - blockIdx.x;  // heaviest row blocks first
  const int i0 = rb * kTile;
  const int kvh = h / a.group;
  const int n = a.n_tokens;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, t4 = lane & 3;
  const int row_group = warp >> 1, key_half = warp & 1;

  const __nv_bfloat16* k_head = a.k + static_cast<long long>(kvh) * D;
  copy_tile_rows<D, kTile, kThreads>(smem_addr(q_s), a.q + static_cast<long long>(h) * D, a.q_stride, tid,
                                     [&](int r) { return i0 + r < n ? i0 + r : -1; });
  if (tid < kTile) {
    const int i = i0 + tid;
    // Rows past N get +inf so exp() gives 0 without a branch in the hot loop.
    row_lse[tid] = i < n ? a.lse[static_cast<long long>(h) * n + i] * 1.4426950408889634f : INFINITY;
    row_cell[tid] = static_cast<int>(static_cast<long long>(min(i, n - 1)) * a.cells / n);
  }
  const int first_row_cell = static_cast<int>(static_cast<long long>(i0) * a.cells / n);
  const int last_row_cell = static_cast<int>(static_cast<long long>(min(i0 + kTile, n) - 1) * a.cells / n);
  const int n_row_slots = last_row_cell - first_row_cell + 1;
  for (int e = tid; e < 2 * n_row_slots * kTile; e += kThreads)
    cell_cols2[(e / (n_row_slots * kTile)) * kTile * kTile + e % (n_row_slots * kTile)] = 0.f;

  // CTAs resident together are neighbouring row blocks of one head: walking their key blocks from
  // the same start, they would add into the same colmass and map entries at the same time (atomics
  // to one address serialise in L2). Each starts at its own key block and wraps around instead.
  const int kb_start = static_cast<int>((static_cast<unsigned>(rb) * 2654435761u) % static_cast<unsigned>(rb + 1));
  auto key_block = [&](int step) { return kb_start + step <= rb ? kb_start + step : kb_start + step - rb - 1; };
  auto load_keys = [&](int step) {
    const int j0 = key_block(step) * kTile;
    copy_tile_rows<D, kTile, kThreads>(smem_addr(k_s2 + (step & 1) * Smem<D>::q_bytes), k_head, a.k_stride, tid,
                                       [&](int r) { return j0 + r < n ? j0 + r : -1; });
  };
  load_keys(0);
  cp_async_commit();  // Q and the first K tile

  uint32_t q_frag[D / 16][4];
  // This thread's fragment rows (local) and their map row-cell slots.
  const int r_a = 16 * row_group + g, r_b = r_a + 8;
  const float sl2 = a.scale_log2;
  for (int step = 0; step <= rb; ++step) {
    const int kb = key_block(step);
    const int j0 = kb * kTile;
    float* cell_cols = cell_cols2 + (step & 1) * kTile * kTile;
    cp_async_wait<0>();  // this step's tile (and Q)
    // Everyone is done with the step before: its K buffer, p_skew and its cell_cols buffer are free.
    __syncthreads();
    if (step < rb) load_keys(step + 1);
    cp_async_commit();
    if (step == 0) load_q_fragments<D>(q_frag, smem_addr(q_s), 16 * row_group, lane);
    if (tid < kTile) col_cell[tid] = static_cast<int>(static_cast<long long>(min(j0 + tid, n - 1)) * a.cells / n);

    // S = Q K^T: 16 rows x 32 keys; s[nb][e] is row g + 8 (e >> 1), key 32 key_half + 8 nb + 2 t4 + (e & 1).
    float s[4][4];
#pragma unroll
    for (int nb = 0; nb < 4; ++nb) s[nb][0] = s[nb][1] = s[nb][2] = s[nb][3] = 0.f;
    const uint32_t k_src = smem_addr(k_s2 + (step & 1) * Smem<D>::q_bytes);
#pragma unroll
    for (int kk = 0; kk < D / 16; ++kk) {
#pragma unroll
      for (int nb = 0; nb < 4; nb += 2) {
        uint32_t b[4];
        const int key = 32 * key_half + nb * 8 + (lane & 7) + ((lane >> 4) << 3);
        const int c = 2 * kk + ((lane >> 3) & 1);
        ldmatrix_x4(b, k_src + key * D * 2 + ((c ^ (key & 7)) << 4));
        Mma::run(s[nb], q_frag[kk], b[0], b[1]);
        Mma::run(s[nb + 1], q_frag[kk], b[2], b[3]);
      }
    }

    // P = exp2(S * scale*log2e - lse*log2e), zero outside causality and past N, written skewed.
    const bool diagonal_tile = kb == rb;
    const float lse_a = row_lse[r_a], lse_b = row_lse[r_b];
#pragma unroll
    for (int nb = 0; nb < 4; ++nb) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int r = e < 2 ? r_a : r_b, c = 32 * key_half + nb * 8 + 2 * t4 + (e & 1);
        float p = exp2f(s[nb][e] * sl2 - (e < 2 ? lse_a : lse_b));
        if ((diagonal_tile && c > r) || j0 + c >= n) p = 0.f;
        s[nb][e] = p;
        p_skew[r * kSkewPitch + ((c - r) & (kTile - 1))] = p;
      }
    }

    {  // Column sums over this warp's rows of each row-cell slot it spans, into cell_cols.
      const int slot_a = row_cell[r_a] - first_row_cell, slot_b = row_cell[r_b] - first_row_cell;
      const int slot_lo = row_cell[16 * row_group] - first_row_cell, slot_hi = row_cell[16 * row_group + 15] - first_row_cell;
      for (int slot = slot_lo; slot <= slot_hi; ++slot) {
#pragma unroll
        for (int nb = 0; nb < 4; ++nb) {
#pragma unroll
          for (int j = 0; j < 2; ++j) {
            float v = (slot_a == slot ? s[nb][j] : 0.f) + (slot_b == slot ? s[nb][j + 2] : 0.f);
            v += __shfl_xor_sync(0xffffffffu, v, 4);
            v += __shfl_xor_sync(0xffffffffu, v, 8);
            v += __shfl_xor_sync(0xffffffffu, v, 16);
            if (g == 0 && v != 0.f) atomicAdd(&cell_cols[slot * kTile + 32 * key_half + nb * 8 + 2 * t4 + j], v);
          }
        }
      }
    }
    __syncthreads();  // p_skew and cell_cols are complete

    {  // Diagonals: skewed column x holds offset dl = r - c = -x in rows r < 64 - x and 64 - x in
       // the rows below; four adjacent threads take every fourth row of one column.
      const int x = tid >> 2, part = tid & 3;
      float upper = 0.f, lower = 0.f;
#pragma unroll
      for (int k = 0; k < kTile / 4; ++k) {
        const int r = 4 * k + part;
        const float v = p_skew[r * kSkewPitch + x];
        if (r < kTile - x) upper += v;
        else lower += v;
      }
      upper += __shfl_xor_sync(0xffffffffu, upper, 1);
      upper += __shfl_xor_sync(0xffffffffu, upper, 2);
      lower += __shfl_xor_sync(0xffffffffu, lower, 1);
      lower += __shfl_xor_sync(0xffffffffu, lower, 2);
      if (part == 0) {
        const int off_upper = i0 - j0 - x, off_lower = i0 - j0 + kTile - x;
        if (upper != 0.f && off_upper >= 0 && off_upper < n)
          atomicAdd(&a.diagmass[static_cast<long long>(h) * n + off_upper], upper);
        if (x > 0 && lower != 0.f && off_lower >= 0 && off_lower < n)
          atomicAdd(&a.diagmass[static_cast<long long>(h) * n + off_lower], lower);
      }
    }
    if (tid < kTile) {  // warps 0 and 1, a column each: colmass, then the map
      const int c = tid;
      const bool real = j0 + c < n;
      float total = 0.f;
      for (int slot = 0; slot < n_row_slots; ++slot) total += cell_cols[slot * kTile + c];
      if (total != 0.f && real) atomicAdd(&a.colmass[static_cast<long long>(h) * n + j0 + c], total);
      // Map: per row-cell slot, each run of equal column cells (consecutive columns) summed by a
      // segmented inclusive scan across the warp; the run's last lane in the warp adds it.
      const int cell = col_cell[c];
      const bool run_end = lane == 31 || c == kTile - 1 || col_cell[c + 1] != cell;
      for (int slot = 0; slot < n_row_slots; ++slot) {
        float v = real ? cell_cols[slot * kTile + c] : 0.f;
#pragma unroll
        for (int off = 1; off < 32; off <<= 1) {
          const float u = __shfl_up_sync(0xffffffffu, v, off);
          const int u_cell = __shfl_up_sync(0xffffffffu, cell, off);
          if (lane >= off && u_cell == cell) v += u;
        }
        if (run_end && v != 0.f)
          atomicAdd(&a.map[(static_cast<long long>(h) * a.cells + first_row_cell + slot) * a.cells + cell], v);
      }
    }
    // The other buffer, read the step before (before this step's first barrier), is cleared for
    // the next step.
    float* next_cells = cell_cols2 + ((step + 1) & 1) * kTile * kTile;
    for (int e = tid; e < n_row_slots * kTile; e += kThreads) next_cells[e] = 0.f;
  }
  cp_async_wait<0>();
}

template <int D>
void launch_recorder(const RecorderArgs& a, cudaStream_t stream) {
  auto kernel = recorder_kernel<D>;
  constexpr int smem = static_cast<int>(Smem<D>::total);
  HC_CHECK_CUDA(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem));
  dim3 grid(static_cast<unsigned>(a.n_row_blocks), static_cast<unsigned>(a.n_heads));
  kernel<<<grid, kThreads, smem, stream>>>(a);
  HC_CHECK_LAUNCH();
}

}  // namespace

CudaRecorder::CudaRecorder(int map_size) : map_size_(map_size) {
  if (map_size < 1) throw InputError("recorder", "map size must be at least 1");
}

CudaRecorder::~CudaRecorder() {
  cudaFree(colmass_);
  cudaFree(diagmass_);
  cudaFree(map_);
}

void CudaRecorder::reserve(size_t token_elems, size_t map_elems) {
  if (token_elems > capacity_tokens_) {
    cudaFree(colmass_);
    cudaFree(diagmass_);
    colmass_ = diagmass_ = nullptr;
    capacity_tokens_ = 0;
    HC_CHECK_CUDA(cudaMalloc(&colmass_, token_elems * sizeof(float)));
    HC_CHECK_CUDA(cudaMalloc(&diagmass_, token_elems * sizeof(float)));
    capacity_tokens_ = token_elems;
  }
  if (map_elems > capacity_map_) {
    cudaFree(map_);
    map_ = nullptr;
    capacity_map_ = 0;
    HC_CHECK_CUDA(cudaMalloc(&map_, map_elems * sizeof(float)));
    capacity_map_ = map_elems;
  }
}

void CudaRecorder::record(const kernels::AttentionDims& dims, const void* q_bf16, int64_t q_row_stride,
                          const void* k_bf16, int64_t k_row_stride, const float* lse, void* stream_ptr) {
  if (dims.n_tokens <= 0 || dims.n_heads <= 0 || dims.n_kv_heads <= 0 || dims.n_heads % dims.n_kv_heads != 0)
    throw InputError("recorder", "bad attention dims (positive sizes, n_heads a multiple of n_kv_heads)");
  if (dims.head_dim != 64 && dims.head_dim != 128)
    throw InputError("recorder", "head_dim " + std::to_string(dims.head_dim) + " is unsupported on CUDA (64 or 128)");
  if (dims.n_tokens > 0x7fffffff) throw InputError("recorder", "too many tokens");
  const int64_t q_stride = q_row_stride ? q_row_stride : dims.n_heads * dims.head_dim;
  const int64_t k_stride = k_row_stride ? k_row_stride : dims.n_kv_heads * dims.head_dim;
  if (q_stride % 8 != 0 || k_stride % 8 != 0)
    throw InputError("recorder", "row strides must be multiples of 8 elements (16-byte loads)");
  auto stream = static_cast<cudaStream_t>(stream_ptr);

  n_heads_ = dims.n_heads;
  n_tokens_ = dims.n_tokens;
  cells_ = map_cells(dims.n_tokens, map_size_);
  const size_t token_elems = static_cast<size_t>(n_heads_ * n_tokens_);
  const size_t map_elems = static_cast<size_t>(n_heads_ * cells_ * cells_);
  reserve(token_elems, map_elems);
  HC_CHECK_CUDA(cudaMemsetAsync(colmass_, 0, token_elems * sizeof(float), stream));
  HC_CHECK_CUDA(cudaMemsetAsync(diagmass_, 0, token_elems * sizeof(float), stream));
  HC_CHECK_CUDA(cudaMemsetAsync(map_, 0, map_elems * sizeof(float), stream));

  RecorderArgs a{};
  a.q = static_cast<const __nv_bfloat16*>(q_bf16);
  a.k = static_cast<const __nv_bfloat16*>(k_bf16);
  a.lse = lse;
  a.colmass = colmass_;
  a.diagmass = diagmass_;
  a.map = map_;
  a.n_tokens = static_cast<int>(dims.n_tokens);
  a.n_heads = static_cast<int>(dims.n_heads);
  a.group = static_cast<int>(dims.n_heads / dims.n_kv_heads);
  a.cells = static_cast<int>(cells_);
  a.q_stride = q_stride;
  a.k_stride = k_stride;
  a.scale_log2 = (1.0f / std::sqrt(static_cast<float>(dims.head_dim))) * 1.4426950408889634f;
  a.n_row_blocks = static_cast<int>((dims.n_tokens + kTile - 1) / kTile);
  if (dims.head_dim == 64) launch_recorder<64>(a, stream);
  else launch_recorder<128>(a, stream);
}

LayerStats CudaRecorder::download(void* stream_ptr) {
  auto stream = static_cast<cudaStream_t>(stream_ptr);
  LayerStats out;
  out.n_heads = n_heads_;
  out.n_tokens = n_tokens_;
  out.map_size = cells_;
  out.colmass.resize(static_cast<size_t>(n_heads_ * n_tokens_));
  out.diagmass.resize(out.colmass.size());
  out.map.resize(static_cast<size_t>(n_heads_ * cells_ * cells_));
  HC_CHECK_CUDA(cudaMemcpyAsync(out.colmass.data(), colmass_, out.colmass.size() * sizeof(float),
                                cudaMemcpyDeviceToHost, stream));
  HC_CHECK_CUDA(cudaMemcpyAsync(out.diagmass.data(), diagmass_, out.diagmass.size() * sizeof(float),
                                cudaMemcpyDeviceToHost, stream));
  HC_CHECK_CUDA(cudaMemcpyAsync(out.map.data(), map_, out.map.size() * sizeof(float), cudaMemcpyDeviceToHost,
                                stream));
  HC_CHECK_CUDA(cudaStreamSynchronize(stream));
  return out;
}

}  // namespace hc

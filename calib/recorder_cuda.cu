// CUDA streaming recorder (see calib/recorder.h for the statistics and the map cell mapping).
//
// One block per (query head, 64-row block), looping over the causal 64-key blocks (each block from
// its own start, wrapping around; the next K tile loads by cp.async during this one). Per tile:
//   S = Q K^T on the tensor cores (WMMA bf16 -> fp32), P = exp(scale*S - lse) masked causally,
//   then three reductions from shared memory:
//   - rows are summed per (map row cell, column) into `cell_cols` (shared atomics); its column
//     sums give colmass (64 global atomics per tile), its segments of equal column cell give the
//     map (1..64 global atomics per tile, usually 1-4 at long N);
//   - each of the 127 local diagonals is summed by a pair of threads (127 global atomics per tile).
// Global accumulators are fp32: a colmass entry gets at most N / 64 tile contributions.
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "calib/recorder.h"
#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/device_primitives.cuh"

namespace hc {
namespace {

using kernels::detail::cp_async_16;
using kernels::detail::cp_async_commit;
using kernels::detail::smem_addr;

constexpr int kTile = 64;      // rows and keys per tile (B in DESIGN.md)
constexpr int kThreads = 256;  // 8 warps: each computes a 16 x 32 slice of S
constexpr int kSPitch = kTile + 4;  // floats; WMMA stores need a multiple of 4
constexpr int kPPitch = kTile + 1;  // floats; odd pitch keeps column and diagonal walks conflict-free

template <int D>
struct Smem {
  static constexpr int kQKPitch = D + 8;  // bf16; multiple of 8 for WMMA loads, breaks bank aliasing
  static constexpr size_t q_bytes = sizeof(__nv_bfloat16) * kTile * kQKPitch;
  static constexpr size_t k_bytes = 2 * q_bytes;  // double-buffered: the next tile loads during this one
  static constexpr size_t s_bytes = sizeof(float) * kTile * kSPitch;
  static constexpr size_t p_bytes = sizeof(float) * kTile * kPPitch;
  static constexpr size_t cell_bytes = sizeof(float) * kTile * kTile;  // [row cell slot, column]
  static constexpr size_t misc_bytes = sizeof(float) * kTile + 2 * sizeof(int) * kTile;
  static constexpr size_t total = q_bytes + k_bytes + s_bytes + p_bytes + cell_bytes + misc_bytes;
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

// Starts loading a [64, D] bf16 tile (rows past n_tokens as zeros) with 16-byte cp.async; the
// caller commits and waits.
template <int D>
__device__ void load_tile_async(__nv_bfloat16* dst, const __nv_bfloat16* src, long long stride, int first_row,
                                int n_tokens) {
  constexpr int kVecPerRow = D / 8;
  for (int v = threadIdx.x; v < kTile * kVecPerRow; v += kThreads) {
    const int r = v / kVecPerRow, c = (v % kVecPerRow) * 8;
    const bool valid = first_row + r < n_tokens;
    const __nv_bfloat16* from = valid ? src + static_cast<long long>(first_row + r) * stride + c : src;
    cp_async_16(smem_addr(dst + r * Smem<D>::kQKPitch + c), from, valid);
  }
}

template <int D>
__global__ void __launch_bounds__(kThreads) recorder_kernel(RecorderArgs a) {
  using namespace nvcuda;
  using kernels::detail::cp_async_wait;
  extern __shared__ __align__(128) unsigned char smem[];  // WMMA pointers need 32-byte alignment
  __nv_bfloat16* q_s = reinterpret_cast<__nv_bfloat16*>(smem);                       // [64, D+8]
  __nv_bfloat16* k_s2 = reinterpret_cast<__nv_bfloat16*>(smem + Smem<D>::q_bytes);    // [2][64, D+8]
  float* s_s = reinterpret_cast<float*>(smem + Smem<D>::q_bytes + Smem<D>::k_bytes);  // [64, 68]
  float* p_s = s_s + kTile * kSPitch;                                                  // [64, 65]
  float* cell_cols = p_s + kTile * kPPitch;  // [64 row-cell slots, 64 columns]
  float* row_lse = cell_cols + kTile * kTile;                           // [64] lse * log2(e)
  int* row_cell = reinterpret_cast<int*>(row_lse + kTile);              // [64] map row cell of each row
  int* col_cell = row_cell + kTile;                                     // [64] map column cell of each key

  const int h = blockIdx.y;
  const int rb = a.n_row_blocks - 1 - blockIdx.x;  // heaviest row blocks first
  const int i0 = rb * kTile;
  const int kvh = h / a.group;
  const int n = a.n_tokens;
  const int tid = threadIdx.x;
  const int warp = tid / 32;

  const __nv_bfloat16* k_head = a.k + static_cast<long long>(kvh) * D;
  load_tile_async<D>(q_s, a.q + static_cast<long long>(h) * D, a.q_stride, i0, n);
  if (tid < kTile) {
    const int i = i0 + tid;
    // Rows past N get +inf so exp() gives 0 without a branch in the hot loop.
    row_lse[tid] = i < n ? a.lse[static_cast<long long>(h) * n + i] * 1.4426950408889634f : INFINITY;
    row_cell[tid] = static_cast<int>(static_cast<long long>(min(i, n - 1)) * a.cells / n);
  }
  const int first_row_cell = static_cast<int>(static_cast<long long>(i0) * a.cells / n);

  // CTAs resident together are neighbouring row blocks of one head: walking their key blocks from
  // the same start, they would add into the same colmass and map entries at the same time (atomics
  // to one address serialise in L2). Each starts at its own key block and wraps around instead.
  const int kb_start = static_cast<int>((static_cast<unsigned>(rb) * 2654435761u) % static_cast<unsigned>(rb + 1));
  auto key_block = [&](int step) { return kb_start + step <= rb ? kb_start + step : kb_start + step - rb - 1; };
  load_tile_async<D>(k_s2, k_head, a.k_stride, key_block(0) * kTile, n);
  cp_async_commit();  // Q and the first K tile
  for (int step = 0; step <= rb; ++step) {
    const int kb = key_block(step);
    const int j0 = kb * kTile;
    __nv_bfloat16* k_s = k_s2 + (step & 1) * kTile * Smem<D>::kQKPitch;
    if (step < rb)  // the buffer the step before read, free since its last barrier
      load_tile_async<D>(k_s2 + ((step + 1) & 1) * kTile * Smem<D>::kQKPitch, k_head, a.k_stride,
                         key_block(step + 1) * kTile, n);
    cp_async_commit();
    if (tid < kTile) col_cell[tid] = static_cast<int>(static_cast<long long>(min(j0 + tid, n - 1)) * a.cells / n);
    cp_async_wait<1>();  // this step's tile (and Q) are in
    __syncthreads();

    {  // S = Q K^T: warp w computes rows (w/2)*16 .. +16, columns (w%2)*32 .. +32.
      const int r0 = (warp / 2) * 16, c0 = (warp % 2) * 32;
      wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc0, acc1;
      wmma::fill_fragment(acc0, 0.f);
      wmma::fill_fragment(acc1, 0.f);
#pragma unroll
      for (int kk = 0; kk < D; kk += 16) {
        wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> qa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> kb0, kb1;
        wmma::load_matrix_sync(qa, q_s + r0 * Smem<D>::kQKPitch + kk, Smem<D>::kQKPitch);
        wmma::load_matrix_sync(kb0, k_s + c0 * Smem<D>::kQKPitch + kk, Smem<D>::kQKPitch);
        wmma::load_matrix_sync(kb1, k_s + (c0 + 16) * Smem<D>::kQKPitch + kk, Smem<D>::kQKPitch);
        wmma::mma_sync(acc0, qa, kb0, acc0);
        wmma::mma_sync(acc1, qa, kb1, acc1);
      }
      wmma::store_matrix_sync(s_s + r0 * kSPitch + c0, acc0, kSPitch, wmma::mem_row_major);
      wmma::store_matrix_sync(s_s + r0 * kSPitch + c0 + 16, acc1, kSPitch, wmma::mem_row_major);
    }
    __syncthreads();

    // P = exp2(S * scale*log2e - lse*log2e), zero outside causality and past N; clear cell_cols.
    const bool diagonal_tile = kb == rb;
    for (int e = tid; e < kTile * kTile; e += kThreads) {
      const int r = e / kTile, c = e % kTile;
      float p = exp2f(s_s[r * kSPitch + c] * a.scale_log2 - row_lse[r]);
      if ((diagonal_tile && c > r) || j0 + c >= n) p = 0.f;
      p_s[r * kPPitch + c] = p;
      cell_cols[e] = 0.f;
    }
    __syncthreads();

    {  // Column walk: thread (group g, column c) sums rows g*16 .. +16, flushing at row-cell changes.
      const int c = tid % kTile, g = tid / kTile;
      float acc = 0.f;
      for (int r = g * 16; r < g * 16 + 16; ++r) {
        acc += p_s[r * kPPitch + c];
        if (r == g * 16 + 15 || row_cell[r + 1] != row_cell[r]) {
          if (acc != 0.f) atomicAdd(&cell_cols[(row_cell[r] - first_row_cell) * kTile + c], acc);
          acc = 0.f;
        }
      }
    }
    {  // Diagonal walk: local offset dl = r - c in [-63, 63], a pair of adjacent threads each;
       // all 256 threads reach the shuffle (the last two carry no diagonal).
      const bool has_diag = tid < 2 * (2 * kTile - 1);
      const int dl = tid / 2 - (kTile - 1), half = tid % 2;
      const int r_begin = max(0, dl), r_end = has_diag ? min(kTile, kTile + dl) : 0;  // rows with 0 <= r-dl < 64
      const int r_mid = (r_begin + r_end) / 2;
      float acc = 0.f;
      for (int r = half ? r_mid : r_begin; r < (half ? r_end : r_mid); ++r) acc += p_s[r * kPPitch + r - dl];
      acc += __shfl_xor_sync(0xffffffffu, acc, 1);
      const int offset = i0 - j0 + dl;
      if (has_diag && half == 0 && acc != 0.f && offset >= 0 && offset < n)
        atomicAdd(&a.diagmass[static_cast<long long>(h) * n + offset], acc);
    }
    __syncthreads();

    const int n_row_slots = row_cell[kTile - 1] - first_row_cell + 1;
    if (tid < kTile) {  // colmass: all row-cell slots of this column
      float acc = 0.f;
      for (int s = 0; s < n_row_slots; ++s) acc += cell_cols[s * kTile + tid];
      if (acc != 0.f && j0 + tid < n) atomicAdd(&a.colmass[static_cast<long long>(h) * n + j0 + tid], acc);
    }
    // Map: the first column of each run of equal column cells sums the run.
    for (int e = tid; e < n_row_slots * kTile; e += kThreads) {
      const int s = e / kTile, c = e % kTile;
      if (j0 + c >= n || (c > 0 && col_cell[c] == col_cell[c - 1])) continue;
      float acc = 0.f;
      for (int x = c; x < kTile && col_cell[x] == col_cell[c] && j0 + x < n; ++x) acc += cell_cols[s * kTile + x];
      if (acc != 0.f)
        atomicAdd(&a.map[(static_cast<long long>(h) * a.cells + first_row_cell + s) * a.cells + col_cell[c]], acc);
    }
    __syncthreads();  // k_s, p_s and cell_cols are rewritten by the next tile
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

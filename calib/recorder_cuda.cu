// CUDA streaming recorder (see calib/recorder.h for the statistics and the map cell mapping).
//
// One CTA of four warps per (query head, 64-row block), looping over the causal 64-key blocks as
// the mma.sync attention kernel does (kernels/attention/flash_forward.cuh: Q fragments in
// registers, K tiles double-buffered through cp.async). Per tile, P = exp(scale*S - lse) stays in
// the warps' fragments and each weight goes, by shared-memory atomics, to its (map row cell,
// column) sum and to its local diagonal's; then
//   - colmass: the column sums over the row cells (64 global atomics per tile),
//   - map: each run of equal column cells summed per row cell (1..64 global atomics per tile,
//     usually 1-4 at long N),
//   - diagmass: the 127 local diagonals (127 global atomics per tile).
// Global accumulators are fp32: a colmass entry gets at most N / 64 tile contributions.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <string>

#include "calib/recorder.h"
#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/attention/flash_forward.cuh"

namespace hc {
namespace {

using kernels::detail::copy_tile_rows;
using kernels::detail::exp2_ftz;

constexpr int kTile = 64;      // rows and keys per tile (B in DESIGN.md)
constexpr int kThreads = 128;  // 4 warps of 16 rows
constexpr int kDiagonals = 2 * kTile - 1;

template <int D>
constexpr int recorder_smem_bytes() {
  return 3 * kTile * D * 2;  // Q, and K double-buffered
}

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

// Register budget: no O accumulator, so Q fragments and one S tile; shared memory (Q, two K tiles,
// 16 KB of sums) lets 3 CTAs share an SM at d = 128.
template <int D>
__global__ void __launch_bounds__(kThreads, 3) recorder_kernel(RecorderArgs a) {
  constexpr int kRowBytes = D * 2;
  extern __shared__ __align__(128) unsigned char smem[];
  unsigned char* sQ = smem;                       // [64][D] swizzled
  unsigned char* sK = sQ + kTile * kRowBytes;     // [2][64][D] swizzled
  __shared__ float cell_cols[kTile * kTile];      // [row-cell slot][column] of this tile
  __shared__ float diag[kDiagonals];              // [r - c + 63] of this tile
  __shared__ int row_cell[kTile];                 // map row cell of each row

  const int h = blockIdx.y;
  const int rb = a.n_row_blocks - 1 - blockIdx.x;  // heaviest row blocks first
  const int i0 = rb * kTile;
  const int kvh = h / a.group;
  const int n = a.n_tokens;
  const int tid = threadIdx.x, warp = tid >> 5, lane = tid & 31;
  const int g = lane >> 2, t4 = lane & 3;

  const __nv_bfloat16* q_base = a.q + static_cast<long long>(h) * D;
  const __nv_bfloat16* k_base = a.k + static_cast<long long>(kvh) * D;
  copy_tile_rows<D, kTile, kThreads>(kernels::detail::smem_addr(sQ), q_base, a.q_stride, tid,
                                     [&](int r) { return i0 + r < n ? i0 + r : -1; });
  auto load_keys = [&](int kb, int stage) {
    const int j0 = kb * kTile;
    copy_tile_rows<D, kTile, kThreads>(kernels::detail::smem_addr(sK + stage * kTile * kRowBytes), k_base,
                                       a.k_stride, tid, [&](int r) { return j0 + r < n ? j0 + r : -1; });
  };
  load_keys(0, 0);
  kernels::detail::cp_async_commit();

  if (tid < kTile) row_cell[tid] = static_cast<int>(static_cast<long long>(min(i0 + tid, n - 1)) * a.cells / n);
  for (int e = tid; e < kTile * kTile; e += kThreads) cell_cols[e] = 0.f;
  for (int e = tid; e < kDiagonals; e += kThreads) diag[e] = 0.f;
  const int first_row_cell = static_cast<int>(static_cast<long long>(i0) * a.cells / n);
  const int r_last = min(n, i0 + kTile) - 1;
  const int n_row_slots = static_cast<int>(static_cast<long long>(r_last) * a.cells / n) - first_row_cell + 1;

  const int row_local[2] = {warp * 16 + g, warp * 16 + g + 8};
  float lse2[2];
#pragma unroll
  for (int ri = 0; ri < 2; ++ri) {
    const int row = i0 + row_local[ri];
    lse2[ri] = row < n ? a.lse[static_cast<long long>(h) * n + row] * kernels::detail::kLog2e : 0.f;
  }
  uint32_t q_frag[D / 16][4];

  for (int kb = 0; kb <= rb; ++kb) {
    const int stage = kb & 1, j0 = kb * kTile;
    if (kb < rb) load_keys(kb + 1, stage ^ 1);
    kernels::detail::cp_async_commit();
    kernels::detail::cp_async_wait<1>();
    __syncthreads();
    if (kb == 0) kernels::detail::load_q_fragments<D>(q_frag, kernels::detail::smem_addr(sQ), warp * 16, lane);

    // S = Q K^T for this warp's 16 rows x 64 keys.
    float s[8][4];
    kernels::detail::warp_scores<__nv_bfloat16, D>(s, q_frag, kernels::detail::smem_addr(sK + stage * kTile * kRowBytes),
                                                   lane);

    // P = exp2(S * scale*log2e - lse*log2e) on the causal pairs of real rows and keys, into the
    // tile's (row cell, column) and diagonal sums.
#pragma unroll
    for (int nb = 0; nb < 8; ++nb) {
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const int c = nb * 8 + 2 * t4 + (e & 1), r = row_local[e >> 1];
        const int row = i0 + r, key = j0 + c;
        if (row >= n || key > row) continue;
        const float p = exp2_ftz(fmaf(s[nb][e], a.scale_log2, -lse2[e >> 1]));
        if (p == 0.f) continue;
        atomicAdd(&cell_cols[(row_cell[r] - first_row_cell) * kTile + c], p);
        atomicAdd(&diag[r - c + kTile - 1], p);
      }
    }
    __syncthreads();

    if (tid < kTile && j0 + tid < n) {  // colmass: all row-cell slots of this column
      float acc = 0.f;
      for (int slot = 0; slot < n_row_slots; ++slot) acc += cell_cols[slot * kTile + tid];
      if (acc != 0.f) atomicAdd(&a.colmass[static_cast<long long>(h) * n + j0 + tid], acc);
    }
    // Map: the first column of each run of equal column cells sums the run.
    auto col_cell = [&](int c) { return static_cast<int>(static_cast<long long>(min(j0 + c, n - 1)) * a.cells / n); };
    for (int e = tid; e < n_row_slots * kTile; e += kThreads) {
      const int slot = e / kTile, c = e % kTile;
      const int cell = col_cell(c);
      if (j0 + c >= n || (c > 0 && col_cell(c - 1) == cell)) continue;
      float acc = 0.f;
      for (int x = c; x < kTile && j0 + x < n && col_cell(x) == cell; ++x) acc += cell_cols[slot * kTile + x];
      if (acc != 0.f)
        atomicAdd(&a.map[(static_cast<long long>(h) * a.cells + first_row_cell + slot) * a.cells + cell], acc);
    }
    for (int d = tid; d < kDiagonals; d += kThreads) {  // local diagonal r - c = d - 63
      const float acc = diag[d];
      const int offset = i0 - j0 + d - (kTile - 1);
      if (acc != 0.f && offset >= 0 && offset < n) atomicAdd(&a.diagmass[static_cast<long long>(h) * n + offset], acc);
    }
    __syncthreads();
    for (int e = tid; e < n_row_slots * kTile; e += kThreads) cell_cols[e] = 0.f;
    for (int e = tid; e < kDiagonals; e += kThreads) diag[e] = 0.f;
    // The next tile's loads go to this stage's buffer after the barrier at its top; the sums are
    // zero before its atomics (also after that barrier).
  }
  kernels::detail::cp_async_wait<0>();
}

template <int D>
void launch_recorder(const RecorderArgs& a, cudaStream_t stream) {
  auto kernel = recorder_kernel<D>;
  constexpr int smem = recorder_smem_bytes<D>();
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

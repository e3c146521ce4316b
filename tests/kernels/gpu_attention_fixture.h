#pragma once
// Shared by the GPU kernel tests: device buffers, bf16/fp16 inputs, structured Q/K
// (with their exact float values for the CPU references), index upload and comparison.
#if defined(HEADCAL_HAVE_CUDA)
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "common/cuda_check.h"
#include "catch.h"
#include "kernels/attention/attention.h"
#include "kernels/attention/attention_launch.h"
#include "kernels/attention/attention_ref.h"
#include "kernels/sparse/sparse_index.h"

namespace hc::test {

template <typename T>
class DeviceArray {
 public:
  DeviceArray() = default;
  explicit DeviceArray(size_t n) { resize(n); }
  explicit DeviceArray(const std::vector<T>& host) { upload(host); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  ~DeviceArray() {
    if (ptr_) cudaFree(ptr_);
  }
  void resize(size_t n) {
    if (ptr_) cudaFree(ptr_);
    ptr_ = nullptr;
    size_ = n;
    HC_CHECK_CUDA(cudaMalloc(&ptr_, std::max<size_t>(1, n) * sizeof(T)));
  }
  void upload(const std::vector<T>& host) {
    resize(host.size());
    if (!host.empty())
      HC_CHECK_CUDA(cudaMemcpy(ptr_, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice));
  }
  std::vector<T> download() const {
    std::vector<T> host(size_);
    HC_CHECK_CUDA(cudaDeviceSynchronize());
    if (size_) HC_CHECK_CUDA(cudaMemcpy(host.data(), ptr_, size_ * sizeof(T), cudaMemcpyDeviceToHost));
    return host;
  }
  void fill_bytes(int byte) { HC_CHECK_CUDA(cudaMemset(ptr_, byte, std::max<size_t>(1, size_) * sizeof(T))); }
  T* get() const { return ptr_; }
  size_t size() const { return size_; }

 private:
  T* ptr_ = nullptr;
  size_t size_ = 0;
};

// 16-bit storage of one of the kernel dtypes, plus the float value of every stored element.
struct HalfTensor {
  std::vector<uint16_t> bits;
  std::vector<float> values;
};

inline HalfTensor to_half(const std::vector<float>& x, kernels::AttnDType dtype) {
  HalfTensor t;
  t.bits.resize(x.size());
  t.values.resize(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    if (dtype == kernels::AttnDType::kBF16) {
      __nv_bfloat16 b = __float2bfloat16_rn(x[i]);
      std::memcpy(&t.bits[i], &b, 2);
      t.values[i] = __bfloat162float(b);
    } else {
      __half b = __float2half_rn(x[i]);
      std::memcpy(&t.bits[i], &b, 2);
      t.values[i] = __half2float(b);
    }
  }
  return t;
}

inline std::vector<float> from_half(const std::vector<uint16_t>& bits, kernels::AttnDType dtype) {
  std::vector<float> out(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) {
    if (dtype == kernels::AttnDType::kBF16) {
      __nv_bfloat16_raw raw;
      raw.x = bits[i];
      out[i] = __bfloat162float(__nv_bfloat16(raw));
    } else {
      __half_raw raw;
      raw.x = bits[i];
      out[i] = __half2float(__half(raw));
    }
  }
  return out;
}

inline std::vector<float> random_normal(size_t n, uint32_t seed, float scale) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> x(n);
  for (auto& v : x) v = dist(rng);
  return x;
}

// Q/K/V of one attention problem, on host (exact float values) and device (16-bit).
struct AttentionProblem {
  kernels::AttentionDims dims;
  kernels::AttnDType dtype = kernels::AttnDType::kBF16;
  HalfTensor q, k, v;
  DeviceArray<uint16_t> dq, dk, dv;

  AttentionProblem(int64_t n, int64_t heads, int64_t kv_heads, int64_t d, kernels::AttnDType dt,
                   uint32_t seed, float qk_scale = 1.5f) {
    dims = {n, heads, kv_heads, d};
    dtype = dt;
    q = to_half(random_normal(n * heads * d, seed, qk_scale), dt);
    k = to_half(random_normal(n * kv_heads * d, seed + 1, qk_scale), dt);
    v = to_half(random_normal(n * kv_heads * d, seed + 2, 1.f), dt);
    upload();
  }
  AttentionProblem(const kernels::AttentionDims& d, kernels::AttnDType dt, const std::vector<float>& qf,
                   const std::vector<float>& kf, const std::vector<float>& vf) {
    dims = d;
    dtype = dt;
    q = to_half(qf, dt);
    k = to_half(kf, dt);
    v = to_half(vf, dt);
    upload();
  }
  void upload() {
    dq.upload(q.bits);
    dk.upload(k.bits);
    dv.upload(v.bits);
  }
  kernels::AttentionParams params(uint16_t* o, float* lse) const {
    kernels::AttentionParams p;
    p.q = dq.get();
    p.k = dk.get();
    p.v = dv.get();
    p.o = o;
    p.lse = lse;
    p.n_tokens = static_cast<int>(dims.n_tokens);
    p.n_heads = static_cast<int>(dims.n_heads);
    p.n_kv_heads = static_cast<int>(dims.n_kv_heads);
    p.head_dim = static_cast<int>(dims.head_dim);
    p.dtype = dtype;
    return p;
  }
};

// A host SparseIndex copied to the device; view() points at the device copies.
struct DeviceIndex {
  int64_t n_heads = 0, n_tokens = 0;
  DeviceArray<int32_t> range_offsets, range_begin, range_end, col_offsets, cols, band_sink, band_local;
  bool has_band = false;
  int64_t total_cols = 0;
  bool announce_total_cols = true;  // false: the view leaves total_cols unknown (-1)
  int64_t announce_capacity = -1;    // with total_cols unknown: the view's col_capacity (-1: none)
  bool row_blocks_share_tiles = false;  // the host index's hint; tests may force it either way
  explicit DeviceIndex(const kernels::SparseIndex& host) {
    row_blocks_share_tiles = host.row_blocks_share_tiles;
    total_cols = static_cast<int64_t>(host.cols.size());
    n_heads = host.n_heads;
    n_tokens = host.n_tokens;
    range_offsets.upload(host.range_offsets);
    range_begin.upload(host.range_begin);
    range_end.upload(host.range_end);
    col_offsets.upload(host.col_offsets);
    cols.upload(host.cols);
    has_band = !host.band_local.empty();
    if (has_band) {
      band_sink.upload(host.band_sink);
      band_local.upload(host.band_local);
    }
  }
  kernels::SparseIndexView view() const {
    kernels::SparseIndexView v;
    v.n_heads = n_heads;
    v.n_tokens = n_tokens;
    v.range_offsets = range_offsets.get();
    v.range_begin = range_begin.get();
    v.range_end = range_end.get();
    v.col_offsets = col_offsets.get();
    v.cols = cols.get();
    v.band_sink = has_band ? band_sink.get() : nullptr;
    v.band_local = has_band ? band_local.get() : nullptr;
    v.total_cols = announce_total_cols ? total_cols : -1;
    v.col_capacity = announce_total_cols ? total_cols : announce_capacity;
    v.row_blocks_share_tiles = row_blocks_share_tiles;
    return v;
  }
};

struct ErrorStats {
  double max_abs = 0;
  double mean_abs = 0;
  double max_ref = 0;
  bool finite = true;
};

inline ErrorStats compare(const std::vector<float>& got, const std::vector<float>& ref) {
  ErrorStats e;
  double sum = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    if (!std::isfinite(got[i]) && !(std::isinf(got[i]) && got[i] == ref[i])) e.finite = false;
    const double diff = (std::isinf(ref[i]) && got[i] == ref[i]) ? 0.0 : std::fabs(double(got[i]) - ref[i]);
    e.max_abs = std::max(e.max_abs, diff);
    sum += diff;
    if (std::isfinite(ref[i])) e.max_ref = std::max(e.max_ref, std::fabs(double(ref[i])));
  }
  e.mean_abs = ref.empty() ? 0 : sum / ref.size();
  return e;
}

inline const char* dtype_name(kernels::AttnDType dt) {
  return dt == kernels::AttnDType::kBF16 ? "bf16" : "fp16";
}

// Q/K with structure (a few sink keys, position-periodic components, noise), so that the
// estimators find sinks and diagonals rather than noise, and score gaps make top-k ties unlikely.
inline std::vector<float> structured(int64_t n, int64_t heads, int64_t d, bool is_key, uint32_t seed) {
  std::vector<float> x = random_normal(n * heads * d, seed, 0.6f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t h = 0; h < heads; ++h) {
      float* row = x.data() + (i * heads + h) * d;
      // Rotary-like pairs: q_i . k_j gains sum_f cos(w_f (i - j)), a function of i - j only.
      for (int64_t f = 0; f < 4; ++f) {
        const double w = 0.9 / std::pow(7.0, double(f)) * (1 + 0.1 * h);
        row[2 * f] += 1.4f * float(std::cos(w * i));
        row[2 * f + 1] += 1.4f * float(std::sin(w * i));
      }
      // Sinks: the first few keys share a direction every query has.
      if (!is_key) row[d - 1] += 1.5f;
      else if (i < 3) row[d - 1] += 3.0f - i;
    }
  return x;
}

inline AttentionProblem structured_problem(int64_t n, int64_t h, int64_t hkv, int64_t d, kernels::AttnDType dt,
                                           uint32_t seed) {
  return AttentionProblem({n, h, hkv, d}, dt, structured(n, h, d, false, seed),
                          structured(n, hkv, d, true, seed + 1), random_normal(n * hkv * d, seed + 2, 1.f));
}

// Two indexes hold the same arrays and hint.
inline void check_same_index(const kernels::SparseIndex& got, const kernels::SparseIndex& want) {
  REQUIRE(got.n_heads == want.n_heads);
  REQUIRE(got.n_tokens == want.n_tokens);
  CHECK(got.range_offsets == want.range_offsets);
  CHECK(got.range_begin == want.range_begin);
  CHECK(got.range_end == want.range_end);
  CHECK(got.col_offsets == want.col_offsets);
  CHECK(got.cols == want.cols);
  CHECK(got.band_sink == want.band_sink);
  CHECK(got.band_local == want.band_local);
  CHECK(got.row_blocks_share_tiles == want.row_blocks_share_tiles);
}

}  // namespace hc::test
#endif

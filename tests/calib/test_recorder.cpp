// The attention recorder: CPU reference against a brute-force N x N computation, its invariants,
// and the CUDA streaming recorder against the CPU reference.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "calib/recorder.h"
#include "catch.h"
#include "common/error.h"
#include "kernels/attention/attention_ref.h"

#if defined(HEADCAL_HAVE_CUDA)
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#endif

namespace {

using hc::kernels::AttentionDims;

// Rounds to the nearest bf16 value (ties to even), so CPU and GPU see the same inputs.
float round_bf16(float x) {
  uint32_t u;
  std::memcpy(&u, &x, 4);
  u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
  float r;
  std::memcpy(&r, &u, 4);
  return r;
}

struct Inputs {
  AttentionDims dims;
  std::vector<float> q;    // [N, H, d]
  std::vector<float> k;    // [N, KV, d]
  std::vector<float> lse;  // [H, N]
};

// q/k with a spread of scores (std ~2) so P is far from uniform; lse from the dense reference.
Inputs make_inputs(int64_t n, int64_t heads, int64_t kv_heads, int64_t d, uint32_t seed) {
  Inputs in;
  in.dims = {n, heads, kv_heads, d};
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.f, 1.5f);
  in.q.resize(static_cast<size_t>(n * heads * d));
  in.k.resize(static_cast<size_t>(n * kv_heads * d));
  for (float& x : in.q) x = round_bf16(normal(rng));
  for (float& x : in.k) x = round_bf16(normal(rng));
  std::vector<float> v(in.k.size(), 0.f), o(in.q.size());
  in.lse.resize(static_cast<size_t>(heads * n));
  hc::kernels::dense_attention_ref(in.dims, in.q.data(), in.k.data(), v.data(), o.data(), in.lse.data(), 2);
  return in;
}

// Brute force in double: materialises each head's N x N probabilities with its own softmax.
hc::LayerStats brute_force(const Inputs& in, int map_size) {
  const int64_t n = in.dims.n_tokens, heads = in.dims.n_heads, d = in.dims.head_dim;
  const int64_t group = heads / in.dims.n_kv_heads;
  const int64_t cells = hc::map_cells(n, map_size);
  hc::LayerStats s;
  s.n_heads = heads;
  s.n_tokens = n;
  s.map_size = cells;
  std::vector<double> col(static_cast<size_t>(heads * n)), diag(col.size()),
      map(static_cast<size_t>(heads * cells * cells));
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> score(static_cast<size_t>(i + 1));
      double mx = -1e300;
      for (int64_t j = 0; j <= i; ++j) {
        double dot = 0;
        for (int64_t t = 0; t < d; ++t)
          dot += double(in.q[static_cast<size_t>((i * heads + h) * d + t)]) *
                 in.k[static_cast<size_t>((j * in.dims.n_kv_heads + h / group) * d + t)];
        score[static_cast<size_t>(j)] = dot / std::sqrt(double(d));
        mx = std::max(mx, score[static_cast<size_t>(j)]);
      }
      double z = 0;
      for (double x : score) z += std::exp(x - mx);
      for (int64_t j = 0; j <= i; ++j) {
        const double p = std::exp(score[static_cast<size_t>(j)] - mx) / z;
        col[static_cast<size_t>(h * n + j)] += p;
        diag[static_cast<size_t>(h * n + i - j)] += p;
        map[static_cast<size_t>((h * cells + i * cells / n) * cells + j * cells / n)] += p;
      }
    }
  }
  s.colmass.assign(col.begin(), col.end());
  s.diagmass.assign(diag.begin(), diag.end());
  s.map.assign(map.begin(), map.end());
  return s;
}

void require_close(const std::vector<float>& got, const std::vector<float>& want, double rel, double abs_tol) {
  REQUIRE(got.size() == want.size());
  double worst = 0;
  size_t worst_at = 0;
  for (size_t x = 0; x < got.size(); ++x) {
    const double err = std::fabs(double(got[x]) - want[x]) - rel * std::fabs(want[x]);
    if (err > worst) {
      worst = err;
      worst_at = x;
    }
  }
  INFO("worst at " << worst_at << ": got " << got[worst_at] << " want " << want[worst_at]);
  REQUIRE(worst <= abs_tol);
}

void require_invariants(const hc::LayerStats& s, double tol) {
  const int64_t m = s.map_size;
  for (int64_t h = 0; h < s.n_heads; ++h) {
    INFO("head " << h << " N " << s.n_tokens);
    CHECK(hc::sum_head(s.colmass, h, s.n_tokens) == Approx(double(s.n_tokens)).epsilon(tol));
    CHECK(hc::sum_head(s.diagmass, h, s.n_tokens) == Approx(double(s.n_tokens)).epsilon(tol));
    CHECK(hc::sum_head(s.map, h, m * m) == Approx(double(s.n_tokens)).epsilon(tol));
  }
}

}  // namespace

TEST_CASE("map cells: min(map_size, N) cells, token t in floor(t*M/N)", "[recorder]") {
  CHECK(hc::map_cells(1000, 128) == 128);
  CHECK(hc::map_cells(37, 128) == 37);
  CHECK(hc::map_cell(0, 1000, 128) == 0);
  CHECK(hc::map_cell(999, 1000, 128) == 127);
  CHECK(hc::map_cell(36, 37, 37) == 36);
  // Every cell is hit when M <= N.
  std::vector<int> hits(128, 0);
  for (int64_t t = 0; t < 1000; ++t) hits[static_cast<size_t>(hc::map_cell(t, 1000, 128))]++;
  for (int h : hits) CHECK((h == 7 || h == 8));
}

TEST_CASE("CPU recorder matches a brute-force N x N computation", "[recorder]") {
  struct Case {
    int64_t n, heads, kv, d;
    int map_size;
  };
  const Case cases[] = {
      {1, 2, 1, 64, 16},   {37, 4, 2, 64, 16},   {37, 3, 3, 128, 64},  // N < map size: N x N map
      {130, 4, 1, 128, 16}, {97, 6, 2, 64, 7},                          // odd cells, GQA 4 and 3
  };
  for (const Case& c : cases) {
    INFO("N " << c.n << " H " << c.heads << " KV " << c.kv << " d " << c.d << " map " << c.map_size);
    const Inputs in = make_inputs(c.n, c.heads, c.kv, c.d, static_cast<uint32_t>(c.n * 31 + c.d));
    hc::RecorderOptions opt;
    opt.map_size = c.map_size;
    opt.n_threads = 3;
    const hc::LayerStats got = hc::record_attention_cpu(in.dims, in.q.data(), in.k.data(), in.lse.data(), opt);
    const hc::LayerStats want = brute_force(in, c.map_size);
    REQUIRE(got.map_size == want.map_size);
    require_close(got.colmass, want.colmass, 1e-4, 1e-5);
    require_close(got.diagmass, want.diagmass, 1e-4, 1e-5);
    require_close(got.map, want.map, 1e-4, 1e-5);
    require_invariants(got, 1e-5);
  }
}

TEST_CASE("CPU recorder: results do not depend on the thread count", "[recorder]") {
  const Inputs in = make_inputs(75, 4, 2, 64, 7);
  hc::RecorderOptions one, many;
  one.n_threads = 1;
  many.n_threads = 5;
  const auto a = hc::record_attention_cpu(in.dims, in.q.data(), in.k.data(), in.lse.data(), one);
  const auto b = hc::record_attention_cpu(in.dims, in.q.data(), in.k.data(), in.lse.data(), many);
  require_close(a.colmass, b.colmass, 1e-6, 1e-7);
  require_close(a.diagmass, b.diagmass, 1e-6, 1e-7);
  require_close(a.map, b.map, 1e-6, 1e-7);
  // Causality: the first token's column gets mass from every row; diagonal 0 holds row 0 fully.
  CHECK(a.diagmass[0] >= 1.0f - 1e-5f);
}

TEST_CASE("CPU recorder rejects inconsistent dims", "[recorder]") {
  std::vector<float> x(64 * 3, 0.f), lse(3, 0.f);
  hc::kernels::AttentionDims bad{1, 3, 2, 64};  // 3 heads over 2 kv heads
  CHECK_THROWS_AS(hc::record_attention_cpu(bad, x.data(), x.data(), lse.data()), hc::InputError);
  hc::RecorderOptions opt;
  opt.map_size = 0;
  hc::kernels::AttentionDims ok{1, 3, 3, 64};
  CHECK_THROWS_AS(hc::record_attention_cpu(ok, x.data(), x.data(), lse.data(), opt), hc::InputError);
}

#if defined(HEADCAL_HAVE_CUDA)
namespace {

std::vector<__nv_bfloat16> to_bf16(const std::vector<float>& x) {
  std::vector<__nv_bfloat16> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = __float2bfloat16(x[i]);  // exact: x is bf16-rounded
  return out;
}

template <typename T>
T* upload(const std::vector<T>& host) {
  T* dev = nullptr;
  REQUIRE(cudaMalloc(&dev, host.size() * sizeof(T)) == cudaSuccess);
  REQUIRE(cudaMemcpy(dev, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice) == cudaSuccess);
  return dev;
}

}  // namespace

TEST_CASE("CUDA recorder matches the CPU recorder", "[recorder][gpu]") {
  HC_REQUIRE_GPU();
  struct Case {
    int64_t n, heads, kv, d;
    int map_size;
  };
  const Case cases[] = {
      {1, 2, 1, 64, 128},  {37, 4, 2, 64, 128},  {64, 3, 1, 128, 16},
      {200, 6, 2, 64, 7},  {333, 4, 4, 128, 128}, {1100, 8, 2, 128, 128},  // N > M and N < M, odd N
  };
  hc::CudaRecorder recorder(128);
  for (const Case& c : cases) {
    INFO("N " << c.n << " H " << c.heads << " KV " << c.kv << " d " << c.d << " map " << c.map_size);
    const Inputs in = make_inputs(c.n, c.heads, c.kv, c.d, static_cast<uint32_t>(c.n + 5 * c.d));
    auto* q = upload(to_bf16(in.q));
    auto* k = upload(to_bf16(in.k));
    float* lse = upload(in.lse);
    hc::CudaRecorder sized(c.map_size);
    sized.record(in.dims, q, 0, k, 0, lse, nullptr);
    const hc::LayerStats got = sized.download(nullptr);
    hc::RecorderOptions opt;
    opt.map_size = c.map_size;
    const hc::LayerStats want = hc::record_attention_cpu(in.dims, in.q.data(), in.k.data(), in.lse.data(), opt);
    REQUIRE(got.map_size == want.map_size);
    require_close(got.colmass, want.colmass, 2e-4, 2e-4);
    require_close(got.diagmass, want.diagmass, 2e-4, 2e-4);
    require_close(got.map, want.map, 2e-4, 2e-4);
    require_invariants(got, 1e-4);
    // The shared recorder reuses its buffers across shapes.
    recorder.record(in.dims, q, 0, k, 0, lse, nullptr);
    const hc::LayerStats again = recorder.download(nullptr);
    require_invariants(again, 1e-4);
    cudaFree(q);
    cudaFree(k);
    cudaFree(lse);
  }
}

TEST_CASE("CUDA recorder reads strided q/k (as in a fused QKV buffer)", "[recorder][gpu]") {
  HC_REQUIRE_GPU();
  const Inputs in = make_inputs(150, 4, 2, 64, 99);
  const int64_t n = 150, qw = 4 * 64, kw = 2 * 64, stride = qw + kw + 8;
  std::vector<float> packed(static_cast<size_t>(n * stride), 0.f);  // [N, q | k | pad]
  for (int64_t t = 0; t < n; ++t) {
    std::copy_n(in.q.begin() + t * qw, qw, packed.begin() + t * stride);
    std::copy_n(in.k.begin() + t * kw, kw, packed.begin() + t * stride + qw);
  }
  auto* buf = upload(to_bf16(packed));
  float* lse = upload(in.lse);
  hc::CudaRecorder recorder(16);
  recorder.record(in.dims, buf, stride, buf + qw, stride, lse, nullptr);
  const hc::LayerStats got = recorder.download(nullptr);
  hc::RecorderOptions opt;
  opt.map_size = 16;
  const hc::LayerStats want = hc::record_attention_cpu(in.dims, in.q.data(), in.k.data(), in.lse.data(), opt);
  require_close(got.colmass, want.colmass, 2e-4, 2e-4);
  require_close(got.diagmass, want.diagmass, 2e-4, 2e-4);
  require_close(got.map, want.map, 2e-4, 2e-4);
  cudaFree(buf);
  cudaFree(lse);
}
#endif

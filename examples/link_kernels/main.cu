// Links the installed headcal::kernels package, runs the dense kernel and a layer whose heads mix
// patterns through plan/run (kernels/sparse/layer_plan.h) on a small random problem, and checks
// both outputs against the library's own CPU references. Exit 0 when they match.
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cmath>
#include <cstdio>
#include <random>
#include <vector>

#include <kernels/headcal_kernels.h>

namespace hk = hc::kernels;

int main() {
  const int n = 300, heads = 4, kv_heads = 2, d = 64;
  std::mt19937 rng(1);
  std::normal_distribution<float> normal(0.f, 1.f);
  auto make = [&](size_t count, std::vector<__nv_bfloat16>& bits, std::vector<float>& values) {
    bits.resize(count);
    values.resize(count);
    for (size_t i = 0; i < count; ++i) {
      bits[i] = __float2bfloat16(normal(rng));
      values[i] = __bfloat162float(bits[i]);
    }
  };
  std::vector<__nv_bfloat16> qb, kb, vb;
  std::vector<float> qf, kf, vf;
  make(size_t(n) * heads * d, qb, qf);     // q [N, H, d]
  make(size_t(n) * kv_heads * d, kb, kf);  // k [N, Hkv, d]
  make(size_t(n) * kv_heads * d, vb, vf);  // v [N, Hkv, d]

  void *q, *k, *v, *o;
  float* lse;
  cudaMalloc(&q, qb.size() * 2);
  cudaMalloc(&k, kb.size() * 2);
  cudaMalloc(&v, vb.size() * 2);
  cudaMalloc(&o, qb.size() * 2);
  cudaMalloc(&lse, sizeof(float) * n * heads);
  cudaMemcpy(q, qb.data(), qb.size() * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(k, kb.data(), kb.size() * 2, cudaMemcpyHostToDevice);
  cudaMemcpy(v, vb.data(), vb.size() * 2, cudaMemcpyHostToDevice);

  try {
    hk::AttentionParams p;
    p.q = q;
    p.k = k;
    p.v = v;
    p.o = o;
    p.lse = lse;
    p.n_tokens = n;
    p.n_heads = heads;
    p.n_kv_heads = kv_heads;
    p.head_dim = d;
    p.dtype = hk::AttnDType::kBF16;
    hk::dense_attention_forward(p);

    std::vector<__nv_bfloat16> out(qb.size());
    cudaMemcpy(out.data(), o, out.size() * 2, cudaMemcpyDeviceToHost);
    std::vector<float> ref(qb.size());
    hk::dense_attention_ref({n, heads, kv_heads, d}, qf.data(), kf.data(), vf.data(), ref.data(), nullptr);
    double max_err = 0;
    for (size_t i = 0; i < ref.size(); ++i)
      max_err = std::fmax(max_err, std::fabs(__bfloat162float(out[i]) - ref[i]));

    // A layer whose heads follow different patterns: planned once (workspace for up to n tokens),
    // then plan (the index, on the device) and run (one attention launch) per layer.
    const std::vector<hk::PatternConfig> layer = {{hk::Pattern::a_shape, 4, 64},
                                                  {hk::Pattern::vertical_slash, 30, 100},
                                                  {hk::Pattern::block_sparse, 2, 0},
                                                  {hk::Pattern::dense, 0, 0}};
    hk::LayerPlanner planner({layer}, hk::LayerShape{n, heads, kv_heads, d});
    planner.plan(0, hk::GpuQK{q, k, hk::AttnDType::kBF16, n, heads, kv_heads, d});
    planner.run(p);
    cudaMemcpy(out.data(), o, out.size() * 2, cudaMemcpyDeviceToHost);
    const hk::SparseIndex index = hk::build_index(qf.data(), kf.data(), {n, heads, kv_heads, d}, layer);
    hk::sparse_attention_ref({n, heads, kv_heads, d}, qf.data(), kf.data(), vf.data(), index.view(), ref.data(),
                             nullptr);
    double sparse_err = 0;
    for (size_t i = 0; i < ref.size(); ++i)
      sparse_err = std::fmax(sparse_err, std::fabs(__bfloat162float(out[i]) - ref[i]));
    std::printf("dense kernel vs CPU reference: max abs error %.4g; planned mixed layer vs CPU reference: %.4g\n",
                max_err, sparse_err);
    return max_err < 0.05 && sparse_err < 0.05 ? 0 : 1;
  } catch (const hc::Error& e) {
    std::fprintf(stderr, "link_kernels: %s\n", e.what());
    return 3;
  }
}

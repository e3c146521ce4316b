// `headcal bench dense|sparse`: times headcal's attention kernels on synthetic but structured
// inputs (CUDA events, one warm-up, median of several runs).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_attention.h"
#include "common/cuda_check.h"
#include "common/error.h"
#include "kernels/attention/attention.h"
#include "kernels/attention/stage_walk.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/index_gpu.h"

namespace hc::bench {
namespace {

using kernels::AttnDType;

__device__ __forceinline__ float hash_normal(uint64_t x) {
  // Two splitmix64 draws -> Box-Muller: reproducible noise without a generator state.
  auto mix = [](uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
  const uint64_t a = mix(x), b = mix(x ^ 0x5851f42d4c957f2dull);
  const float u1 = (static_cast<float>(a >> 40) + 1.f) / 16777217.f;
  const float u2 = static_cast<float>(b >> 40) / 16777216.f;
  return sqrtf(-2.f * logf(u1)) * cospif(2.f * u2);
}

// Realistic-looking attention inputs [N, heads, d]: a rotary-like position code in the first 8
// dimensions (q_i . k_j gets sum_f c^2 cos(w_f (i - j)): strong local and periodic diagonals),
// sink keys 0..3 sharing a direction every query has, and Gaussian noise. Amplitudes are scaled
// by d so the scaled scores are of order 1 at every head_dim.
template <typename T>
__global__ void fill_structured_kernel(T* x, int64_t n, int heads, int d, int role, uint32_t seed) {
  const int64_t total = n * heads * d;
  for (int64_t idx = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; idx < total;
       idx += int64_t(gridDim.x) * blockDim.x) {
    const int c = static_cast<int>(idx % d);
    const int h = static_cast<int>((idx / d) % heads);
    const int64_t i = idx / (int64_t(heads) * d);
    float v = hash_normal(idx * 0x2545F4914F6CDD1Dull + seed);
    if (role != 2) {  // q (0) or k (1)
      const float root_d = sqrtf(static_cast<float>(d));
      v *= 0.5f;
      if (c < 8) {
        const int f = c / 2;
        const float w = 0.9f / powf(7.f, static_cast<float>(f)) * (1.f + 0.05f * h);
        const float amp = sqrtf(0.75f * root_d);
        float sn, cs;
        sincosf(w * static_cast<float>(i), &sn, &cs);
        v += amp * ((c & 1) ? sn : cs);
      } else if (c == d - 1) {
        if (role == 0) v += sqrtf(4.f * root_d) * 0.5f;
        else if (i < 4) v += sqrtf(4.f * root_d) * 2.f;
      }
    }
    x[idx] = static_cast<T>(v);
  }
}

template <typename T>
void fill_structured(void* x, int64_t n, int heads, int d, int role, uint32_t seed) {
  fill_structured_kernel<T><<<1024, 256>>>(static_cast<T*>(x), n, heads, d, role, seed);
  HC_CHECK_LAUNCH();
}

class DeviceMemory {
 public:
  explicit DeviceMemory(size_t bytes) { HC_CHECK_CUDA(cudaMalloc(&p_, std::max<size_t>(bytes, 1))); }
  ~DeviceMemory() { cudaFree(p_); }
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  void* get() const { return p_; }

 private:
  void* p_ = nullptr;
};

// Median milliseconds of `fn` over enough runs to fill ~seconds (3..30 runs), after one warm-up.
double time_ms(const std::function<void()>& fn, double seconds) {
  cudaEvent_t a, b;
  HC_CHECK_CUDA(cudaEventCreate(&a));
  HC_CHECK_CUDA(cudaEventCreate(&b));
  auto once = [&]() {
    HC_CHECK_CUDA(cudaEventRecord(a));
    fn();
    HC_CHECK_CUDA(cudaEventRecord(b));
    HC_CHECK_CUDA(cudaEventSynchronize(b));
    float ms = 0;
    HC_CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
    return static_cast<double>(ms);
  };
  const double first = once();  // warm-up (also sizes the number of runs)
  const int reps = std::clamp(static_cast<int>(seconds * 1000.0 / std::max(first, 1e-3)), 3, 30);
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) t.push_back(once());
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Shape {
  int n, d, heads, kv_heads;
};

std::vector<Shape> shapes(const KernelBenchOptions& o) {
  std::vector<Shape> out;
  for (int d : o.d_list) {
    if (d != 64 && d != 128) throw InputError("bench", "--d must be 64 or 128");
    const int h = o.heads > 0 ? o.heads : (d == 128 ? 32 : 9);
    const int hkv = o.kv_heads > 0 ? o.kv_heads : (o.heads > 0 ? o.heads : (d == 128 ? 8 : 3));
    if (h % hkv != 0) throw InputError("bench", "--heads must be a multiple of --kv-heads");
    for (int n : o.n_list) {
      if (n < 1) throw InputError("bench", "--n values must be positive");
      out.push_back({n, d, h, hkv});
    }
  }
  return out;
}

double dense_flops(const Shape& s) { return 4.0 * double(s.n) * s.n * s.d * s.heads / 2.0; }

// The inputs of one shape, on the device.
struct Inputs {
  Shape shape;
  AttnDType dtype;
  DeviceMemory q, k, v, o, lse;
  Inputs(const Shape& s, AttnDType dt)
      : shape(s),
        dtype(dt),
        q(size_t(s.n) * s.heads * s.d * 2),
        k(size_t(s.n) * s.kv_heads * s.d * 2),
        v(size_t(s.n) * s.kv_heads * s.d * 2),
        o(size_t(s.n) * s.heads * s.d * 2),
        lse(size_t(s.n) * s.heads * 4) {
    auto fill = dt == AttnDType::kBF16 ? fill_structured<__nv_bfloat16> : fill_structured<__half>;
    fill(q.get(), s.n, s.heads, s.d, 0, 11u);
    fill(k.get(), s.n, s.kv_heads, s.d, 1, 22u);
    fill(v.get(), s.n, s.kv_heads, s.d, 2, 33u);
    HC_CHECK_CUDA(cudaDeviceSynchronize());
  }
  kernels::AttentionParams params() const {
    kernels::AttentionParams p;
    p.q = q.get();
    p.k = k.get();
    p.v = v.get();
    p.o = o.get();
    p.lse = static_cast<float*>(lse.get());
    p.n_tokens = shape.n;
    p.n_heads = shape.heads;
    p.n_kv_heads = shape.kv_heads;
    p.head_dim = shape.d;
    p.dtype = dtype;
    return p;
  }
  kernels::GpuQK qk() const {
    kernels::GpuQK g;
    g.q = q.get();
    g.k = k.get();
    g.dtype = dtype;
    g.n_tokens = shape.n;
    g.n_heads = shape.heads;
    g.n_kv_heads = shape.kv_heads;
    g.head_dim = shape.d;
    return g;
  }
};

std::string device_name() {
  int dev = 0;
  HC_CHECK_CUDA(cudaGetDevice(&dev));
  cudaDeviceProp prop{};
  HC_CHECK_CUDA(cudaGetDeviceProperties(&prop, dev));
  return prop.name;
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out;
}

SdpaBaseline load_baseline(const KernelBenchOptions& o) {
  return o.baseline_json.empty() ? SdpaBaseline{} : read_sdpa_baseline(o.baseline_json);
}

}  // namespace

int bench_dense(const KernelBenchOptions& options) {
  const auto all = shapes(options);
  const SdpaBaseline base = load_baseline(options);
  const AttnDType dt = options.fp16 ? AttnDType::kFP16 : AttnDType::kBF16;
  const std::string dev = device_name();
  std::printf("headcal bench dense on %s (%s, causal, batch 1)\n", dev.c_str(), options.fp16 ? "fp16" : "bf16");
  std::printf("%8s %4s %5s %4s %10s %8s %12s %12s %14s\n", "N", "d", "H", "Hkv", "ms", "TF/s", "vs SDPA-FA2",
              "vs cuDNN", "via-index ms");
  std::ostringstream js;
  js << "{\"device\": \"" << json_escape(dev) << "\", \"kind\": \"dense\", \"dtype\": \""
     << (options.fp16 ? "fp16" : "bf16") << "\", \"results\": [";
  bool first = true;
  for (const Shape& s : all) {
    Inputs in(s, dt);
    const auto p = in.params();
    const double ms = time_ms([&] { kernels::dense_attention_forward(p); }, options.seconds_per_point);
    const double tf = dense_flops(s) / (ms * 1e-3) / 1e12;
    // The index-driven kernel (64-row CTAs) with a dense index: the sparse kernel's peak.
    const kernels::DeviceSparseIndex dense_index = kernels::build_dense_index_gpu(s.n, s.heads);
    const kernels::SparseIndexView dense_view = dense_index.view();
    const double idx_ms =
        time_ms([&] { kernels::sparse_attention_forward(p, dense_view); }, options.seconds_per_point);
    const SdpaPoint* fa2 = base.find(s.n, s.d, s.heads, "flash");
    const SdpaPoint* cudnn = base.find(s.n, s.d, s.heads, "cudnn");
    // Speed ratio: > 1 means headcal is faster.
    const double r_fa2 = fa2 ? fa2->ms / ms : 0, r_cudnn = cudnn ? cudnn->ms / ms : 0;
    std::printf("%8d %4d %5d %4d %10.3f %8.1f %12s %12s %14.3f\n", s.n, s.d, s.heads, s.kv_heads, ms, tf,
                fa2 ? (std::to_string(r_fa2).substr(0, 5) + "x").c_str() : "-",
                cudnn ? (std::to_string(r_cudnn).substr(0, 5) + "x").c_str() : "-", idx_ms);
    std::fflush(stdout);
    js << (first ? "" : ",") << "\n  {\"n\": " << s.n << ", \"d\": " << s.d << ", \"heads\": " << s.heads
       << ", \"kv_heads\": " << s.kv_heads << ", \"ms\": " << ms << ", \"tflops\": " << tf << ", \"via_index_ms\": " << idx_ms;
    if (fa2) js << ", \"sdpa_flash_ms\": " << fa2->ms << ", \"speed_vs_flash\": " << r_fa2;
    if (cudnn) js << ", \"sdpa_cudnn_ms\": " << cudnn->ms << ", \"speed_vs_cudnn\": " << r_cudnn;
    js << "}";
    first = false;
  }
  js << "\n]}\n";
  if (!options.json_out.empty()) write_text_atomically(options.json_out, js.str());
  return 0;
}

int bench_sparse(const KernelBenchOptions& options) {
  using kernels::DeviceSparseIndex;
  using kernels::Pattern;
  using kernels::PatternConfig;
  // MInference's usual configurations (TARGETS.md) unless --config names others.
  std::vector<PatternConfig> configs = {{Pattern::vertical_slash, 1000, 6096}, {Pattern::vertical_slash, 30, 800},
                                        {Pattern::vertical_slash, 3500, 100},  {Pattern::block_sparse, 100, 0},
                                        {Pattern::a_shape, 100, 800},          {Pattern::a_shape, 128, 3968}};
  if (!options.configs.empty()) {
    configs.clear();
    for (const std::string& text : options.configs) {
      configs.push_back(kernels::parse_config(text, "--config"));
      if (configs.back().pattern == Pattern::dense)
        throw InputError("--config", "'" + text + "': dense is the baseline every row is compared with");
    }
  }
  const auto all = shapes(options);
  const SdpaBaseline base = load_baseline(options);
  const AttnDType dt = options.fp16 ? AttnDType::kFP16 : AttnDType::kBF16;
  const std::string dev = device_name();
  std::printf("headcal bench sparse on %s (%s, causal, batch 1; time = GPU index build + kernel)\n", dev.c_str(),
              options.fp16 ? "fp16" : "bf16");
  std::printf("%7s %4s %4s %-22s %8s %9s %9s %9s %8s %9s %9s %9s %6s %6s\n", "N", "d", "H", "config", "density",
              "build ms", "kern ms", "total ms", "TF/s*", "vs dense", "vs cuDNN", "thr/cuDNN", "fill", "share");
  std::ostringstream js;
  js << "{\"device\": \"" << json_escape(dev) << "\", \"kind\": \"sparse\", \"results\": [";
  bool first = true;
  for (const Shape& s : all) {
    Inputs in(s, dt);
    const auto p = in.params();
    const double dense_ms = time_ms([&] { kernels::dense_attention_forward(p); }, options.seconds_per_point);
    const SdpaPoint* cudnn = base.find(s.n, s.d, s.heads, "cudnn");
    const kernels::GpuQK qk = in.qk();
    for (const PatternConfig& c : configs) {
      const std::string name = kernels::describe(c);
      std::function<DeviceSparseIndex()> build;
      if (c.pattern == Pattern::vertical_slash)
        build = [&] { return kernels::build_vertical_slash_index_gpu(qk, c.p1, c.p2); };
      else if (c.pattern == Pattern::block_sparse)
        build = [&] { return kernels::build_block_sparse_index_gpu(qk, c.p1); };
      else
        build = [&] { return kernels::build_a_shape_index_gpu(s.n, s.heads, c.p1, c.p2); };
      DeviceSparseIndex index = build();
      // The kernel's stages for the host copy of the same index (stage_walk.h), with its pairs at
      // kernel granularity (cost.h): fill = pairs over what the stages compute (64 keys each),
      // share = blocks computing each loaded stage on average.
      const kernels::SparseIndex host = index.to_host();
      const kernels::StageWalk walk = kernels::walk_stages_as_launched(host, s.d);
      const double pairs = double(walk.pairs);
      const double density = pairs / (double(s.heads) * double(kernels::dense_pair_count(s.n)));
      const double fill = double(walk.pairs) / double(std::max<int64_t>(1, walk.stage_pairs));
      const double share = double(walk.block_stages) / double(std::max<int64_t>(1, walk.loaded_stages));
      const double build_ms = time_ms([&] { DeviceSparseIndex tmp = build(); }, options.seconds_per_point / 2);
      const kernels::SparseIndexView view = index.view();
      const double kern_ms =
          time_ms([&] { kernels::sparse_attention_forward(p, view); }, options.seconds_per_point / 2);
      const double total_ms = time_ms(
          [&] {
            DeviceSparseIndex fresh = build();
            kernels::sparse_attention_forward(p, fresh.view());
          },
          options.seconds_per_point / 2);
      // Throughput over the pairs computed (4 d FLOPs per pair), index build included.
      const double tf = pairs * 4.0 * s.d / (total_ms * 1e-3) / 1e12;
      const double tf_kernel = pairs * 4.0 * s.d / (kern_ms * 1e-3) / 1e12;
      const double vs_dense = dense_ms / total_ms;
      const double vs_cudnn = cudnn ? cudnn->ms / total_ms : 0;
      const double thr_rel = cudnn ? tf / cudnn->tflops : 0;
      std::printf("%7d %4d %4d %-22s %8.4f %9.3f %9.3f %9.3f %8.1f %8.2fx %8s %9s %6.3f %6.2f\n", s.n, s.d,
                  s.heads, name.c_str(), density, build_ms, kern_ms, total_ms, tf, vs_dense,
                  cudnn ? (std::to_string(vs_cudnn).substr(0, 5) + "x").c_str() : "-",
                  cudnn ? std::to_string(thr_rel).substr(0, 5).c_str() : "-", fill, share);
      std::fflush(stdout);
      js << (first ? "" : ",") << "\n  {\"n\": " << s.n << ", \"d\": " << s.d << ", \"heads\": " << s.heads
         << ", \"kv_heads\": " << s.kv_heads << ", \"config\": \"" << name << "\", \"density\": " << density
         << ", \"build_ms\": " << build_ms << ", \"kernel_ms\": " << kern_ms << ", \"total_ms\": " << total_ms
         << ", \"tflops_total\": " << tf << ", \"tflops_kernel\": " << tf_kernel << ", \"dense_ms\": " << dense_ms
         << ", \"speedup_vs_dense\": " << vs_dense << ", \"loaded_stages\": " << walk.loaded_stages
         << ", \"gathered_stages\": " << walk.gathered_stages << ", \"block_stages\": " << walk.block_stages
         << ", \"short_stages\": " << walk.short_stages << ", \"stage_fill\": " << fill
         << ", \"blocks_per_stage\": " << share;
      if (cudnn)
        js << ", \"sdpa_cudnn_ms\": " << cudnn->ms << ", \"speedup_vs_cudnn\": " << vs_cudnn
           << ", \"throughput_vs_cudnn\": " << thr_rel;
      js << "}";
      first = false;
    }
    std::printf("%7d %4d %4d %-22s %8.4f %9s %9.3f %9.3f %8.1f\n", s.n, s.d, s.heads, "dense (ours)", 1.0, "-",
                dense_ms, dense_ms, dense_flops(s) / (dense_ms * 1e-3) / 1e12);
  }
  js << "\n]}\n";
  if (!options.json_out.empty()) write_text_atomically(options.json_out, js.str());
  return 0;
}

}  // namespace hc::bench

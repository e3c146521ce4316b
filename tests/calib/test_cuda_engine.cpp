// The CUDA prefill engine: its memory estimate (no GPU needed), and on the device per-layer
// outputs and logits against the CPU engine, the device hook, the memory error, SmolLM2.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "calib/cuda_engine.h"
#include "calib/device_attention.h"
#include "calib/prober.h"
#include "calib/random_model.h"
#include "calib/record.h"
#include "calib/recorder.h"
#include "calib/validate.h"
#include "catch.h"
#include "support/vector_compare.h"
#include "common/error.h"
#include "io/calibration/grid.h"
#include "io/model/model_file.h"
#include "io/prompt/prompt.h"

#if defined(HEADCAL_HAVE_CUDA)
#include <cuda_bf16.h>
#include <cuda_runtime.h>
#endif

namespace {

using hc::test::max_abs_diff;
using hc::test::rel_error;
using hc::test::top1_agreement;

constexpr double kGiB = double(size_t(1) << 30);

// Per-layer attention tensors copied out of a hook.
struct Captured {
  std::vector<std::vector<float>> q, k, v, o, lse;
};

hc::LayerHook capture(Captured& c) {
  return [&c](const hc::LayerAttention& a) {
    const auto n = static_cast<size_t>(a.dims.n_tokens), h = static_cast<size_t>(a.dims.n_heads),
               kv = static_cast<size_t>(a.dims.n_kv_heads), d = static_cast<size_t>(a.dims.head_dim);
    c.q.emplace_back(a.q, a.q + n * h * d);
    c.k.emplace_back(a.k, a.k + n * kv * d);
    c.v.emplace_back(a.v, a.v + n * kv * d);
    c.o.emplace_back(a.o, a.o + n * h * d);
    c.lse.emplace_back(a.lse, a.lse + h * n);
  };
}

}  // namespace

TEST_CASE("CUDA memory estimate: Llama-3-8B-shaped at 128K fits in 60 GiB", "[cuda_engine]") {
  const hc::ModelConfig c = hc::llama3_8b_config();
  const hc::CudaMemoryEstimate e = hc::estimate_cuda_memory(c, 131072);
  // 8.03e9 parameters in bf16.
  CHECK(e.weights / kGiB == Approx(14.96).epsilon(0.01));
  CHECK(e.total() / kGiB < 60.0);
  CHECK(e.total() / kGiB > 20.0);  // x fp32 alone is 2 GiB; q, attention out 1 GiB each
  // Chunking the MLP is what keeps it small: unchunked gate+up would be 7 GiB on their own.
  hc::CudaEngineOptions unchunked;
  unchunked.mlp_chunk_tokens = 131072;
  CHECK(hc::estimate_cuda_memory(c, 131072, unchunked).activations - e.activations >
        size_t(6) * (size_t(1) << 30));
  // Linear in N beyond the fixed chunk buffers.
  const hc::CudaMemoryEstimate half = hc::estimate_cuda_memory(c, 65536);
  CHECK(half.activations < e.activations);
  CHECK(half.weights == e.weights);
}

TEST_CASE("CUDA memory estimate: the attention output shares the normed buffer unless o_proj writes it",
          "[cuda_engine]") {
  // Bytes per token of the N-sized buffers: x fp32, normed x and q bf16, k and v bf16, the LSE,
  // RoPE's cos and sin, the token id; plus the attention output where it needs its own buffer.
  auto per_token = [](const hc::ModelConfig& c) {
    const size_t q_out = size_t(c.n_heads) * 128, kv_out = size_t(c.n_kv_heads) * 128;
    return size_t(c.hidden) * 6 + q_out * 2 + kv_out * 4 + size_t(c.n_heads) * 4 +
           size_t(c.rotary_dims() / 2) * 8 + 4;
  };
  auto measured = [](const hc::ModelConfig& c) {
    const size_t n = 1 << 20;  // the slope between 512K and 1M tokens
    return (hc::estimate_cuda_memory(c, int64_t(n)).activations - hc::estimate_cuda_memory(c, int64_t(n / 2)).activations) /
           (n / 2);
  };
  const hc::ModelConfig llama = hc::llama3_8b_config();
  CHECK(measured(llama) == per_token(llama));
  const hc::ModelConfig glm = hc::glm4_9b_config();  // o_proj's output goes through the normed buffer
  REQUIRE(glm.post_norms);
  CHECK(measured(glm) == per_token(glm) + size_t(glm.n_heads) * 128 * 2);
}

TEST_CASE("CUDA memory estimate: GLM-4-9B-shaped weights are its tensors, biases and post norms included",
          "[cuda_engine]") {
  const hc::RandomModel model(hc::glm4_9b_config(), 1, "glm4-9b");
  size_t bytes = 0;  // matrices in bf16, vectors (norms, biases) in fp32, as the engine uploads them
  for (const auto& [name, t] : model.tensors()) bytes += static_cast<size_t>(t.numel()) * (t.shape.size() == 2 ? 2 : 4);
  const hc::CudaMemoryEstimate e = hc::estimate_cuda_memory(model.config(), 131072);
  CHECK(e.weights == bytes);
  CHECK(e.weights / kGiB == Approx(17.5).epsilon(0.01));  // 9.4e9 parameters
  CHECK(e.total() / kGiB < 40.0);  // 128K tokens on one 80 GB device
}

#if defined(HEADCAL_HAVE_CUDA)
TEST_CASE("CUDA memory estimate: recording Llama-3-8B-shaped at 1M tokens fits one 80 GB GPU", "[cuda_engine]") {
  // What record reserves: the engine's buffers, and as hooks the recorder's statistics and the
  // prober's workspaces under the default grid (the grid probe measures its heads in groups).
  const hc::ModelConfig c = hc::llama3_8b_config();
  const int64_t n = int64_t(1) << 20;
  hc::CudaEngineOptions options;
  options.hook_device_bytes = hc::cuda_recorder_device_bytes(c.n_heads, n, hc::RecordOptions{}.map_size) +
                              hc::make_cuda_prober(hc::default_grid(n), {})->device_bytes(c, n);
  const hc::CudaMemoryEstimate e = hc::estimate_cuda_memory(c, n, options);
  INFO("weights " << e.weights / kGiB << " GiB, activations " << e.activations / kGiB << ", hooks "
                  << e.hooks / kGiB << ", headroom " << e.headroom / kGiB);
  CHECK(e.total() / kGiB < 75.0);
  CHECK(e.hooks / kGiB < 15.0);  // in one head group the grid probe alone would take 21.9 GiB
}
#endif

#if defined(HEADCAL_HAVE_CUDA)
TEST_CASE("CUDA memory estimate: validating a Llama-3-8B-shaped profile at 1M tokens fits one 80 GB GPU",
          "[cuda_engine]") {
  // MInference's vertical_slash(1000, 6096) on every head: a layer's index could hold 2.6e9
  // ranges, which the planner runs in head groups; validate's buffers (the dense reference's
  // output and LSE, the planner's workspace) beside the engine's.
  const hc::ModelConfig c = hc::llama3_8b_config();
  const int64_t n = int64_t(1) << 20;
  hc::Profile profile;
  profile.model.layers = c.n_layers;
  profile.model.heads = c.n_heads;
  profile.model.kv_heads = c.n_kv_heads;
  profile.model.head_dim = c.head_dim;
  for (int64_t l = 0; l < c.n_layers; ++l)
    for (int64_t h = 0; h < c.n_heads; ++h) {
      hc::ProfileHead e;
      e.layer = l;
      e.head = h;
      e.pattern = hc::Pattern::vertical_slash;
      e.p1 = 1000;
      e.p2 = 6096;
      profile.heads.push_back(e);
    }
  hc::CudaEngineOptions options;
  options.hook_device_bytes = hc::validate_device_bytes(c, profile, n);
  const hc::CudaMemoryEstimate e = hc::estimate_cuda_memory(c, n, options);
  INFO("weights " << e.weights / kGiB << " GiB, activations " << e.activations / kGiB << ", hooks "
                  << e.hooks / kGiB << ", headroom " << e.headroom / kGiB);
  CHECK(e.total() / kGiB < 75.0);
  CHECK(e.hooks / kGiB > 8.0);  // the dense reference's bf16 output alone is 8 GiB
}
#endif

TEST_CASE("CUDA engine: unavailable without a GPU", "[cuda_engine]") {
  if (hc::test::gpu_available()) return;  // covered by the [gpu] cases
  hc::RandomModel model(hc::tiny_llama_config(), 1, "tiny");
  CHECK_THROWS_AS(hc::make_cuda_engine(model), hc::DeviceError);
}

TEST_CASE("CUDA engine matches the CPU engine per layer and in the logits", "[cuda_engine][gpu]") {
  HC_REQUIRE_GPU();
  struct Case {
    const char* name;
    hc::ModelConfig config;
    int64_t n;
  };
  std::vector<Case> cases;
  cases.push_back({"tiny d64 GQA 2", hc::tiny_llama_config(), 37});
  {
    hc::ModelConfig c = hc::tiny_llama_config();  // d=128, GQA 4, tied embeddings
    c.n_heads = 4;
    c.n_kv_heads = 1;
    c.head_dim = 128;
    c.tie_embeddings = true;
    cases.push_back({"d128 GQA 4 tied", c, 130});
  }
  {
    hc::ModelConfig c = hc::tiny_llama_config();  // Qwen2: QKV bias, llama3 RoPE scaling
    c.arch = "qwen2";
    c.qkv_bias = true;
    c.rope_scaling.type = hc::RopeScalingType::Llama3;
    c.rope_scaling.factor = 8;
    c.rope_scaling.original_max_position = 64;
    cases.push_back({"qwen2 bias llama3-rope", c, 200});
  }
  {
    hc::ModelConfig c = hc::tiny_llama_config();  // Qwen3: per-head q/k norm, heads * d != hidden, yarn
    c.arch = "qwen3";
    c.qk_norm = true;
    c.n_heads = 6;
    c.n_kv_heads = 3;  // 6 * 64 = 384 attention features from hidden 256
    c.rope_scaling.type = hc::RopeScalingType::Yarn;
    c.rope_scaling.factor = 4;
    c.rope_scaling.original_max_position = 64;
    cases.push_back({"qwen3 qk-norm yarn", c, 151});
  }
  {
    hc::ModelConfig c = hc::tiny_llama_config();  // q/k norm after a bias: the unfused bias path
    c.arch = "qwen3";
    c.qk_norm = true;
    c.qkv_bias = true;
    cases.push_back({"qk-norm after bias", c, 45});
  }
  {
    hc::ModelConfig c = hc::tiny_llama_config();  // GLM-4: half of each head rotates, interleaved
    c.arch = "glm4";
    c.qkv_bias = true;
    c.rotary_dim = 32;
    c.rope_interleaved = true;
    c.post_norms = true;
    cases.push_back({"glm4 partial interleaved rope, bias, post norms", c, 101});
  }
  {
    hc::ModelConfig c = hc::tiny_llama_config();  // GLM: d128 of which 64 rotate, no post norms
    c.arch = "glm";
    c.head_dim = 128;
    c.n_heads = 2;
    c.n_kv_heads = 1;
    c.qkv_bias = true;
    c.rotary_dim = 64;
    c.rope_interleaved = true;
    cases.push_back({"glm d128 partial interleaved rope", c, 70});
  }
  {
    hc::ModelConfig c = hc::tiny_llama_config();  // every dimension interleaved: the bias in bias_rope
    c.arch = "glm";
    c.qkv_bias = true;
    c.rope_interleaved = true;
    cases.push_back({"interleaved full rope with fused bias", c, 33});
  }
  {
    hc::ModelConfig c = hc::tiny_llama_config();  // Phi-3-mini's head_dim 96: the kernels run it at 128
    c.arch = "phi3";
    c.head_dim = 96;
    c.n_heads = 4;
    c.n_kv_heads = 4;
    cases.push_back({"d96 padded to 128", c, 99});
  }
  {
    hc::ModelConfig c = hc::tiny_llama_config();  // padded to 64, with a bias and a partial interleaved RoPE
    c.arch = "glm";
    c.head_dim = 48;
    c.qkv_bias = true;
    c.rotary_dim = 32;
    c.rope_interleaved = true;
    cases.push_back({"d48 padded to 64, bias, partial interleaved rope", c, 66});
  }
  {
    hc::ModelConfig c = hc::tiny_llama_config();  // a prompt past the context runs (--allow-longer), as on the CPU
    c.max_context = 64;
    cases.push_back({"beyond the context", c, 100});
  }
  for (const Case& tc : cases) {
    INFO(tc.name << " N " << tc.n);
    hc::RandomModel model(tc.config, 11, "test");
    auto cpu = hc::make_cpu_engine(model, 2);
    hc::CudaEngineOptions opts;
    opts.mlp_chunk_tokens = 48;  // several MLP chunks, the last one partial
    auto gpu = hc::make_cuda_engine(model, opts);
    CHECK(gpu->backend() == "cuda");

    hc::PrefillRequest req;
    req.tokens = hc::random_token_ids(tc.n, tc.config.vocab, 4);
    req.logit_positions = {0, tc.n / 2, tc.n - 1};
    req.want_final_hidden = true;
    Captured a, b;
    req.on_layer = capture(a);
    const hc::PrefillResult want = cpu->prefill(req);
    req.on_layer = capture(b);
    const hc::PrefillResult got = gpu->prefill(req);

    REQUIRE(b.q.size() == static_cast<size_t>(tc.config.n_layers));
    for (size_t l = 0; l < b.q.size(); ++l) {
      INFO("layer " << l);
      REQUIRE(b.q[l].size() == a.q[l].size());  // host hooks get the model's head_dim
      REQUIRE(b.o[l].size() == a.o[l].size());
      // bf16 activations and weights: ~0.4% per rounding, a few of them in sequence.
      CHECK(rel_error(b.q[l], a.q[l]) < 0.03);
      CHECK(rel_error(b.k[l], a.k[l]) < 0.03);
      CHECK(rel_error(b.v[l], a.v[l]) < 0.03);
      CHECK(rel_error(b.o[l], a.o[l]) < 0.03);
      CHECK(max_abs_diff(b.lse[l], a.lse[l]) < 0.05);
    }
    REQUIRE(got.logit_positions == want.logit_positions);
    CHECK(rel_error(got.logits, want.logits) < 0.03);
    CHECK(top1_agreement(got.logits, want.logits, tc.config.vocab) >= 2.0 / 3.0);
    CHECK(rel_error(got.final_hidden, want.final_hidden) < 0.03);
    CHECK(gpu->peak_device_bytes() > 0);
  }
}

#if defined(HEADCAL_HAVE_CUDA)
TEST_CASE("CUDA engine: the device hook sees what the host hook sees", "[cuda_engine][gpu]") {
  HC_REQUIRE_GPU();
  hc::RandomModel model(hc::tiny_llama_config(), 2, "tiny");
  auto gpu = hc::make_cuda_engine(model);
  hc::PrefillRequest req;
  req.tokens = hc::random_token_ids(77, 512, 1);
  req.want_logits = false;
  req.first_layer = 1;
  Captured host;
  req.on_layer = capture(host);
  std::vector<std::vector<float>> device_lse;
  std::vector<std::vector<float>> device_k;
  std::vector<int> layers;
  gpu->prefill_device(req, [&](const hc::DeviceLayerAttention& a) {
    layers.push_back(a.layer);
    CHECK(a.dims.n_tokens == 77);
    CHECK(a.k_row_stride == 2 * 64);
    std::vector<float> lse(static_cast<size_t>(a.dims.n_heads * 77));
    REQUIRE(cudaMemcpy(lse.data(), a.lse, lse.size() * 4, cudaMemcpyDeviceToHost) == cudaSuccess);
    device_lse.push_back(lse);
    std::vector<__nv_bfloat16> k(static_cast<size_t>(77 * 2 * 64));
    REQUIRE(cudaMemcpy(k.data(), a.k, k.size() * 2, cudaMemcpyDeviceToHost) == cudaSuccess);
    std::vector<float> kf(k.size());
    for (size_t i = 0; i < k.size(); ++i) kf[i] = __bfloat162float(k[i]);
    device_k.push_back(kf);
  });
  REQUIRE(layers == std::vector<int>{1});
  REQUIRE(host.lse.size() == 1);
  CHECK(device_lse[0] == host.lse[0]);
  CHECK(device_k[0] == host.k[0]);
}

TEST_CASE("CUDA engine: stops after the last hooked layer unless logits are wanted", "[cuda_engine][gpu]") {
  HC_REQUIRE_GPU();
  const hc::ModelConfig c = hc::tiny_llama_config();
  REQUIRE(c.n_layers > 1);
  hc::RandomModel model(c, 4, "tiny");
  auto gpu = hc::make_cuda_engine(model);
  std::vector<int> ran;
  hc::PrefillRequest req;
  req.tokens = hc::random_token_ids(90, c.vocab, 6);
  req.last_layer = 0;
  req.device_attention_override = [&](const hc::DeviceAttentionInput& in, void* o, float* lse) {
    ran.push_back(in.layer);
    hc::kernels::dense_attention_forward(hc::attention_params(in, o, lse), static_cast<cudaStream_t>(in.stream));
  };
  gpu->prefill(req);
  CHECK(static_cast<int64_t>(ran.size()) == c.n_layers);
  ran.clear();
  req.want_logits = false;
  gpu->prefill(req);
  CHECK(ran == std::vector<int>{0});
}

TEST_CASE("CUDA engine: a padded head_dim reaches device hooks at the kernels' width, padding zero",
          "[cuda_engine][gpu]") {
  HC_REQUIRE_GPU();
  hc::ModelConfig c = hc::tiny_llama_config();
  c.arch = "phi3";
  c.head_dim = 96;
  hc::RandomModel model(c, 3, "d96");
  auto gpu = hc::make_cuda_engine(model);
  hc::PrefillRequest req;
  req.tokens = hc::random_token_ids(70, c.vocab, 5);
  req.want_logits = false;
  req.first_layer = 1;
  Captured host;
  req.on_layer = capture(host);
  std::vector<float> padding;
  gpu->prefill_device(req, [&](const hc::DeviceLayerAttention& a) {
    CHECK(a.dims.head_dim == 128);
    CHECK(a.k_row_stride == c.n_kv_heads * 128);
    std::vector<__nv_bfloat16> k(static_cast<size_t>(70 * c.n_kv_heads * 128));
    REQUIRE(cudaMemcpy(k.data(), a.k, k.size() * 2, cudaMemcpyDeviceToHost) == cudaSuccess);
    for (size_t i = 0; i < k.size(); ++i)
      if (i % 128 >= 96) padding.push_back(__bfloat162float(k[i]));
  });
  // Scores at the model's 1/sqrt(96) are checked against the CPU engine above ("d96 padded to 128").
  REQUIRE(host.k.size() == 1);
  CHECK(host.k[0].size() == size_t(70) * c.n_kv_heads * 96);
  REQUIRE(padding.size() == size_t(70) * c.n_kv_heads * 32);
  CHECK(std::all_of(padding.begin(), padding.end(), [](float x) { return x == 0.f; }));
}

#endif

TEST_CASE("CUDA engine: a prefill that cannot fit fails up front with the memory it needs", "[cuda_engine][gpu]") {
  HC_REQUIRE_GPU();
  hc::RandomModel model(hc::tiny_llama_config(), 1, "tiny");
  hc::CudaEngineOptions opts;
  opts.hook_device_bytes = size_t(1) << 50;  // a recorder asking for 1 PiB
  auto gpu = hc::make_cuda_engine(model, opts);
  hc::PrefillRequest req;
  req.tokens = {1, 2, 3};
  try {
    gpu->prefill(req);
    FAIL("expected a DeviceError");
  } catch (const hc::DeviceError& e) {
    const std::string what = e.what();
    CHECK(what.find("needs") != std::string::npos);
    CHECK(what.find("GiB free") != std::string::npos);
  }
  hc::PrefillRequest bad;
  bad.tokens = {1, 600};  // id >= vocab 512
  CHECK_THROWS_AS(gpu->prefill(bad), hc::InputError);
}

TEST_CASE("CUDA engine: SmolLM2 logits agree with the CPU engine", "[cuda_engine][gpu][model]") {
  HC_REQUIRE_GPU();
  const std::string path = hc::test::smollm2_gguf_path();
  if (path.empty()) {
    WARN("SmolLM2 GGUF not found (set HEADCAL_MODEL); skipped");
    return;
  }
  const auto model = hc::open_model(path);
  auto cpu = hc::make_cpu_engine(*model, 0);
  auto gpu = hc::make_cuda_engine(*model);
  hc::PrefillRequest req;
  req.tokens = hc::random_token_ids(96, model->config().vocab, 3);
  const hc::PrefillResult want = cpu->prefill(req);
  const hc::PrefillResult got = gpu->prefill(req);
  const double agree = top1_agreement(got.logits, want.logits, model->config().vocab);
  const double err = max_abs_diff(got.logits, want.logits);
  WARN("SmolLM2 CUDA vs CPU, 96 tokens: top-1 agreement " << agree << ", max abs logit error " << err);
  CHECK(agree >= 0.9);
  CHECK(rel_error(got.logits, want.logits) < 0.05);
}

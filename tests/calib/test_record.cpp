// The record pipeline (engine -> recorder -> atlas), `headcal record`, the random model, the
// device choice and the token-id parser.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "calib/cuda_engine.h"
#include "calib/device_select.h"
#include "calib/prober.h"
#include "calib/random_model.h"
#include "calib/record.h"
#include "calib/recorder.h"
#include "catch.h"
#include "common/error.h"
#include "io/calibration/atlas.h"
#include "io/prompt/prompt.h"

namespace {

double sum_of(const std::vector<float>& v, size_t begin, size_t count) {
  double s = 0;
  for (size_t i = begin; i < begin + count; ++i) s += v[i];
  return s;
}

void require_layer_invariants(const hc::Atlas& atlas, int64_t layer) {
  const hc::AtlasMeta& m = atlas.meta();
  const hc::AtlasLayer L = atlas.read_layer(layer);
  const auto n = static_cast<size_t>(m.tokens), mm = static_cast<size_t>(m.map_size * m.map_size);
  REQUIRE(L.colmass.size() == static_cast<size_t>(m.heads) * n);
  REQUIRE(L.map.size() == static_cast<size_t>(m.heads) * mm);
  for (size_t h = 0; h < static_cast<size_t>(m.heads); ++h) {
    INFO("layer " << layer << " head " << h);
    CHECK(sum_of(L.colmass, h * n, n) == Approx(double(n)).epsilon(1e-4));
    CHECK(sum_of(L.diagmass, h * n, n) == Approx(double(n)).epsilon(1e-4));
    CHECK(sum_of(L.map, h * mm, mm) == Approx(double(n)).epsilon(1e-4));
    // Row 0 sees only key 0: diagonal 0 holds at least that row's full mass.
    CHECK(L.diagmass[h * n] >= 1.0f - 1e-4f);
  }
  int dense_rows = 0;
  for (const hc::CandidateRow& r : L.candidates)
    if (r.pattern == hc::Pattern::dense) {
      ++dense_rows;
      CHECK(r.density == 1.0);
      CHECK(r.recall == 1.0);
      CHECK(r.cost > 0);
    }
  CHECK(dense_rows == m.heads);
}

// Returns one a_shape row per head with a recall it computes from the host LSE (a real function
// of the layer), and counts its calls.
class CountingProber : public hc::CandidateProber {
 public:
  std::vector<hc::CandidateRow> probe(const hc::ProbeLayer& layer) override {
    ++calls;
    last_layer = layer.layer;
    saw_host = layer.host != nullptr;
    std::vector<hc::CandidateRow> rows;
    for (int32_t h = 0; h < static_cast<int32_t>(layer.dims.n_heads); ++h)
      rows.push_back({h, hc::Pattern::a_shape, 4, 16, 1.0, 0.5, 0.75, 0.1});
    return rows;
  }
  int calls = 0;
  int last_layer = -1;
  bool saw_host = false;
};

class DenseReturningProber : public hc::CandidateProber {
 public:
  std::vector<hc::CandidateRow> probe(const hc::ProbeLayer&) override {
    return {{0, hc::Pattern::dense, 0, 0, 1.0, 1.0, 1.0, 0.0}};
  }
};

}  // namespace

TEST_CASE("random model: deterministic, seeded, scaled by fan-in", "[record][random_model]") {
  hc::RandomModel a(hc::tiny_llama_config(), 7, "tiny");
  hc::RandomModel b(hc::tiny_llama_config(), 7, "tiny");
  hc::RandomModel c(hc::tiny_llama_config(), 8, "tiny");
  const std::string wq = hc::tensor_names::q_proj(1);
  const auto x = a.load_f32(wq, {256, 256});
  CHECK(x == b.load_f32(wq));
  CHECK(x != c.load_f32(wq));
  CHECK(a.fingerprint() == b.fingerprint());
  CHECK(a.fingerprint() != c.fingerprint());
  CHECK(x != a.load_f32(hc::tensor_names::q_proj(0)));  // each tensor has its own stream
  double s = 0, ss = 0;
  for (float v : x) {
    s += v;
    ss += double(v) * v;
  }
  const double mean = s / x.size(), stddev = std::sqrt(ss / x.size() - mean * mean);
  CHECK(std::fabs(mean) < 0.005);
  CHECK(stddev == Approx(1.0 / 16.0).epsilon(0.03));  // 1/sqrt(hidden 256)
  const auto norm = a.load_f32(hc::tensor_names::attn_norm(0));
  for (float v : norm) REQUIRE(v == 1.0f);
  CHECK_THROWS_AS(a.load_f32(wq, {256, 255}), hc::InputError);
  CHECK_THROWS_AS(a.load_f32("model.layers.9.self_attn.q_proj.weight"), hc::InputError);

  const hc::ModelConfig big = hc::llama3_8b_config();
  CHECK(big.n_layers == 32);
  CHECK(big.n_kv_heads == 8);
  CHECK(big.vocab == 128256);
  CHECK(hc::open_random_model("model.gguf") == nullptr);
  CHECK(hc::open_random_model("random:llama3-8b:3")->seed() == 3);
  // GLM-4-9B's shape: 40 layers of 32 heads over 2 KV heads, half of each 128-wide head rotating.
  const auto glm = hc::open_random_model("random:glm4-9b");
  const hc::ModelConfig& g = glm->config();
  CHECK(g.arch == "glm4");
  CHECK(g.n_layers == 40);
  CHECK(g.n_heads == 32);
  CHECK(g.n_kv_heads == 2);
  CHECK(g.head_dim == 128);
  CHECK(g.hidden == 4096);
  CHECK(g.max_context == 131072);
  CHECK(g.rotary_dims() == 64);
  CHECK(g.rope_interleaved);
  CHECK(g.qkv_bias);
  CHECK(g.post_norms);
  CHECK(glm->tensor(hc::tensor_names::post_mlp_norm(39)).shape == std::vector<int64_t>{4096});
  CHECK(glm->load_f32(hc::tensor_names::post_attn_out_norm(0)) == std::vector<float>(4096, 1.0f));
  CHECK(glm->tensor(hc::tensor_names::k_bias(0)).shape == std::vector<int64_t>{256});
  CHECK(glm->fingerprint() != hc::open_random_model("random:llama3-8b")->fingerprint());
  // Qwen3-8B's shape: per-head q/k norms (tensors of head_dim), YaRN from 32K to 128K.
  const auto qwen3 = hc::open_random_model("random:qwen3-8b");
  const hc::ModelConfig& q3 = qwen3->config();
  CHECK(q3.arch == "qwen3");
  CHECK(q3.n_layers == 36);
  CHECK(q3.n_kv_heads == 8);
  CHECK(q3.qk_norm);
  CHECK(q3.rope_scaling.type == hc::RopeScalingType::Yarn);
  CHECK(q3.max_context == 131072);
  CHECK(qwen3->tensor(hc::tensor_names::q_norm(35)).shape == std::vector<int64_t>{128});
  CHECK_NOTHROW(hc::check_cuda_engine_shape(*qwen3));
  CHECK(hc::random_shape_names(", ") == "llama3-8b, smollm2, tiny, phi3-mini, glm4-9b, qwen3-8b");
  try {
    hc::open_random_model("random:llama9");
    FAIL("expected hc::InputError");
  } catch (const hc::InputError& e) {
    CHECK(std::string(e.what()).find("qwen3-8b") != std::string::npos);  // the error lists the shapes
  }
  CHECK_THROWS_AS(hc::open_random_model("random:tiny:x"), hc::InputError);
}

TEST_CASE("device choice: cpu, auto fallback with a notice, bad names", "[record]") {
  CHECK(hc::resolve_device("cpu") == hc::DeviceKind::Cpu);
  CHECK_THROWS_AS(hc::resolve_device("gpu"), hc::InputError);
  std::string notice;
  const hc::DeviceKind kind = hc::resolve_device("auto", &notice);
  if (hc::cuda_device_present()) {
    CHECK(kind == hc::DeviceKind::Cuda);
    CHECK(notice.empty());
  } else {
    CHECK(kind == hc::DeviceKind::Cpu);
    CHECK(notice.find("CPU") != std::string::npos);
    CHECK_THROWS_AS(hc::resolve_device("cuda"), hc::DeviceError);
  }
}

TEST_CASE("prefill host memory floor: the CPU engine's activations, the CUDA engine's two final states", "[record]") {
  const hc::ModelConfig c = hc::llama3_8b_config();
  const int64_t n = int64_t(1) << 20;
  // CPU: a few activations of hidden, K/V and MLP width per token (184 GiB at 1M for this shape).
  CHECK(hc::prefill_host_floor_bytes(c, n, hc::DeviceKind::Cpu) ==
        4 * (4 * c.hidden + 2 * c.n_kv_heads * c.head_dim + 2 * c.intermediate) * n);
  CHECK(hc::prefill_host_floor_bytes(c, n, hc::DeviceKind::Cpu) > (int64_t(180) << 30));
  // CUDA: the activations are on the device; the host keeps two fp32 final hidden states (32 GiB).
  CHECK(hc::prefill_host_floor_bytes(c, n, hc::DeviceKind::Cuda) == 2 * c.hidden * 4 * n);
  CHECK(hc::prefill_host_floor_bytes(c, n, hc::DeviceKind::Cuda) == (int64_t(32) << 30));
}

TEST_CASE("token ids: parsed, checked against the vocabulary", "[record]") {
  // A random-weight model has no tokenizer: token files go through build_prompt with the
  // vocabulary size alone (what `record --tokens` does for it).
  const std::string dir = hc::test::make_temp_dir("token_ids");
  auto from_text = [&](const std::string& text) {
    const std::string path = dir + "/ids.txt";
    std::ofstream(path) << text;
    hc::PromptSpec spec;
    spec.tokens_file = path;
    return hc::build_prompt(spec, nullptr, 10, 0).tokens;
  };
  CHECK(from_text(" 1 2\n3\t4 ") == std::vector<int32_t>{1, 2, 3, 4});
  CHECK_THROWS_AS(from_text("1 10"), hc::InputError);
  CHECK_THROWS_AS(from_text("1 x"), hc::InputError);
  CHECK_THROWS_AS(from_text("-1"), hc::InputError);
  CHECK_THROWS_AS(from_text("  "), hc::InputError);
  const auto r = hc::random_token_ids(1000, 50, 3);
  CHECK(r == hc::random_token_ids(1000, 50, 3));
  CHECK(r != hc::random_token_ids(1000, 50, 4));
  for (int32_t id : r) REQUIRE((id >= 0 && id < 50));
}

TEST_CASE("CPU record pipeline writes an atlas whose statistics keep the invariants", "[record]") {
  const auto model = hc::open_model_spec("random:tiny");
  const std::string dir = hc::test::make_temp_dir("record");
  for (int64_t n : {70, 5}) {  // N > map size and N < map size
    INFO("N " << n);
    const auto tokens = hc::random_token_ids(n, model->config().vocab, 1);
    hc::RecordOptions opts;
    opts.device = hc::DeviceKind::Cpu;
    opts.map_size = 16;
    opts.n_threads = 2;
    opts.prompt_description = "test";
    int progress_calls = 0;
    opts.on_progress = [&](const hc::RecordProgress& p) {
      ++progress_calls;
      CHECK(p.layers_total == 2);
      CHECK(p.layers_done == progress_calls);
    };
    const std::string out = dir + "/a" + std::to_string(n) + ".h5";
    const hc::RecordSummary s = hc::record_atlas(*model, tokens, out, opts);
    CHECK(s.layers_recorded == 2);
    CHECK(s.backend == "cpu");
    CHECK(progress_calls == 2);
    const hc::Atlas atlas = hc::Atlas::open(out);
    CHECK(atlas.tokens() == tokens);
    CHECK(atlas.meta().tokens == n);
    CHECK(atlas.meta().map_size == std::min<int64_t>(16, n));
    CHECK(atlas.meta().heads == 4);
    CHECK(atlas.meta().model_fingerprint == model->fingerprint());
    CHECK(atlas.meta().prompt_sha256 == hc::tokens_sha256(tokens));
    REQUIRE(atlas.recorded_layers() == std::vector<int64_t>{0, 1});
    require_layer_invariants(atlas, 0);
    require_layer_invariants(atlas, 1);
  }
}

TEST_CASE("record pipeline without statistics: the same candidate rows, no recorder output", "[record]") {
  const auto model = hc::open_model_spec("random:tiny:3");
  const std::string dir = hc::test::make_temp_dir("record_nostats");
  const int64_t n = 70;
  const auto tokens = hc::random_token_ids(n, model->config().vocab, 4);
  const hc::Grid grid = hc::default_grid(n);
  auto prober = hc::make_cpu_prober(grid, hc::PatternDefaults{}, 2);
  hc::RecordOptions opts;
  opts.device = hc::DeviceKind::Cpu;
  opts.n_threads = 2;
  opts.prober = prober.get();
  hc::CalibrationTimings with_t, without_t;
  opts.timings = &with_t;
  hc::record_atlas(*model, tokens, dir + "/with.h5", opts);
  opts.statistics = false;
  opts.timings = &without_t;
  hc::record_atlas(*model, tokens, dir + "/without.h5", opts);
  CHECK(without_t.statistics_s < with_t.statistics_s);

  const hc::Atlas with = hc::Atlas::open(dir + "/with.h5");
  const hc::Atlas without = hc::Atlas::open(dir + "/without.h5");
  CHECK(with.meta().statistics == 1);
  CHECK(without.meta().statistics == 0);
  REQUIRE(without.recorded_layers() == with.recorded_layers());
  for (int64_t layer : with.recorded_layers()) {
    INFO("layer " << layer);
    const auto& a = with.candidates(layer);
    const auto& b = without.candidates(layer);
    REQUIRE(a.size() == b.size());
    REQUIRE(a.size() > static_cast<size_t>(with.meta().heads));  // the probed rows beside the dense ones
    for (size_t i = 0; i < a.size(); ++i) {
      CHECK(a[i].pattern == b[i].pattern);
      CHECK(a[i].p1 == b[i].p1);
      CHECK(a[i].cost == b[i].cost);  // the dense rows' cost comes from N, not from the statistics
      CHECK(a[i].recall == b[i].recall);
      CHECK(a[i].out_err == b[i].out_err);
    }
    CHECK(without.read_layer(layer).colmass.empty());
    CHECK(with.read_layer(layer).colmass.size() == static_cast<size_t>(with.meta().heads * n));
  }
}

TEST_CASE("record: the atlas's statistics size, and the notice from 1 GiB on", "[record]") {
  // 2 layers x 4 heads, prompts of 1000 and 50 tokens, map 128: (8 N + 4 min(128, N)^2) per head.
  CHECK(hc::atlas_statistics_bytes(2, 4, {1000, 50}, 128) == 2 * 4 * ((8 * 1000 + 4 * 128 * 128) + (8 * 50 + 4 * 50 * 50)));
  CHECK(hc::atlas_statistics_bytes(2, 4, {}, 128) == 0);
  // Llama-3-8B's 32 layers x 32 heads: past 1 GiB at 128K, 8.7 GB at 1M.
  const int64_t at_128k = hc::atlas_statistics_bytes(32, 32, {131072}, 128);
  const int64_t at_1m = hc::atlas_statistics_bytes(32, 32, {int64_t(1) << 20}, 128);
  CHECK(at_128k > hc::kLargeStatisticsBytes);
  CHECK(hc::atlas_statistics_bytes(32, 32, {65536}, 128) < hc::kLargeStatisticsBytes);
  CHECK(hc::statistics_size_notice(hc::kLargeStatisticsBytes - 1).empty());
  const std::string notice = hc::statistics_size_notice(at_1m);
  CHECK(notice.find("8.7 GB") != std::string::npos);
  CHECK(notice.find("--no-statistics") != std::string::npos);
}

TEST_CASE("record pipeline: layer range and the candidate prober extension point", "[record]") {
  const auto model = hc::open_model_spec("random:tiny:5");
  const std::string dir = hc::test::make_temp_dir("record_layers");
  const auto tokens = hc::random_token_ids(40, model->config().vocab, 2);
  hc::RecordOptions opts;
  opts.device = hc::DeviceKind::Cpu;
  opts.first_layer = 1;
  opts.last_layer = 1;
  CountingProber prober;
  opts.prober = &prober;
  hc::record_atlas(*model, tokens, dir + "/one.h5", opts);
  CHECK(prober.calls == 1);
  CHECK(prober.last_layer == 1);
  CHECK(prober.saw_host);
  const hc::Atlas atlas = hc::Atlas::open(dir + "/one.h5");
  REQUIRE(atlas.recorded_layers() == std::vector<int64_t>{1});
  const auto& rows = atlas.candidates(1);
  CHECK(rows.size() == 8);  // 4 dense + 4 probed
  int probed = 0;
  for (const auto& r : rows) probed += r.pattern == hc::Pattern::a_shape ? 1 : 0;
  CHECK(probed == 4);

  DenseReturningProber bad;
  opts.prober = &bad;
  CHECK_THROWS_AS(hc::record_atlas(*model, tokens, dir + "/bad.h5", opts), hc::Error);
  CHECK_FALSE(std::filesystem::exists(dir + "/bad.h5"));  // no half-written atlas

  opts.prober = nullptr;
  opts.first_layer = 1;
  opts.last_layer = 5;
  CHECK_THROWS_AS(hc::record_atlas(*model, tokens, dir + "/range.h5", opts), hc::InputError);
}

TEST_CASE("headcal record: CLI on the CPU, and its input errors", "[record][cli]") {
  const std::string dir = hc::test::make_temp_dir("record_cli");
  auto r = hc::test::run_headcal("record --model random:tiny --length 50 --device cpu --out '" + dir + "/a.h5'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("recorded 2 layers x 50 tokens") != std::string::npos);
  const hc::Atlas atlas = hc::Atlas::open(dir + "/a.h5");
  CHECK(atlas.meta().tokens == 50);
  require_layer_invariants(atlas, 1);

  {
    std::ofstream(dir + "/ids.txt") << "1 2 3 4 5 6 7 8 9 10\n11 12\n";
    r = hc::test::run_headcal("record --model random:tiny --tokens '" + dir + "/ids.txt' --device cpu --layers 0 --out '" +
                              dir + "/b.h5'");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    const hc::Atlas b = hc::Atlas::open(dir + "/b.h5");
    CHECK(b.tokens().size() == 12);
    CHECK(b.recorded_layers() == std::vector<int64_t>{0});
  }
  std::ofstream(dir + "/bad_ids.txt") << "1 2 99999\n";
  r = hc::test::run_headcal("record --model random:tiny --tokens '" + dir + "/bad_ids.txt' --device cpu --out '" + dir +
                            "/c.h5'");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("99999") != std::string::npos);
  r = hc::test::run_headcal("record --model random:tiny --length 9 --layers 3-4 --device cpu --out '" + dir + "/d.h5'");
  CHECK(r.exit_code == 2);
  r = hc::test::run_headcal("record --model random:tiny --length 9 --device tpu --out '" + dir + "/e.h5'");
  CHECK(r.exit_code == 2);
  r = hc::test::run_headcal("record --model random:tiny --out '" + dir + "/f.h5'");
  CHECK(r.exit_code == 2);
  CHECK_FALSE(std::filesystem::exists(dir + "/c.h5"));
  r = hc::test::run_headcal("record --model random:tiny --generate kv_retrieval --length 9 --out '" + dir + "/g.h5'");
  CHECK(r.exit_code == 2);  // no tokenizer behind random weights
  CHECK(r.output.find("tokenizer") != std::string::npos);
  r = hc::test::run_headcal("record --model random:tiny --length 9 --device cpu --no-probes --no-statistics --out '" +
                            dir + "/h.h5'");
  CHECK(r.exit_code == 2);  // nothing would be recorded
  CHECK(r.output.find("--no-statistics") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir + "/h.h5"));
  r = hc::test::run_headcal("record --model random:tiny --length 50 --device cpu --no-statistics --out '" + dir +
                            "/i.h5'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(hc::Atlas::open(dir + "/i.h5").meta().statistics == 0);
}

TEST_CASE("headcal record: SmolLM2 with a generated prompt on the CPU", "[record][cli][model]") {
  const std::string model = hc::test::smollm2_gguf_path();
  if (model.empty()) {
    WARN("SmolLM2 GGUF not found (set HEADCAL_MODEL); skipped");
    return;
  }
  const std::string dir = hc::test::make_temp_dir("record_smollm2");
  const auto r = hc::test::run_headcal("record --model '" + model +
                                       "' --generate kv_retrieval --length 256 --device cpu --layers 28-29 --map-size 32 "
                                       "--out '" + dir + "/s.h5'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const hc::Atlas atlas = hc::Atlas::open(dir + "/s.h5");
  CHECK(atlas.meta().heads == 9);
  CHECK(atlas.meta().kv_heads == 3);
  CHECK(atlas.meta().tokens == 256);
  CHECK(atlas.recorded_layers() == std::vector<int64_t>{28, 29});
  require_layer_invariants(atlas, 29);
}

TEST_CASE("CUDA record pipeline agrees with the CPU pipeline", "[record][gpu]") {
  HC_REQUIRE_GPU();
  const auto model = hc::open_model_spec("random:tiny:3");
  const std::string dir = hc::test::make_temp_dir("record_gpu");
  const auto tokens = hc::random_token_ids(150, model->config().vocab, 9);
  hc::RecordOptions opts;
  opts.map_size = 32;
  opts.device = hc::DeviceKind::Cpu;
  hc::record_atlas(*model, tokens, dir + "/cpu.h5", opts);
  opts.device = hc::DeviceKind::Cuda;
  CountingProber prober;
  opts.prober = &prober;
  const hc::RecordSummary s = hc::record_atlas(*model, tokens, dir + "/gpu.h5", opts);
  CHECK(s.backend == "cuda");
  CHECK(s.peak_device_bytes > 0);
  CHECK(prober.calls == 2);
  CHECK_FALSE(prober.saw_host);
  const hc::Atlas cpu = hc::Atlas::open(dir + "/cpu.h5");
  const hc::Atlas gpu = hc::Atlas::open(dir + "/gpu.h5");
  for (int64_t layer : {0, 1}) {
    require_layer_invariants(gpu, layer);
    const hc::AtlasLayer a = cpu.read_layer(layer), b = gpu.read_layer(layer);
    // bf16 activations on the GPU: column masses agree to a few percent of the largest.
    double worst = 0, largest = 0;
    for (size_t i = 0; i < a.colmass.size(); ++i) {
      worst = std::max(worst, std::fabs(double(a.colmass[i]) - b.colmass[i]));
      largest = std::max(largest, double(a.colmass[i]));
    }
    INFO("layer " << layer << " worst " << worst << " largest " << largest);
    CHECK(worst <= 0.05 * largest);
  }
  // Without statistics: the prober's rows exactly as with them, no recorder output.
  opts.statistics = false;
  CountingProber again;
  opts.prober = &again;
  hc::record_atlas(*model, tokens, dir + "/gpu_bare.h5", opts);
  CHECK(again.calls == 2);
  const hc::Atlas bare = hc::Atlas::open(dir + "/gpu_bare.h5");
  CHECK(bare.meta().statistics == 0);
  for (int64_t layer : {0, 1}) {
    CHECK(bare.read_layer(layer).colmass.empty());
    CHECK(bare.candidates(layer).size() == gpu.candidates(layer).size());
  }
}

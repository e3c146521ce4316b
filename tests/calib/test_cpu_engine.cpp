// The CPU prefill engine on a tiny in-memory Llama model, against an independent naive
// double-precision forward written here with plain loops.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "calib/engine.h"
#include "calib/rope.h"
#include "catch.h"
#include "common/error.h"
#include "io/model/model_file.h"

namespace {

namespace tn = hc::tensor_names;

// A model held in memory: F32 tensors with deterministic random values.
class MemoryModel : public hc::ModelFile {
 public:
  explicit MemoryModel(hc::ModelConfig config) : config_(std::move(config)) {}

  void add(const std::string& name, std::vector<int64_t> shape, std::vector<float> values) {
    data_[name] = std::move(values);
    hc::TensorInfo info;
    info.name = info.file_name = name;
    info.dtype = hc::DType::F32;
    info.shape = std::move(shape);
    info.data = reinterpret_cast<const uint8_t*>(data_[name].data());
    info.nbytes = data_[name].size() * sizeof(float);
    tensors_[name] = info;
  }
  const std::vector<float>& values(const std::string& name) const { return data_.at(name); }

  const std::string& path() const override { return path_; }
  std::string format() const override { return "memory"; }
  const hc::ModelConfig& config() const override { return config_; }
  const std::map<std::string, hc::TensorInfo>& tensors() const override { return tensors_; }
  std::vector<std::pair<std::string, std::string>> metadata_summary() const override { return {}; }
  std::vector<float> load_f32(const std::string& name, const std::vector<int64_t>& expected) const override {
    const hc::TensorInfo& info = tensor(name);
    if (!expected.empty() && info.shape != expected)
      throw hc::InputError(path_, "tensor " + name + " has shape " + hc::shape_string(info.shape) + ", expected " +
                                      hc::shape_string(expected));
    return data_.at(name);
  }
  std::string fingerprint() const override { return "memory"; }

 private:
  std::string path_ = "<memory model>";
  hc::ModelConfig config_;
  std::map<std::string, std::vector<float>> data_;
  std::map<std::string, hc::TensorInfo> tensors_;
};

struct Variant {
  bool qkv_bias = false;
  bool tied = true;
  hc::RopeScalingType scaling = hc::RopeScalingType::None;
  int64_t head_dim = 8;
  // GLM-4: q/k/v biases, RoPE on the first glm4_rotary dimensions in interleaved pairs, RMSNorm of
  // each block's output before the residual add.
  int64_t glm4_rotary = 0;
};

hc::ModelConfig tiny_config(const Variant& var) {
  hc::ModelConfig c;
  c.arch = var.qkv_bias ? "qwen2" : "llama";
  c.name = "tiny";
  c.n_layers = 2;
  c.n_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = var.head_dim;
  c.hidden = 32;
  c.intermediate = 48;
  c.vocab = 50;
  c.max_context = 256;
  c.rms_eps = 1e-5;
  c.rope_theta = 10000.0;
  c.qkv_bias = var.qkv_bias;
  c.tie_embeddings = var.tied;
  c.rope_scaling.type = var.scaling;
  if (var.glm4_rotary > 0) {
    c.arch = "glm4";
    c.qkv_bias = true;
    c.rotary_dim = var.glm4_rotary;
    c.rope_interleaved = true;
    c.post_norms = true;
  }
  if (var.scaling == hc::RopeScalingType::Llama3) {
    // With theta 1e4 and head_dim 16 the wavelengths are 6.3, 20, 63, 199, ...: against
    // original_max 64 (thresholds 16 and 64) the pairs fall in all three regions (kept, smoothed, scaled).
    c.rope_scaling.factor = 8.0;
    c.rope_scaling.low_freq_factor = 1.0;
    c.rope_scaling.high_freq_factor = 4.0;
    c.rope_scaling.original_max_position = 64;
  } else if (var.scaling == hc::RopeScalingType::Linear) {
    c.rope_scaling.factor = 4.0;
  }
  return c;
}

std::unique_ptr<MemoryModel> tiny_model(const Variant& var, unsigned seed) {
  auto model = std::make_unique<MemoryModel>(tiny_config(var));
  const hc::ModelConfig& c = model->config();
  std::mt19937 rng(seed);
  auto rand = [&](std::vector<int64_t> shape, double std_dev, double mean = 0.0) {
    std::normal_distribution<float> dist(static_cast<float>(mean), static_cast<float>(std_dev));
    int64_t n = 1;
    for (int64_t s : shape) n *= s;
    std::vector<float> v(static_cast<size_t>(n));
    for (float& x : v) x = dist(rng);
    return v;
  };
  const int64_t D = c.hidden, qd = c.n_heads * c.head_dim, kvd = c.n_kv_heads * c.head_dim, F = c.intermediate;
  // Linear weights ~ 1/sqrt(fan_in) scaled up a little so attention is not uniform.
  const double wd = 1.5 / std::sqrt(double(D));
  model->add(tn::embed(), {c.vocab, D}, rand({c.vocab, D}, 1.0));
  model->add(tn::final_norm(), {D}, rand({D}, 0.1, 1.0));
  if (!c.tie_embeddings) model->add(tn::lm_head(), {c.vocab, D}, rand({c.vocab, D}, wd));
  for (int i = 0; i < c.n_layers; ++i) {
    model->add(tn::attn_norm(i), {D}, rand({D}, 0.1, 1.0));
    model->add(tn::q_proj(i), {qd, D}, rand({qd, D}, 2 * wd));
    model->add(tn::k_proj(i), {kvd, D}, rand({kvd, D}, 2 * wd));
    model->add(tn::v_proj(i), {kvd, D}, rand({kvd, D}, wd));
    if (c.qkv_bias) {
      model->add(tn::q_bias(i), {qd}, rand({qd}, 0.5));
      model->add(tn::k_bias(i), {kvd}, rand({kvd}, 0.5));
      model->add(tn::v_bias(i), {kvd}, rand({kvd}, 0.5));
    }
    model->add(tn::o_proj(i), {D, qd}, rand({D, qd}, 1.0 / std::sqrt(double(qd))));
    model->add(tn::mlp_norm(i), {D}, rand({D}, 0.1, 1.0));
    model->add(tn::gate_proj(i), {F, D}, rand({F, D}, wd));
    model->add(tn::up_proj(i), {F, D}, rand({F, D}, wd));
    model->add(tn::down_proj(i), {D, F}, rand({D, F}, 1.0 / std::sqrt(double(F))));
    if (c.post_norms) {
      model->add(tn::post_attn_out_norm(i), {D}, rand({D}, 0.3, 1.0));
      model->add(tn::post_mlp_norm(i), {D}, rand({D}, 0.3, 1.0));
    }
  }
  return model;
}

// ---- independent naive forward in double ----

using Mat = std::vector<std::vector<double>>;  // [rows][cols]

Mat linear(const Mat& x, const std::vector<float>& w, int64_t out, int64_t in, const std::vector<float>* bias) {
  Mat y(x.size(), std::vector<double>(static_cast<size_t>(out), 0.0));
  for (size_t t = 0; t < x.size(); ++t)
    for (int64_t o = 0; o < out; ++o) {
      double s = bias ? (*bias)[o] : 0.0;
      for (int64_t i = 0; i < in; ++i) s += double(w[o * in + i]) * x[t][i];
      y[t][o] = s;
    }
  return y;
}

Mat rms(const Mat& x, const std::vector<float>& w, double eps) {
  Mat y = x;
  for (auto& row : y) {
    double ss = 0;
    for (double v : row) ss += v * v;
    const double inv = 1.0 / std::sqrt(ss / double(row.size()) + eps);
    for (size_t c = 0; c < row.size(); ++c) row[c] = row[c] * inv * w[c];
  }
  return y;
}

// Written from the Llama 3.1 reference formula, independently of calib/rope.cpp.
std::vector<double> naive_inv_freq(const hc::ModelConfig& c) {
  const int64_t r = c.rotary_dim > 0 ? c.rotary_dim : c.head_dim;  // the rotated dimensions
  std::vector<double> f;
  for (int64_t i = 0; i < r; i += 2) f.push_back(std::pow(c.rope_theta, -double(i) / double(r)));
  const auto& s = c.rope_scaling;
  for (double& x : f) {
    if (s.type == hc::RopeScalingType::Linear) x = x / s.factor;
    if (s.type == hc::RopeScalingType::Llama3) {
      const double wavelen = 2 * M_PI / x;
      const double lo = double(s.original_max_position) / s.low_freq_factor;
      const double hi = double(s.original_max_position) / s.high_freq_factor;
      if (wavelen > lo) {
        x = x / s.factor;
      } else if (wavelen >= hi) {
        const double smooth = (double(s.original_max_position) / wavelen - s.low_freq_factor) /
                              (s.high_freq_factor - s.low_freq_factor);
        x = (1 - smooth) * x / s.factor + smooth * x;
      }
    }
  }
  return f;
}

// Pair t of a head: (t, t + r/2), or (2t, 2t + 1) when interleaved, r = 2 * inv_freq.size();
// dimensions from r on are left alone.
void rope(Mat& x, int64_t heads, int64_t d, const std::vector<double>& inv_freq, bool interleaved) {
  const int64_t half = static_cast<int64_t>(inv_freq.size());
  for (size_t pos = 0; pos < x.size(); ++pos)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t t = 0; t < half; ++t) {
        const double a = double(pos) * inv_freq[t];
        double& x1 = x[pos][h * d + (interleaved ? 2 * t : t)];
        double& x2 = x[pos][h * d + (interleaved ? 2 * t + 1 : t + half)];
        const double r1 = x1 * std::cos(a) - x2 * std::sin(a), r2 = x2 * std::cos(a) + x1 * std::sin(a);
        x1 = r1;
        x2 = r2;
      }
}

struct NaiveOutput {
  Mat logits;                      // [N][vocab]
  std::vector<Mat> attention_out;  // per layer [N][H*d], before o_proj
  std::vector<std::vector<double>> lse;  // per layer [H*N]
  Mat final_hidden;                // [N][D]
};

NaiveOutput naive_forward(const MemoryModel& m, const std::vector<int32_t>& tokens) {
  const hc::ModelConfig& c = m.config();
  const int64_t N = int64_t(tokens.size()), D = c.hidden, H = c.n_heads, Hkv = c.n_kv_heads, d = c.head_dim;
  const int64_t F = c.intermediate;
  const auto inv_freq = naive_inv_freq(c);
  NaiveOutput out;
  Mat x(N, std::vector<double>(D));
  for (int64_t t = 0; t < N; ++t)
    for (int64_t i = 0; i < D; ++i) x[t][i] = m.values(tn::embed())[tokens[t] * D + i];
  for (int l = 0; l < c.n_layers; ++l) {
    Mat h = rms(x, m.values(tn::attn_norm(l)), c.rms_eps);
    const std::vector<float>* bq = c.qkv_bias ? &m.values(tn::q_bias(l)) : nullptr;
    const std::vector<float>* bk = c.qkv_bias ? &m.values(tn::k_bias(l)) : nullptr;
    const std::vector<float>* bv = c.qkv_bias ? &m.values(tn::v_bias(l)) : nullptr;
    Mat q = linear(h, m.values(tn::q_proj(l)), H * d, D, bq);
    Mat k = linear(h, m.values(tn::k_proj(l)), Hkv * d, D, bk);
    Mat v = linear(h, m.values(tn::v_proj(l)), Hkv * d, D, bv);
    rope(q, H, d, inv_freq, c.rope_interleaved);
    rope(k, Hkv, d, inv_freq, c.rope_interleaved);
    Mat att(N, std::vector<double>(H * d, 0.0));
    std::vector<double> lse(H * N);
    for (int64_t hh = 0; hh < H; ++hh) {
      const int64_t g = hh / (H / Hkv);
      for (int64_t i = 0; i < N; ++i) {
        std::vector<double> s(i + 1);
        double sum = 0;
        for (int64_t j = 0; j <= i; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < d; ++e) dot += q[i][hh * d + e] * k[j][g * d + e];
          s[j] = std::exp(dot / std::sqrt(double(d)));
          sum += s[j];
        }
        lse[hh * N + i] = std::log(sum);
        for (int64_t j = 0; j <= i; ++j)
          for (int64_t e = 0; e < d; ++e) att[i][hh * d + e] += s[j] / sum * v[j][g * d + e];
      }
    }
    out.attention_out.push_back(att);
    out.lse.push_back(lse);
    Mat o = linear(att, m.values(tn::o_proj(l)), D, H * d, nullptr);
    if (c.post_norms) o = rms(o, m.values(tn::post_attn_out_norm(l)), c.rms_eps);
    for (int64_t t = 0; t < N; ++t)
      for (int64_t i = 0; i < D; ++i) x[t][i] += o[t][i];
    h = rms(x, m.values(tn::mlp_norm(l)), c.rms_eps);
    Mat gate = linear(h, m.values(tn::gate_proj(l)), F, D, nullptr);
    Mat up = linear(h, m.values(tn::up_proj(l)), F, D, nullptr);
    for (int64_t t = 0; t < N; ++t)
      for (int64_t i = 0; i < F; ++i) gate[t][i] = gate[t][i] / (1 + std::exp(-gate[t][i])) * up[t][i];
    Mat down = linear(gate, m.values(tn::down_proj(l)), D, F, nullptr);
    if (c.post_norms) down = rms(down, m.values(tn::post_mlp_norm(l)), c.rms_eps);
    for (int64_t t = 0; t < N; ++t)
      for (int64_t i = 0; i < D; ++i) x[t][i] += down[t][i];
  }
  out.final_hidden = rms(x, m.values(tn::final_norm()), c.rms_eps);
  const std::string out_name = c.tie_embeddings ? tn::embed() : tn::lm_head();
  out.logits = linear(out.final_hidden, m.values(out_name), c.vocab, D, nullptr);
  return out;
}

std::vector<int32_t> tokens_for(int64_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int32_t> dist(0, 49);
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (auto& x : t) x = dist(rng);
  return t;
}

void check_variant(const Variant& var, int64_t N) {
  CAPTURE(var.qkv_bias, var.tied, static_cast<int>(var.scaling), var.head_dim, var.glm4_rotary, N);
  auto model = tiny_model(var, 1234u + static_cast<unsigned>(var.head_dim));
  auto engine = hc::make_cpu_engine(*model, 2);
  REQUIRE(engine->backend() == "cpu");
  REQUIRE(engine->config().n_layers == 2);
  const auto tokens = tokens_for(N, 77u);
  const NaiveOutput ref = naive_forward(*model, tokens);

  int hook_calls = 0;
  double max_att_err = 0, max_lse_err = 0;
  hc::PrefillRequest req;
  req.tokens = tokens;
  req.want_final_hidden = true;
  req.on_layer = [&](const hc::LayerAttention& la) {
    ++hook_calls;
    REQUIRE(la.dims.n_tokens == N);
    REQUIRE(la.dims.n_heads == 4);
    REQUIRE(la.dims.n_kv_heads == 2);
    REQUIRE(la.dims.head_dim == var.head_dim);
    const auto& att = ref.attention_out[static_cast<size_t>(la.layer)];
    for (int64_t t = 0; t < N; ++t)
      for (int64_t i = 0; i < 4 * var.head_dim; ++i)
        max_att_err = std::max(max_att_err, std::abs(la.o[t * 4 * var.head_dim + i] - att[t][i]));
    for (int64_t i = 0; i < 4 * N; ++i)
      max_lse_err = std::max(max_lse_err, std::abs(la.lse[i] - ref.lse[static_cast<size_t>(la.layer)][i]));
  };
  const hc::PrefillResult res = engine->prefill(req);
  CHECK(hook_calls == 2);
  CAPTURE(max_att_err, max_lse_err);
  CHECK(max_att_err < 1e-4);
  CHECK(max_lse_err < 1e-4);

  REQUIRE(res.logits.size() == static_cast<size_t>(N * 50));
  REQUIRE(res.logit_positions.size() == static_cast<size_t>(N));
  double max_abs = 0, max_err = 0;
  for (int64_t t = 0; t < N; ++t)
    for (int64_t v = 0; v < 50; ++v) {
      max_abs = std::max(max_abs, std::abs(ref.logits[t][v]));
      max_err = std::max(max_err, std::abs(res.logits[t * 50 + v] - ref.logits[t][v]));
    }
  CAPTURE(max_abs, max_err);
  REQUIRE(max_abs > 0.5);  // the comparison means something
  CHECK(max_err <= 1e-4 * std::max(1.0, max_abs));

  REQUIRE(res.final_hidden.size() == static_cast<size_t>(N * 32));
  double max_hidden_err = 0;
  for (int64_t t = 0; t < N; ++t)
    for (int64_t i = 0; i < 32; ++i)
      max_hidden_err = std::max(max_hidden_err, std::abs(res.final_hidden[t * 32 + i] - ref.final_hidden[t][i]));
  CHECK(max_hidden_err < 1e-4);

  // A subset of positions gives exactly those rows; the hook range limits the calls.
  hc::PrefillRequest sub;
  sub.tokens = tokens;
  sub.logit_positions = {N - 1, 0, N / 2};
  sub.first_layer = 1;
  std::vector<int> layers_seen;
  sub.on_layer = [&](const hc::LayerAttention& la) { layers_seen.push_back(la.layer); };
  const hc::PrefillResult part = engine->prefill(sub);
  CHECK(layers_seen == std::vector<int>{1});
  CHECK(part.final_hidden.empty());
  REQUIRE(part.logits.size() == 3 * 50u);
  CHECK(part.logit_positions == sub.logit_positions);
  for (size_t r = 0; r < 3; ++r)
    for (int64_t v = 0; v < 50; ++v)
      CHECK(part.logits[r * 50 + v] == Approx(res.logits[sub.logit_positions[r] * 50 + v]).margin(1e-5));
}

}  // namespace

TEST_CASE("cpu engine matches a naive double forward", "[calib][cpu_engine]") {
  SECTION("llama, tied, no scaling, head_dim 8") { check_variant({false, true, hc::RopeScalingType::None, 8}, 70); }
  SECTION("qkv bias, untied, llama3 scaling, head_dim 16") {
    check_variant({true, false, hc::RopeScalingType::Llama3, 16}, 70);
  }
  SECTION("linear scaling, head_dim 16, few tokens") {
    check_variant({false, true, hc::RopeScalingType::Linear, 16}, 5);
  }
  SECTION("single token") { check_variant({false, false, hc::RopeScalingType::None, 8}, 1); }
  SECTION("glm4: 6 of 16 dimensions rotate in interleaved pairs, biases, post norms") {
    check_variant({false, false, hc::RopeScalingType::None, 16, 6}, 70);
  }
  SECTION("glm4 with linear scaling, 8 of 8 dimensions interleaved") {
    check_variant({false, true, hc::RopeScalingType::Linear, 8, 8}, 33);
  }
}

TEST_CASE("rope_inv_freq follows the llama3 rule", "[calib][rope]") {
  hc::ModelConfig c = tiny_config({false, true, hc::RopeScalingType::Llama3, 16});
  const auto f = hc::rope_inv_freq(c);
  const auto expected = naive_inv_freq(c);
  REQUIRE(f.size() == 8);
  for (size_t i = 0; i < f.size(); ++i) CHECK(f[i] == Approx(expected[i]).epsilon(1e-6));
  // The shortest wave is kept, the longest is divided by the factor, one in between is smoothed.
  CHECK(f[0] == Approx(1.0).epsilon(1e-7));
  CHECK(f[7] == Approx(std::pow(1e4, -14.0 / 16.0) / 8.0).epsilon(1e-6));
  const double raw2 = std::pow(1e4, -4.0 / 16.0);
  CHECK(f[2] < raw2);
  CHECK(f[2] > raw2 / 8.0);

  hc::RopeTable table = hc::rope_table(c, 3000);
  // pos 2999, pair 0: angle 2999 rad (formed in double).
  CHECK(table.cos[2999 * 8] == Approx(std::cos(2999.0)).margin(1e-6));
  CHECK(table.sin[2999 * 8] == Approx(std::sin(2999.0)).margin(1e-6));
}

TEST_CASE("rope_inv_freq and the cos/sin magnitude follow the yarn rule", "[calib][rope]") {
  hc::ModelConfig c = tiny_config({false, true, hc::RopeScalingType::None, 16});
  c.rope_theta = 10000.0;
  c.rope_scaling.type = hc::RopeScalingType::Yarn;
  c.rope_scaling.factor = 4.0;
  c.rope_scaling.original_max_position = 64;
  // Pair index turning r times over 64 positions: 16 ln(64 / (2 pi r)) / (2 ln 1e4):
  // r = 32 -> -0.99 (floor -1, clamped to 0); r = 1 -> 2.02 (ceil 3). Ramp over t in [0, 3].
  const auto f = hc::rope_inv_freq(c);
  REQUIRE(f.size() == 8);
  auto raw = [](int t) { return std::pow(1e4, -2.0 * t / 16.0); };
  CHECK(f[0] == Approx(raw(0)).epsilon(1e-6));
  CHECK(f[1] == Approx(raw(1) * (1.0 / 3.0 / 4.0 + 2.0 / 3.0)).epsilon(1e-6));
  CHECK(f[2] == Approx(raw(2) * (2.0 / 3.0 / 4.0 + 1.0 / 3.0)).epsilon(1e-6));
  for (int t = 3; t < 8; ++t) CHECK(f[static_cast<size_t>(t)] == Approx(raw(t) / 4.0).epsilon(1e-6));
  CHECK(hc::rope_attention_factor(c) == Approx(0.1 * std::log(4.0) + 1.0).epsilon(1e-12));

  // Without truncation the ramp runs over the exact [0, 2.016] range.
  c.rope_scaling.yarn_truncate = false;
  const double high = 16.0 * std::log(64.0 / (2.0 * M_PI)) / (2.0 * std::log(1e4));
  const double ramp1 = 1.0 / high;
  CHECK(hc::rope_inv_freq(c)[1] == Approx(raw(1) * (ramp1 / 4.0 + (1.0 - ramp1))).epsilon(1e-6));
  const double ramp2 = 2.0 / high;  // just below 1: pair 2 keeps a little of its own frequency
  CHECK(hc::rope_inv_freq(c)[2] == Approx(raw(2) * (ramp2 / 4.0 + (1.0 - ramp2))).epsilon(1e-6));
  CHECK(hc::rope_inv_freq(c)[2] != Approx(raw(2) / 4.0).epsilon(1e-6));
  c.rope_scaling.yarn_truncate = true;

  // The table carries the magnitude: cos^2 + sin^2 = attention_factor^2.
  const hc::RopeTable table = hc::rope_table(c, 100);
  const double m = hc::rope_attention_factor(c);
  for (size_t i : {size_t(0), size_t(99 * 8 + 5)})
    CHECK(double(table.cos[i]) * table.cos[i] + double(table.sin[i]) * table.sin[i] == Approx(m * m).epsilon(1e-6));
  CHECK(table.cos[99 * 8 + 5] == Approx(m * std::cos(99.0 * raw(5) / 4.0)).margin(1e-6));

  // Explicit attention_factor wins; mscale / mscale_all_dim are used when both are set; a factor
  // <= 1 gives magnitude 1.
  c.rope_scaling.mscale = 2.0;
  c.rope_scaling.mscale_all_dim = 1.0;
  CHECK(hc::rope_attention_factor(c) == Approx((0.2 * std::log(4.0) + 1.0) / (0.1 * std::log(4.0) + 1.0)));
  c.rope_scaling.attention_factor = 0.75;
  CHECK(hc::rope_attention_factor(c) == 0.75);
  c.rope_scaling.attention_factor = 0.0;
  c.rope_scaling.factor = 1.0;
  CHECK(hc::rope_attention_factor(c) == 1.0);
  c.rope_scaling.type = hc::RopeScalingType::Linear;
  c.rope_scaling.factor = 4.0;
  CHECK(hc::rope_attention_factor(c) == 1.0);
}

TEST_CASE("longrope: factor set chosen by the prefill length, magnitude from factor and original", "[calib][rope]") {
  hc::ModelConfig c = tiny_config({false, true, hc::RopeScalingType::None, 16});
  c.rope_theta = 10000.0;
  c.rotary_dim = 10;  // partial rotary: 5 pairs, the theta exponent over 10 dimensions
  hc::RopeScaling& s = c.rope_scaling;
  s.type = hc::RopeScalingType::LongRope;
  s.original_max_position = 64;
  s.factor = 4.0;
  s.short_factor = {1.0, 1.5, 2.0, 2.5, 3.0};
  s.long_factor = {1.0, 3.0, 5.0, 7.0, 9.0};
  auto raw = [](int t) { return std::pow(1e4, -2.0 * t / 10.0); };
  for (const int64_t n : {int64_t(0), int64_t(1), int64_t(64), int64_t(65), int64_t(4096)}) {
    INFO("prefill of " << n);
    const auto f = hc::rope_inv_freq(c, n);
    REQUIRE(f.size() == 5);
    const std::vector<double>& ext = n > 64 ? s.long_factor : s.short_factor;  // 64 itself is short
    for (int t = 0; t < 5; ++t) CHECK(f[static_cast<size_t>(t)] == Approx(raw(t) / ext[static_cast<size_t>(t)]).epsilon(1e-6));
  }
  // sqrt(1 + ln(factor) / ln(original)) at every length; an explicit attention_factor wins; no
  // stretch (factor <= 1) gives 1.
  CHECK(hc::rope_attention_factor(c) == Approx(std::sqrt(1.0 + std::log(4.0) / std::log(64.0))).epsilon(1e-12));
  const hc::RopeTable table = hc::rope_table(c, 65);
  REQUIRE(table.half_dim == 5);
  const double m = hc::rope_attention_factor(c);
  CHECK(table.cos[64 * 5 + 3] == Approx(m * std::cos(64.0 * raw(3) / 7.0)).margin(1e-6));
  CHECK(hc::rope_table(c, 64).cos[63 * 5 + 3] == Approx(m * std::cos(63.0 * raw(3) / 2.5)).margin(1e-6));
  s.attention_factor = 1.2;
  CHECK(hc::rope_attention_factor(c) == 1.2);
  s.attention_factor = 0.0;
  s.factor = 1.0;
  CHECK(hc::rope_attention_factor(c) == 1.0);
  // A list of the wrong length is refused.
  s.long_factor.pop_back();
  CHECK_THROWS_AS(hc::rope_inv_freq(c, 100), hc::InputError);
}

TEST_CASE("partial rotary: the first rotary_dim dimensions of each head turn, the rest pass", "[calib][rope]") {
  hc::ModelConfig c = tiny_config({false, true, hc::RopeScalingType::None, 16});
  c.rotary_dim = 6;
  const hc::RopeTable table = hc::rope_table(c, 3);
  REQUIRE(table.half_dim == 3);
  const int64_t heads = 3, d = 16;  // odd head count
  std::vector<float> x(static_cast<size_t>(3 * heads * d));  // [tokens, heads, head_dim]
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>(std::sin(0.7 * static_cast<double>(i)));
  const std::vector<float> before = x;
  hc::apply_rope_rotate_half(table, x.data(), 3, heads, d);
  for (int64_t tok = 0; tok < 3; ++tok)
    for (int64_t h = 0; h < heads; ++h) {
      const float* a = before.data() + (tok * heads + h) * d;
      const float* b = x.data() + (tok * heads + h) * d;
      for (int64_t t = 0; t < 3; ++t) {  // pair (t, t + 3), angle tok * theta^(-2t/6)
        const double angle = static_cast<double>(tok) * std::pow(c.rope_theta, -2.0 * t / 6.0);
        CHECK(b[t] == Approx(a[t] * std::cos(angle) - a[t + 3] * std::sin(angle)).margin(1e-6));
        CHECK(b[t + 3] == Approx(a[t + 3] * std::cos(angle) + a[t] * std::sin(angle)).margin(1e-6));
      }
      for (int64_t i = 6; i < d; ++i) CHECK(b[i] == a[i]);
    }
}

TEST_CASE("interleaved rope: pairs (2t, 2t + 1) of the rotated dimensions, the rest pass", "[calib][rope]") {
  hc::ModelConfig c = tiny_config({false, true, hc::RopeScalingType::None, 10});
  c.rotary_dim = 6;  // 3 pairs, an odd count; dimensions 6..9 pass through
  c.rope_theta = 100.0;
  const int64_t n_tokens = 3, n_heads = 2;
  const hc::RopeTable table = hc::rope_table(c, n_tokens);
  REQUIRE(table.half_dim == 3);
  std::vector<float> before(static_cast<size_t>(n_tokens * n_heads * 10));  // [3, 2, 10]
  for (size_t i = 0; i < before.size(); ++i) before[i] = 0.1f * static_cast<float>(i % 17) - 0.7f;
  std::vector<float> x = before;
  hc::apply_rope_interleaved(table, x.data(), n_tokens, n_heads, 10);
  for (int64_t tok = 0; tok < n_tokens; ++tok)
    for (int64_t h = 0; h < n_heads; ++h) {
      const float* in = before.data() + (tok * n_heads + h) * 10;
      const float* out = x.data() + (tok * n_heads + h) * 10;
      for (int t = 0; t < 3; ++t) {
        const double a = double(tok) * std::pow(100.0, -2.0 * t / 6.0);
        CHECK(out[2 * t] == Approx(in[2 * t] * std::cos(a) - in[2 * t + 1] * std::sin(a)).margin(1e-6));
        CHECK(out[2 * t + 1] == Approx(in[2 * t + 1] * std::cos(a) + in[2 * t] * std::sin(a)).margin(1e-6));
      }
      for (int e = 6; e < 10; ++e) CHECK(out[e] == in[e]);
    }
}

TEST_CASE("cpu engine attention override replaces dense attention", "[calib][cpu_engine]") {
  auto model = tiny_model({true, true, hc::RopeScalingType::None, 16}, 11u);
  auto engine = hc::make_cpu_engine(*model, 2);
  const auto tokens = tokens_for(40, 3u);
  hc::PrefillRequest plain;
  plain.tokens = tokens;
  const hc::PrefillResult dense = engine->prefill(plain);

  // An override that runs the same dense reference gives the same logits, and sees the roped q/k
  // the hook would see.
  std::vector<int> override_layers;
  std::vector<float> hook_q, override_q;
  hc::PrefillRequest same;
  same.tokens = tokens;
  same.attention_override = [&](const hc::LayerAttentionInput& in, float* o, float* lse) {
    override_layers.push_back(in.layer);
    REQUIRE(in.dims.n_tokens == 40);
    REQUIRE(in.dims.head_dim == 16);
    if (in.layer == 1) override_q.assign(in.q, in.q + 40 * 4 * 16);
    hc::kernels::dense_attention_ref(in.dims, in.q, in.k, in.v, o, lse, 1);
  };
  same.on_layer = [&](const hc::LayerAttention& la) {
    if (la.layer == 1) hook_q.assign(la.q, la.q + 40 * 4 * 16);
  };
  const hc::PrefillResult via_override = engine->prefill(same);
  CHECK(override_layers == std::vector<int>{0, 1});
  CHECK(hook_q == override_q);
  REQUIRE(via_override.logits.size() == dense.logits.size());
  for (size_t i = 0; i < dense.logits.size(); ++i) CHECK(via_override.logits[i] == Approx(dense.logits[i]).margin(1e-6));

  // Its output flows on: zero attention changes the logits, and the hook sees what it wrote.
  hc::PrefillRequest zero;
  zero.tokens = tokens;
  zero.attention_override = [&](const hc::LayerAttentionInput& in, float* o, float* lse) {
    std::fill(o, o + in.dims.n_tokens * in.dims.n_heads * in.dims.head_dim, 0.f);
    std::fill(lse, lse + in.dims.n_heads * in.dims.n_tokens, 1.5f);
  };
  bool hook_saw_written = true;
  zero.on_layer = [&](const hc::LayerAttention& la) {
    for (int64_t i = 0; i < la.dims.n_heads * la.dims.n_tokens; ++i) hook_saw_written &= la.lse[i] == 1.5f;
  };
  const hc::PrefillResult zeroed = engine->prefill(zero);
  CHECK(hook_saw_written);
  double max_change = 0;
  for (size_t i = 0; i < dense.logits.size(); ++i)
    max_change = std::max(max_change, double(std::abs(zeroed.logits[i] - dense.logits[i])));
  CHECK(max_change > 1e-2);

  hc::PrefillRequest device;
  device.tokens = tokens;
  device.device_attention_override = [](const hc::DeviceAttentionInput&, void*, float*) {};
  CHECK_THROWS_AS(engine->prefill(device), hc::InputError);
}

TEST_CASE("cpu engine stops after the last hooked layer unless logits or the final state are wanted",
          "[calib][cpu_engine]") {
  auto model = tiny_model({}, 13u);  // two layers
  auto engine = hc::make_cpu_engine(*model, 2);
  std::vector<int> ran;
  std::vector<float> lse_of_0;
  auto request = [&](bool logits, bool final_hidden) {
    hc::PrefillRequest r;
    r.tokens = tokens_for(30, 5u);
    r.last_layer = 0;
    r.want_logits = logits;
    r.want_final_hidden = final_hidden;
    r.attention_override = [&](const hc::LayerAttentionInput& in, float* o, float* lse) {
      ran.push_back(in.layer);
      hc::kernels::dense_attention_ref(in.dims, in.q, in.k, in.v, o, lse, 1);
    };
    r.on_layer = [&](const hc::LayerAttention& la) {
      lse_of_0.assign(la.lse, la.lse + la.dims.n_heads * la.dims.n_tokens);
    };
    return r;
  };
  const hc::PrefillResult all = engine->prefill(request(true, false));
  CHECK(ran == std::vector<int>{0, 1});
  const std::vector<float> lse_full_run = lse_of_0;
  CHECK_FALSE(all.logits.empty());

  ran.clear();
  engine->prefill(request(false, true));
  CHECK(ran == std::vector<int>{0, 1});

  ran.clear();
  lse_of_0.clear();
  const hc::PrefillResult hooked_only = engine->prefill(request(false, false));
  CHECK(ran == std::vector<int>{0});
  CHECK(lse_of_0 == lse_full_run);  // the hooked layer sees what it sees in a full run
  CHECK(hooked_only.logits.empty());
}

TEST_CASE("cpu engine rejects bad requests", "[calib][cpu_engine]") {
  auto model = tiny_model({}, 5u);
  auto engine = hc::make_cpu_engine(*model, 1);
  hc::PrefillRequest empty;
  CHECK_THROWS_AS(engine->prefill(empty), hc::InputError);
  hc::PrefillRequest bad_id;
  bad_id.tokens = {1, 50};
  CHECK_THROWS_AS(engine->prefill(bad_id), hc::InputError);
  hc::PrefillRequest bad_pos;
  bad_pos.tokens = {1, 2};
  bad_pos.logit_positions = {2};
  CHECK_THROWS_AS(engine->prefill(bad_pos), hc::InputError);
  hc::PrefillRequest bad_layer;
  bad_layer.tokens = {1, 2};
  bad_layer.first_layer = 2;
  CHECK_THROWS_AS(engine->prefill(bad_layer), hc::InputError);
}

TEST_CASE("cpu engine reports a misshapen tensor", "[calib][cpu_engine]") {
  Variant var;
  auto model = tiny_model(var, 6u);
  model->add(tn::k_proj(1), {16, 32}, std::vector<float>(16 * 32, 0.f));  // kv rows should be 2*8 = 16: ok
  CHECK_NOTHROW(hc::make_cpu_engine(*model, 1));
  model->add(tn::k_proj(1), {24, 32}, std::vector<float>(24 * 32, 0.f));
  CHECK_THROWS_AS(hc::make_cpu_engine(*model, 1), hc::InputError);
}

// validate: dense vs sparse prefill on tiny random-weight models (CPU), the logit comparison, the
// profile checks, `headcal validate`, and CUDA against CPU ([gpu]).
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "calib/cuda_engine.h"
#include "calib/layer_sensitivity.h"
#include "calib/random_model.h"
#include "calib/record.h"
#include "calib/validate.h"
#include "catch.h"
#include "common/error.h"
#include "io/model/model_file.h"
#include "io/calibration/profile.h"
#include "kernels/sparse/index_ref.h"
#include "kernels/sparse/sparse_attention_ref.h"
#include "io/prompt/prompt.h"

namespace {

using hc::Pattern;

struct HeadChoice {
  Pattern pattern = Pattern::dense;
  int32_t p1 = 0;
  int32_t p2 = 0;
};
using Chooser = std::function<HeadChoice(int64_t layer, int64_t head)>;

hc::Profile make_profile(const hc::ModelConfig& c, const std::string& fingerprint, const Chooser& choose) {
  hc::Profile p;
  p.model.name = c.name;
  p.model.arch = c.arch;
  p.model.layers = c.n_layers;
  p.model.heads = c.n_heads;
  p.model.kv_heads = c.n_kv_heads;
  p.model.head_dim = c.head_dim;
  p.model.fingerprint = fingerprint;
  p.calibration.prompt = "test";
  p.calibration.tokens = 100;
  p.calibration.budget_mode = "imported";
  p.calibration.tool_version = "test";
  for (int64_t l = 0; l < c.n_layers; ++l)
    for (int64_t h = 0; h < c.n_heads; ++h) {
      const HeadChoice ch = choose(l, h);
      hc::ProfileHead e;
      e.layer = l;
      e.head = h;
      e.pattern = ch.pattern;
      e.p1 = ch.p1;
      e.p2 = ch.p2;
      e.recall = 0.9;
      e.density = 0.5;
      p.heads.push_back(e);
    }
  return p;
}

hc::Profile all_dense(const hc::ModelConfig& c, const std::string& fp) {
  return make_profile(c, fp, [](int64_t, int64_t) { return HeadChoice{}; });
}

// Very sparse, every pattern: a tiny A-shape, a minimal vertical-slash (v_sink and s_local only)
// and block-sparse with 2 blocks; layer 1 head 1 stays dense.
hc::Profile very_sparse(const hc::ModelConfig& c, const std::string& fp) {
  return make_profile(c, fp, [](int64_t l, int64_t h) {
    if (l == 1 && h == 1) return HeadChoice{};
    switch (h % 3) {
      case 0: return HeadChoice{Pattern::a_shape, 1, 4};
      case 1: return HeadChoice{Pattern::vertical_slash, 30, 100};
      default: return HeadChoice{Pattern::block_sparse, 2, 0};
    }
  });
}

std::vector<int32_t> test_tokens(int64_t n, int64_t vocab, uint64_t seed = 7) {
  return hc::random_token_ids(n, vocab, seed);
}

hc::ModelConfig config_d128_mqa() {
  hc::ModelConfig c = hc::tiny_llama_config();
  c.n_heads = 4;
  c.n_kv_heads = 1;
  c.head_dim = 128;
  return c;
}

}  // namespace

TEST_CASE("compare_logits: KL and top-1 against hand-computed values", "[validate]") {
  // Row 0: P_a = softmax(0, ln 3) = (1/4, 3/4), P_b uniform: KL = 1/4 ln(1/2) + 3/4 ln(3/2); the
  // argmax differs (b's tie goes to the lowest id, 0). Row 1: identical rows: KL 0, same argmax.
  // Row 2: argmax differs.
  const std::vector<float> a = {0.f, std::log(3.f), 1.f, 2.f, 5.f, 1.f};  // [3, 2]
  const std::vector<float> b = {7.f, 7.f, 1.f, 2.f, 1.f, 5.f};            // [3, 2]
  const hc::LogitComparison cmp = hc::compare_logits(a.data(), b.data(), 3, 2, 2);
  const double kl0 = 0.25 * std::log(0.5) + 0.75 * std::log(1.5);
  // Row 2: P_a = softmax(5, 1), P_b = softmax(1, 5): KL = (p - q) * 4 with p = P_a[0].
  const double p = 1.0 / (1.0 + std::exp(-4.0));
  const double kl2 = p * std::log(p / (1 - p)) + (1 - p) * std::log((1 - p) / p);
  CHECK(cmp.mean_kl == Approx((kl0 + kl2) / 3).epsilon(1e-6));
  CHECK(cmp.max_kl == Approx(kl2).epsilon(1e-6));
  CHECK(cmp.top1_agreement == Approx(1.0 / 3.0));
  CHECK(hc::relative_error(a.data(), a.data(), a.size()) == 0.0);
  CHECK(hc::relative_error(a.data(), b.data(), a.size()) > 0.5);
}

TEST_CASE("validate: an all-dense profile reproduces the dense prefill exactly", "[validate]") {
  for (const hc::ModelConfig& cfg : {hc::tiny_llama_config(), config_d128_mqa()}) {
    INFO("head_dim " << cfg.head_dim << ", kv heads " << cfg.n_kv_heads);
    hc::RandomModel model(cfg, 3, "tiny");
    auto engine = hc::make_cpu_engine(model, 2);
    for (int64_t n : {37, 130}) {
      INFO("N = " << n);
      const hc::Profile profile = all_dense(cfg, model.fingerprint());
      const hc::ValidationReport r =
          hc::validate_profile_run(*engine, model.fingerprint(), profile, test_tokens(n, cfg.vocab), {});
      CHECK(r.backend == "cpu");
      CHECK(r.n_tokens == n);
      CHECK(r.mean_kl <= 1e-9);
      CHECK(r.max_kl <= 1e-9);
      CHECK(r.top1_agreement == 1.0);
      CHECK(r.hidden_rel_error == 0.0);
      CHECK(r.mean_recall == 1.0);
      CHECK(r.density == 1.0);
      REQUIRE(r.heads.size() == static_cast<size_t>(cfg.n_layers * cfg.n_heads));
      for (const hc::HeadValidation& h : r.heads) CHECK(h.recall == 1.0);
      CHECK(r.dense_attention_s > 0);
      CHECK(r.sparse_attention_s > 0);
      CHECK(r.warnings.empty());
    }
  }
}

TEST_CASE("validate: a very sparse profile loses recall and moves the logits; thresholds trip", "[validate]") {
  for (const hc::ModelConfig& cfg : {hc::tiny_llama_config(), config_d128_mqa()}) {
    INFO("head_dim " << cfg.head_dim << ", kv heads " << cfg.n_kv_heads);
    hc::RandomModel model(cfg, 5, "tiny");
    auto engine = hc::make_cpu_engine(model, 2);
    const int64_t n = 300;  // 5 row blocks, the last one partial
    const hc::Profile profile = very_sparse(cfg, model.fingerprint());
    hc::ValidationReport r =
        hc::validate_profile_run(*engine, model.fingerprint(), profile, test_tokens(n, cfg.vocab), {});
    CHECK(r.mean_kl > 1e-6);
    CHECK(r.max_kl >= r.mean_kl);
    CHECK(r.hidden_rel_error > 1e-4);
    CHECK(r.top1_agreement <= 1.0);
    CHECK(r.mean_recall < 0.99);
    CHECK(r.density < 1.0);
    CHECK(r.index_build_s > 0);
    for (const hc::HeadValidation& h : r.heads) {
      INFO("L" << h.layer << "H" << h.head);
      CHECK(h.recall > 0.0);
      CHECK(h.recall <= 1.0 + 1e-6);
      if (h.config.pattern == hc::kernels::Pattern::dense) {
        CHECK(h.recall == Approx(1.0).epsilon(1e-5));
        CHECK(h.out_err < 1e-5);  // dense index through the sparse kernel, double vs float arithmetic
      } else {
        CHECK(h.recall < 0.999);
        CHECK(h.out_err > 1e-4);
        // vertical_slash(30, 100) at N = 300 covers nearly every block plus its estimate: ~1.02.
        // block_sparse(2) keeps 33424 of the 54160 kernel pairs (0.617); a_shape(1, 4) stays below 0.5.
        if (h.config.pattern != hc::kernels::Pattern::vertical_slash) CHECK(h.density < 0.7);
      }
    }

    hc::ValidateOptions loose;
    loose.min_recall = 0.0;
    loose.max_kl = 1e3;
    CHECK(hc::check_validation_thresholds(r, loose));
    CHECK(r.failures.empty());

    hc::ValidateOptions strict_recall;
    strict_recall.min_recall = 0.999;
    CHECK_FALSE(hc::check_validation_thresholds(r, strict_recall));
    REQUIRE(r.failures.size() == 1);
    CHECK(r.failures[0].find("mean recall") != std::string::npos);
    CHECK(r.failures[0].find("L0H0") != std::string::npos);  // an a_shape(1, 4) head is named

    hc::ValidateOptions strict_kl;
    strict_kl.max_kl = r.mean_kl / 2;
    CHECK_FALSE(hc::check_validation_thresholds(r, strict_kl));
    REQUIRE(r.failures.size() == 1);
    CHECK(r.failures[0].find("mean KL") != std::string::npos);
    const std::string summary = hc::validation_summary(r);
    CHECK(summary.find("FAIL") != std::string::npos);
    CHECK(summary.find("top-1 agreement") != std::string::npos);
  }
}

TEST_CASE("validate: per-head recall equals sparse_attention_ref's probe on the same q/k", "[validate]") {
  const hc::ModelConfig cfg = hc::tiny_llama_config();
  hc::RandomModel model(cfg, 11, "tiny");
  auto engine = hc::make_cpu_engine(model, 2);
  const int64_t n = 200;
  const std::vector<int32_t> tokens = test_tokens(n, cfg.vocab, 3);
  // Head 0: a_shape(4, 32); head 1: vertical_slash(40, 110); heads 2, 3 dense; layer 1 all dense.
  const hc::Profile profile = hc::Profile(make_profile(cfg, model.fingerprint(), [](int64_t l, int64_t h) {
    if (l == 0 && h == 0) return HeadChoice{Pattern::a_shape, 4, 32};
    if (l == 0 && h == 1) return HeadChoice{Pattern::vertical_slash, 40, 110};
    return HeadChoice{};
  }));
  const hc::ValidationReport r = hc::validate_profile_run(*engine, model.fingerprint(), profile, tokens, {});

  // Layer 0 sees the embeddings in both prefills: its q/k/v and dense LSE come from a plain prefill.
  std::vector<float> q, k, v, lse;
  hc::kernels::AttentionDims dims;
  hc::PrefillRequest req;
  req.tokens = tokens;
  req.want_logits = false;
  req.first_layer = req.last_layer = 0;
  req.on_layer = [&](const hc::LayerAttention& a) {
    dims = a.dims;
    q.assign(a.q, a.q + n * dims.n_heads * dims.head_dim);
    k.assign(a.k, a.k + n * dims.n_kv_heads * dims.head_dim);
    v.assign(a.v, a.v + n * dims.n_kv_heads * dims.head_dim);
    lse.assign(a.lse, a.lse + dims.n_heads * n);
  };
  engine->prefill(req);
  REQUIRE(dims.n_tokens == n);

  auto probe_recall = [&](const hc::kernels::SparseIndex& one_head, int64_t head) {
    hc::kernels::SparseRefOptions opts;
    opts.first_head = head;
    opts.dense_lse = lse.data();
    opts.n_threads = 1;
    hc::kernels::SparseProbe probe;
    hc::kernels::sparse_attention_ref(dims, q.data(), k.data(), v.data(), one_head.view(), nullptr, nullptr, opts,
                                      &probe);
    return probe.recall.at(0);
  };
  const double a_shape = probe_recall(hc::kernels::build_a_shape_index(n, 1, 4, 32), 0);
  const hc::kernels::PatternConfig vs{hc::kernels::Pattern::vertical_slash, 40, 110};
  const double vertical = probe_recall(
      hc::kernels::build_head_index(q.data(), k.data(), dims, 1, vs, hc::kernels::EstimatorSettings{}), 1);
  CHECK(a_shape < 0.99);
  CHECK(r.heads[0].recall == Approx(a_shape).epsilon(1e-12));
  CHECK(r.heads[1].recall == Approx(vertical).epsilon(1e-12));
  CHECK(r.heads[2].recall == Approx(1.0).epsilon(1e-5));  // dense head in a mixed layer: probed
  CHECK(r.heads[4].recall == 1.0);                         // all-dense layer: the dense kernel itself
}

TEST_CASE("validate: profiles that do not fit the model are bad input", "[validate]") {
  const hc::ModelConfig cfg = hc::tiny_llama_config();
  hc::RandomModel model(cfg, 1, "tiny");
  auto engine = hc::make_cpu_engine(model, 2);
  const std::vector<int32_t> tokens = test_tokens(20, cfg.vocab);

  hc::ModelConfig wrong = cfg;
  wrong.n_heads = 8;
  CHECK_THROWS_AS(hc::validate_profile_run(*engine, model.fingerprint(), all_dense(wrong, model.fingerprint()), tokens, {}),
                  hc::InputError);
  wrong = cfg;
  wrong.head_dim = 128;
  CHECK_THROWS_AS(hc::validate_profile_run(*engine, model.fingerprint(), all_dense(wrong, model.fingerprint()), tokens, {}),
                  hc::InputError);
  hc::Profile bad_block = all_dense(cfg, model.fingerprint());
  bad_block.defaults.block = 128;
  CHECK_THROWS_AS(hc::validate_profile_run(*engine, model.fingerprint(), bad_block, tokens, {}), hc::InputError);
  CHECK_THROWS_AS(hc::validate_profile_run(*engine, model.fingerprint(), all_dense(cfg, model.fingerprint()), {}, {}),
                  hc::InputError);

  // Another model's fingerprint: a warning, or an error with strict.
  const hc::Profile other = all_dense(cfg, "not-this-model");
  const hc::ValidationReport r = hc::validate_profile_run(*engine, model.fingerprint(), other, tokens, {});
  REQUIRE(r.warnings.size() == 1);
  CHECK(r.warnings[0].find("not-this-model") != std::string::npos);
  hc::ValidateOptions strict;
  strict.strict = true;
  CHECK_THROWS_AS(hc::validate_profile_run(*engine, model.fingerprint(), other, tokens, strict), hc::InputError);
}

TEST_CASE("headcal validate: exit codes, summary and JSON record", "[validate][cli]") {
  const std::string dir = hc::test::make_temp_dir("validate_cli");
  auto model = hc::open_random_model("random:tiny");
  const hc::ModelConfig cfg = model->config();
  hc::write_profile(very_sparse(cfg, model->fingerprint()), dir + "/sparse.yaml");
  hc::write_profile(all_dense(cfg, model->fingerprint()), dir + "/dense.yaml");
  hc::ModelConfig wrong = cfg;
  wrong.n_layers = 3;
  hc::write_profile(all_dense(wrong, model->fingerprint()), dir + "/wrong.yaml");

  const std::string base = "validate --model random:tiny --device cpu --threads 2 --length 90 ";
  auto r = hc::test::run_headcal(base + "--profile '" + dir + "/dense.yaml' --min-recall 0.999 --max-kl 1e-9 --json '" +
                                 dir + "/dense.json'");
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("PASS") != std::string::npos);
  {
    std::ifstream in(dir + "/dense.json");
    REQUIRE(in);
    const nlohmann::json j = nlohmann::json::parse(in);
    CHECK(j.at("format") == "headcal-validation");
    CHECK(j.at("passed") == true);
    CHECK(j.at("prompt").at("tokens") == 90);
    CHECK(j.at("summary").at("mean_kl").get<double>() == 0.0);
    CHECK(j.at("heads").size() == static_cast<size_t>(cfg.n_layers * cfg.n_heads));
  }

  r = hc::test::run_headcal(base + "--profile '" + dir + "/sparse.yaml' --min-recall 0.999 --json '" + dir +
                            "/sparse.json'");
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK(r.output.find("mean recall") != std::string::npos);
  {
    std::ifstream in(dir + "/sparse.json");
    REQUIRE(in);  // the record is written before the failure is reported
    const nlohmann::json j = nlohmann::json::parse(in);
    CHECK(j.at("passed") == false);
    CHECK(j.at("summary").at("mean_recall").get<double>() < 0.999);
  }

  r = hc::test::run_headcal(base + "--profile '" + dir + "/sparse.yaml' --max-kl 0");
  CHECK(r.exit_code == 1);
  r = hc::test::run_headcal(base + "--profile '" + dir + "/wrong.yaml'");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("layers") != std::string::npos);
  r = hc::test::run_headcal(base + "--profile '" + dir + "/missing.yaml'");
  CHECK(r.exit_code == 2);
  r = hc::test::run_headcal("validate --model random:tiny --device cpu --profile '" + dir + "/dense.yaml'");
  CHECK(r.exit_code == 2);  // no prompt
}

TEST_CASE("validate: SmolLM2 at 256 tokens, dense and mixed profiles", "[validate][smollm2]") {
  const std::string model_path = hc::test::smollm2_gguf_path();
  if (model_path.empty()) {
    if (std::getenv("HEADCAL_MODEL"))
      FAIL("HEADCAL_MODEL is set to '" << std::getenv("HEADCAL_MODEL") << "' but no model file is there");
    WARN("skipped: SmolLM2 GGUF not found (run scripts/get-model.sh or set HEADCAL_MODEL)");
    return;
  }
  auto model = hc::open_model(model_path);
  const hc::ModelConfig& cfg = model->config();
  auto engine = hc::make_cpu_engine(*model, 2);
  const std::vector<int32_t> tokens = test_tokens(256, cfg.vocab, 5);
  const hc::ValidationReport dense =
      hc::validate_profile_run(*engine, model->fingerprint(), all_dense(cfg, model->fingerprint()), tokens, {});
  CHECK(dense.mean_kl == 0.0);
  CHECK(dense.top1_agreement == 1.0);
  CHECK(dense.hidden_rel_error == 0.0);

  // A-shape everywhere but layer 0 (dense): later layers see sparse outputs, so KL > 0.
  const hc::ValidationReport mixed = hc::validate_profile_run(
      *engine, model->fingerprint(), make_profile(cfg, model->fingerprint(), [](int64_t l, int64_t h) {
        if (l == 0) return HeadChoice{};
        return h % 2 ? HeadChoice{Pattern::a_shape, 4, 64} : HeadChoice{Pattern::block_sparse, 2, 0};
      }),
      tokens, {});
  CHECK(mixed.mean_kl > 1e-4);
  CHECK(mixed.top1_agreement < 1.0);
  CHECK(mixed.mean_recall < 0.99);
  CHECK(mixed.mean_recall > 0.3);
  for (int64_t h = 0; h < cfg.n_heads; ++h) CHECK(mixed.heads[static_cast<size_t>(h)].recall == 1.0);
}

namespace {

// Every progress call of a validation, in order.
struct ProgressLog {
  std::vector<std::string> phases;
  std::vector<int> done;
  std::vector<double> elapsed, eta;
  hc::ValidateOptions options() {
    hc::ValidateOptions o;
    o.on_progress = [this](const hc::ValidateProgress& p) {
      phases.push_back(p.phase);
      done.push_back(p.layers_done);
      elapsed.push_back(p.elapsed_s);
      eta.push_back(p.eta_s());
      CHECK(p.layers_total == 2);
    };
    return o;
  }
};

// The dense prefill's layers 1, 2, then the sparse one's (or only the sparse one's).
void check_progress(const ProgressLog& log, bool with_dense) {
  std::vector<std::string> want_phases;
  std::vector<int> want_done;
  if (with_dense) want_phases = {"dense", "dense"}, want_done = {1, 2};
  want_phases.insert(want_phases.end(), {"sparse", "sparse"});
  want_done.insert(want_done.end(), {1, 2});
  CHECK(log.phases == want_phases);
  CHECK(log.done == want_done);
  for (size_t i = 0; i < log.elapsed.size(); ++i) {
    CHECK(log.elapsed[i] >= 0);
    if (i > 0 && log.phases[i] == log.phases[i - 1]) CHECK(log.elapsed[i] >= log.elapsed[i - 1]);
    if (log.done[i] == 2) CHECK(log.eta[i] == 0.0);  // the prefill's last layer
  }
}

}  // namespace

TEST_CASE("validate: CUDA agrees with the CPU on a tiny model", "[validate][gpu]") {
  HC_REQUIRE_GPU();
  for (const hc::ModelConfig& cfg : {hc::tiny_llama_config(), config_d128_mqa()}) {
    INFO("head_dim " << cfg.head_dim);
    hc::RandomModel model(cfg, 5, "tiny");
    auto cpu = hc::make_cpu_engine(model, 2);
    auto gpu = hc::make_cuda_engine(model);
    const std::vector<int32_t> tokens = test_tokens(300, cfg.vocab);

    // All dense: both runs use the same deterministic kernel on identical inputs.
    const hc::ValidationReport dense =
        hc::validate_profile_run(*gpu, model.fingerprint(), all_dense(cfg, model.fingerprint()), tokens, {});
    CHECK(dense.backend == "cuda");
    CHECK(dense.mean_kl <= 1e-9);
    CHECK(dense.hidden_rel_error == 0.0);
    CHECK(dense.top1_agreement == 1.0);

    // Static patterns (no top-k that bf16 rounding could flip): the kept sets are identical, so
    // recall differs only by bf16 q/k (scores ~1e-2 relative off, softmax mass ~1e-3).
    const hc::Profile a_shape = make_profile(cfg, model.fingerprint(), [](int64_t, int64_t h) {
      return h % 2 == 0 ? HeadChoice{Pattern::a_shape, 4, 64} : HeadChoice{};
    });
    const hc::ValidationReport c = hc::validate_profile_run(*cpu, model.fingerprint(), a_shape, tokens, {});
    const hc::ValidationReport g = hc::validate_profile_run(*gpu, model.fingerprint(), a_shape, tokens, {});
    REQUIRE(c.heads.size() == g.heads.size());
    for (size_t i = 0; i < c.heads.size(); ++i) {
      INFO("L" << c.heads[i].layer << "H" << c.heads[i].head);
      CHECK(std::abs(c.heads[i].recall - g.heads[i].recall) < 1e-3);
      CHECK(std::abs(c.heads[i].density - g.heads[i].density) < 1e-12);
    }
    // KL tolerance: bf16 keeps 8 significant bits (relative rounding 2^-9 = 0.2%); through two
    // layers the logits carry noise of about 1% of their spread, i.e. sigma ~ 0.01-0.02 nats per
    // logit, which moves a KL by about its own size times 2 sigma plus sigma^2/2 ~ 2e-4. So the
    // GPU's KL must lie within 25% + 5e-4 of the CPU's.
    INFO("KL cpu " << c.mean_kl << ", gpu " << g.mean_kl);
    CHECK(c.mean_kl > 1e-5);
    CHECK(std::abs(c.mean_kl - g.mean_kl) <= 0.25 * c.mean_kl + 5e-4);
    CHECK(std::abs(c.top1_agreement - g.top1_agreement) <= 0.05);
    CHECK(g.sparse_attention_s > 0);
    CHECK(g.dense_attention_s > 0);

    // Every pattern: runs, recall within a looser bound (top-k selections may flip on near-ties);
    // progress after each layer of both prefills.
    ProgressLog log;
    const hc::ValidationReport gs =
        hc::validate_profile_run(*gpu, model.fingerprint(), very_sparse(cfg, model.fingerprint()), tokens, log.options());
    check_progress(log, true);
    const hc::ValidationReport cs =
        hc::validate_profile_run(*cpu, model.fingerprint(), very_sparse(cfg, model.fingerprint()), tokens, {});
    CHECK(std::abs(gs.mean_recall - cs.mean_recall) < 0.02);
    CHECK(gs.mean_kl > 0);
  }
}

TEST_CASE("validate: progress per layer of each prefill, the dense one skipped with a kept reference", "[validate]") {
  const hc::ModelConfig cfg = hc::tiny_llama_config();  // 2 layers
  hc::RandomModel model(cfg, 5, "tiny");
  auto engine = hc::make_cpu_engine(model, 2);
  const hc::Profile profile = very_sparse(cfg, model.fingerprint());
  const std::vector<int32_t> tokens = test_tokens(150, cfg.vocab, 2);
  ProgressLog log;
  hc::DenseReference ref;
  const hc::ValidationReport a = hc::validate_profile_run(*engine, model.fingerprint(), profile, tokens, log.options(), &ref);
  check_progress(log, true);
  ProgressLog again;
  const hc::ValidationReport b =
      hc::validate_profile_run(*engine, model.fingerprint(), profile, tokens, again.options(), &ref);
  check_progress(again, false);
  CHECK(a.mean_kl == b.mean_kl);  // the progress changes nothing measured
}

TEST_CASE("layer sensitivity: each layer sparse alone, its KL and head error, weights averaging 1", "[validate][layer_weights]") {
  hc::ModelConfig gqa = hc::tiny_llama_config();  // d64, 4 heads on 2 KV heads
  hc::ModelConfig mqa = config_d128_mqa();
  for (hc::ModelConfig cfg : {gqa, mqa}) {
    cfg.n_layers = 3;
    INFO("head_dim " << cfg.head_dim << ", kv heads " << cfg.n_kv_heads);
    hc::RandomModel model(cfg, 5, "tiny");
    auto engine = hc::make_cpu_engine(model, 2);
    // Layers 0 and 2 very sparse, layer 1 dense.
    const hc::Profile profile = make_profile(cfg, model.fingerprint(), [](int64_t l, int64_t h) {
      if (l == 1) return HeadChoice{};
      return h % 2 ? HeadChoice{Pattern::a_shape, 1, 4} : HeadChoice{Pattern::block_sparse, 2, 0};
    });
    const hc::Profile only0 = hc::profile_with_one_layer(profile, 0);
    for (const hc::ProfileHead& h : only0.heads) {
      INFO("L" << h.layer << "H" << h.head);
      CHECK((h.layer == 0 ? h.pattern != Pattern::dense : h.pattern == Pattern::dense));
    }

    // Two prompts, N = 130 (not a multiple of 64) weight 1 and N = 45 (< 64) weight 3.
    const std::vector<hc::ValidationPrompt> prompts = {
        {"a", "random", "sha-a", 1.0, test_tokens(130, cfg.vocab, 1)},
        {"b", "random", "sha-b", 3.0, test_tokens(45, cfg.vocab, 2)},
    };
    std::vector<int64_t> seen;
    const hc::LayerWeights w = hc::measure_layer_sensitivity(*engine, model.fingerprint(), profile, prompts, {},
                                                             [&](const hc::LayerWeight& l) { seen.push_back(l.layer); });
    CHECK(seen == std::vector<int64_t>{0, 1, 2});
    CHECK(w.model_layers == 3);
    CHECK(w.model_fingerprint == model.fingerprint());
    CHECK(w.tokens == 130);
    REQUIRE(w.layers.size() == 3);
    // Layer 0's numbers are the validate runs of the profile with only layer 0 sparse.
    const hc::ValidationReport ra = hc::validate_profile_run(*engine, model.fingerprint(), only0, prompts[0].tokens, {});
    const hc::ValidationReport rb = hc::validate_profile_run(*engine, model.fingerprint(), only0, prompts[1].tokens, {});
    auto layer_err = [](const hc::ValidationReport& r, int64_t layer) {
      double e = 0;
      for (const hc::HeadValidation& h : r.heads) e += h.layer == layer ? h.out_err : 0.0;
      return e;
    };
    for (const hc::HeadValidation& h : ra.heads)
      if (h.layer != 0) CHECK(h.out_err == 0.0);  // dense layers are exact
    CHECK(w.layers[0].kl == Approx((ra.mean_kl + 3 * rb.mean_kl) / 4).epsilon(1e-9));
    CHECK(w.layers[0].out_err == Approx((layer_err(ra, 0) + 3 * layer_err(rb, 0)) / 4).epsilon(1e-9));
    for (int64_t l : {0, 2}) {
      INFO("layer " << l);
      CHECK(w.layers[static_cast<size_t>(l)].measured);
      CHECK(w.layers[static_cast<size_t>(l)].kl > 1e-6);
      CHECK(w.layers[static_cast<size_t>(l)].out_err > 1e-3);
    }
    CHECK_FALSE(w.layers[1].measured);
    CHECK(w.layers[1].kl == 0.0);
    CHECK(w.layers[1].weight == 1.0);
    CHECK((w.layers[0].weight + w.layers[2].weight) / 2 == Approx(1.0));
    const double ratio0 = w.layers[0].kl / w.layers[0].out_err, ratio2 = w.layers[2].kl / w.layers[2].out_err;
    CHECK(w.layers[0].weight / w.layers[2].weight == Approx(ratio0 / ratio2));
  }
  hc::RandomModel model(hc::tiny_llama_config(), 5, "tiny");
  auto engine = hc::make_cpu_engine(model, 2);
  CHECK(hc::test::throws_input_error_containing(
      [&] { hc::measure_layer_sensitivity(*engine, model.fingerprint(), all_dense(model.config(), model.fingerprint()), {}, {}); },
      "no prompt"));
}

TEST_CASE("validate: a kept dense reference gives the same report without a second dense prefill", "[validate]") {
  const hc::ModelConfig cfg = config_d128_mqa();
  hc::RandomModel model(cfg, 5, "tiny");
  auto engine = hc::make_cpu_engine(model, 2);
  const hc::Profile profile = very_sparse(cfg, model.fingerprint());
  const std::vector<int32_t> tokens = test_tokens(97, cfg.vocab, 3), other = test_tokens(50, cfg.vocab, 4);
  const hc::ValidationReport plain = hc::validate_profile_run(*engine, model.fingerprint(), profile, tokens, {});
  hc::DenseReference ref;
  const hc::ValidationReport first = hc::validate_profile_run(*engine, model.fingerprint(), profile, tokens, {}, &ref);
  REQUIRE(ref.tokens == tokens);
  CHECK(ref.final_hidden.size() == static_cast<size_t>(97 * cfg.hidden));
  CHECK(ref.dense_prefill_s == first.dense_prefill_s);
  ref.dense_prefill_s = 123.0;  // a reused run reports the reference's timings: it ran no dense prefill
  const hc::ValidationReport again = hc::validate_profile_run(*engine, model.fingerprint(), profile, tokens, {}, &ref);
  CHECK(again.dense_prefill_s == 123.0);
  for (const hc::ValidationReport* r : {&first, &again}) {
    CHECK(r->mean_kl == plain.mean_kl);
    CHECK(r->top1_agreement == plain.top1_agreement);
    CHECK(r->hidden_rel_error == plain.hidden_rel_error);
    CHECK(r->mean_recall == plain.mean_recall);
  }
  CHECK(plain.mean_kl > 0);
  // Another prompt is not compared against this reference: it runs its own dense prefill and
  // takes the reference over.
  const hc::ValidationReport shorter = hc::validate_profile_run(*engine, model.fingerprint(), profile, other, {}, &ref);
  CHECK(shorter.n_tokens == 50);
  CHECK(ref.tokens == other);
  CHECK(ref.dense_prefill_s != 123.0);
  CHECK(shorter.mean_kl == hc::validate_profile_run(*engine, model.fingerprint(), profile, other, {}).mean_kl);
}

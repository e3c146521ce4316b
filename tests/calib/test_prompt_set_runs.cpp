// Recording and validating over a prompt set (CPU, tiny random-weight models): one atlas with each
// prompt's tables equal to a single-prompt record of it, search over the set, validation per
// prompt with the aggregate and thresholds on the worst prompt, and the CLI end to end.
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "calib/prober.h"
#include "calib/random_model.h"
#include "calib/record.h"
#include "calib/validate.h"
#include "catch.h"
#include "common/error.h"
#include "io/calibration/atlas.h"
#include "io/calibration/grid.h"
#include "io/calibration/profile.h"
#include "io/prompt/prompt.h"
#include "search/search.h"

namespace {

std::vector<hc::RecordPrompt> two_prompts(int64_t vocab) {
  // 130 and 77 tokens: odd sizes, one above and one below two row blocks.
  return {{"long", "random 130", 2.0, hc::random_token_ids(130, vocab, 1)},
          {"short", "random 77", 1.0, hc::random_token_ids(77, vocab, 2)}};
}

hc::RecordOptions cpu_options(hc::CandidateProber* prober) {
  hc::RecordOptions o;
  o.device = hc::DeviceKind::Cpu;
  o.n_threads = 2;
  o.map_size = 16;
  o.prober = prober;
  o.prompt_description = "two random prompts";
  o.prompt_sha256 = "set-sha";
  return o;
}

}  // namespace

TEST_CASE("record over a prompt set: each prompt's table equals its own single-prompt record", "[record][prompt_set]") {
  hc::RandomModel model(hc::tiny_llama_config(), 3, "tiny");
  const std::vector<hc::RecordPrompt> prompts = two_prompts(model.config().vocab);
  const hc::Grid grid = hc::default_grid(130);
  auto prober = hc::make_cpu_prober(grid, {}, 2);
  auto engine = hc::make_cpu_engine(model, 2);
  const std::string dir = hc::test::make_temp_dir("record_set");

  const hc::RecordSummary s =
      hc::record_atlas_set_with(*engine, model, prompts, dir + "/set.h5", cpu_options(prober.get()));
  CHECK(s.prompts == 2);
  CHECK(s.n_tokens == 130);
  CHECK(s.layers_recorded == static_cast<int>(model.config().n_layers));
  const hc::Atlas set = hc::Atlas::open(dir + "/set.h5");
  REQUIRE(set.prompt_count() == 2);
  CHECK(set.meta().prompt_sha256 == "set-sha");
  CHECK(set.prompt(1).name == "short");
  CHECK(set.prompt(1).weight == 1.0);
  CHECK(set.prompt(1).sha256 == hc::tokens_sha256(prompts[1].tokens));
  CHECK(set.prompt(1).map_size == 16);

  for (size_t p = 0; p < prompts.size(); ++p) {
    hc::RecordOptions one = cpu_options(prober.get());
    one.prompt_sha256.clear();
    const std::string path = dir + "/one" + std::to_string(p) + ".h5";
    hc::record_atlas_with(*engine, model, prompts[p].tokens, path, one);
    const hc::Atlas single = hc::Atlas::open(path);
    CHECK(single.meta().prompt_sha256 == hc::tokens_sha256(prompts[p].tokens));
    for (int64_t layer : single.recorded_layers()) {
      const auto& a = single.candidates(layer);
      const auto& b = set.candidates(layer, p);
      REQUIRE(a.size() == b.size());
      for (size_t i = 0; i < a.size(); ++i) {
        CHECK(a[i].candidate() == b[i].candidate());
        CHECK(a[i].recall == b[i].recall);
        CHECK(a[i].cost == b[i].cost);
        CHECK(a[i].out_err == b[i].out_err);
      }
      CHECK(single.read_layer(layer).colmass == set.read_layer(layer, p).colmass);
    }
  }

  // Search over the set: the profile records it, and each head's recall is its choice's weighted
  // mean over the two prompts (weights 2 and 1).
  hc::search::SearchOptions opts;
  opts.mode = hc::search::BudgetMode::density;
  opts.value = 0.9;
  const hc::Profile profile = hc::search::run(set, opts);
  CHECK(profile.calibration.prompts == 2);
  CHECK(profile.calibration.tokens == 130);
  int sparse_heads = 0;
  for (const hc::ProfileHead& e : profile.heads) {
    if (e.pattern == hc::Pattern::dense) continue;
    ++sparse_heads;
    double r[2] = {-1, -1};
    for (size_t p = 0; p < 2; ++p)
      for (const hc::CandidateRow& row : set.candidates(e.layer, p))
        if (row.head == e.head && row.candidate() == e.candidate()) r[p] = row.recall;
    REQUIRE(r[0] >= 0);
    REQUIRE(r[1] >= 0);
    CHECK(e.recall == Approx((2 * r[0] + r[1]) / 3));
  }
  CHECK(sparse_heads > 0);
}

TEST_CASE("validate over a prompt set: per prompt, aggregate, thresholds on the worst", "[validate][prompt_set]") {
  hc::RandomModel model(hc::tiny_llama_config(), 5, "tiny");
  const hc::ModelConfig& c = model.config();
  auto engine = hc::make_cpu_engine(model, 2);
  // A sparse profile from a real record of the model (block-sparse and A-shape heads).
  const std::string dir = hc::test::make_temp_dir("validate_set");
  const hc::Grid grid = hc::default_grid(200);
  auto prober = hc::make_cpu_prober(grid, {}, 2);
  hc::record_atlas_with(*engine, model, hc::random_token_ids(200, c.vocab, 9), dir + "/a.h5",
                        cpu_options(prober.get()));
  hc::search::SearchOptions opts;
  opts.mode = hc::search::BudgetMode::global_density;
  opts.value = 0.3;
  const hc::Profile profile = hc::search::run(hc::Atlas::open(dir + "/a.h5"), opts);

  std::vector<hc::ValidationPrompt> prompts;
  for (auto [n, seed, w] : {std::tuple<int64_t, uint64_t, double>{200, 11, 1.0}, {63, 12, 3.0}}) {
    std::vector<int32_t> t = hc::random_token_ids(n, c.vocab, seed);
    prompts.push_back({"p" + std::to_string(n), "random", hc::tokens_sha256(t), w, t});
  }
  int seen = 0;
  hc::SetValidation v = hc::validate_prompt_set(*engine, model.fingerprint(), profile, prompts, "two", "sha", {},
                                                [&](const hc::PromptValidation&) { ++seen; });
  CHECK(seen == 2);
  REQUIRE(v.prompts.size() == 2);
  const hc::ValidationReport& a = v.prompts[0].report;
  const hc::ValidationReport& b = v.prompts[1].report;
  CHECK(a.n_tokens == 200);
  CHECK(b.n_tokens == 63);
  // Each prompt alone gives the same report as a single-prompt run.
  const hc::ValidationReport alone = hc::validate_profile_run(*engine, model.fingerprint(), profile, prompts[1].tokens, {});
  CHECK(alone.mean_kl == b.mean_kl);
  CHECK(alone.top1_agreement == b.top1_agreement);
  CHECK(v.mean_kl == Approx((a.mean_kl + 3 * b.mean_kl) / 4));
  CHECK(v.worst_kl == std::max(a.mean_kl, b.mean_kl));
  CHECK(v.worst_top1 == std::min(a.top1_agreement, b.top1_agreement));
  CHECK(v.mean_top1 == Approx((a.top1_agreement + 3 * b.top1_agreement) / 4));
  CHECK(alone.confident_top1 == b.confident_top1);
  CHECK(alone.confident_share == b.confident_share);
  CHECK(v.worst_confident_top1 == std::min(a.confident_top1, b.confident_top1));
  CHECK(v.mean_confident_top1 == Approx((a.confident_top1 + 3 * b.confident_top1) / 4));
  CHECK(a.confident_share >= 0.0);
  CHECK(a.confident_share <= 1.0);
  CHECK(v.worst_recall == std::min(a.mean_recall, b.mean_recall));
  CHECK(v.density == Approx((a.density + 3 * b.density) / 4));
  CHECK(a.mean_kl > 0);  // the profile is sparse enough to move the logits
  CHECK(v.failures.empty());

  // A KL threshold between the two prompts' fails exactly the worse one, named.
  hc::ValidateOptions between;
  between.max_kl = (a.mean_kl + b.mean_kl) / 2;
  REQUIRE(a.mean_kl != b.mean_kl);
  const std::string worse = a.mean_kl > b.mean_kl ? "p200" : "p63";
  hc::SetValidation t = hc::validate_prompt_set(*engine, model.fingerprint(), profile, prompts, "two", "sha", between);
  REQUIRE(t.failures.size() == 1);
  CHECK(t.failures[0].find("prompt " + worse + ": mean KL") == 0);
  hc::ValidateOptions top1;
  top1.min_top1 = 1.01;  // nothing reaches it
  CHECK(hc::validate_prompt_set(*engine, model.fingerprint(), profile, prompts, "two", "sha", top1).failures.size() == 2);

  const std::string summary = hc::set_validation_summary(t);
  CHECK(summary.find("over 2 prompts") != std::string::npos);
  CHECK(summary.find("FAIL") != std::string::npos);
  const auto j = nlohmann::json::parse(hc::set_validation_json(v, "random:tiny", "p.yaml", "budgeted 0.3"));
  CHECK(j["version"] == 2);
  CHECK(j["method"] == "budgeted 0.3");
  CHECK(j["summary"]["mean_kl"].get<double>() == Approx(v.mean_kl));
  CHECK(j["summary"]["worst_top1"].get<double>() == v.worst_top1);
  CHECK(j["summary"]["confident_top1"].get<double>() == Approx(v.mean_confident_top1));
  CHECK(j["summary"]["worst_confident_top1"].get<double>() == v.worst_confident_top1);
  CHECK(j["prompts"][0]["summary"]["confident_share"].get<double>() == a.confident_share);
  REQUIRE(j["prompts"].size() == 2);
  CHECK(j["prompts"][1]["name"] == "p63");
  CHECK(j["prompts"][1]["weight"] == 3.0);
  CHECK(j["prompts"][1]["heads"].size() == static_cast<size_t>(c.n_layers * c.n_heads));
}

TEST_CASE("headcal record / calibrate / validate --prompt-set", "[prompt_set][cli]") {
  const std::string dir = hc::test::make_temp_dir("cli_prompt_set");
  std::ofstream(dir + "/ids.txt") << "5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25\n";
  std::ofstream(dir + "/set.yaml") << "format: headcal-prompt-set\nversion: 1\nname: tiny-set\nprompts:\n"
                                      "  - {name: ids, tokens: ids.txt}\n"
                                      "  - {name: rnd, generate: random, length: 300, seed: 3, weight: 2}\n";
  auto r = hc::test::run_headcal("calibrate --model random:tiny --prompt-set '" + dir +
                                 "/set.yaml' --device cpu --global-density 0.5 --objective mean-recall --out '" + dir + "/p.yaml'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const hc::Atlas atlas = hc::Atlas::open(dir + "/p.atlas.h5");
  REQUIRE(atlas.prompt_count() == 2);
  CHECK(atlas.prompt(0).tokens.size() == 21);
  CHECK(atlas.prompt(1).weight == 2.0);
  CHECK(atlas.meta().prompt_description.find("tiny-set") != std::string::npos);
  CHECK(hc::read_profile(dir + "/p.yaml").calibration.prompts == 2);

  r = hc::test::run_headcal("validate --model random:tiny --profile '" + dir + "/p.yaml' --prompt-set '" + dir +
                            "/set.yaml' --length 20 --device cpu --json '" + dir + "/v.json'");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("prompt rnd") != std::string::npos);
  CHECK(r.output.find("over 2 prompts") != std::string::npos);
  std::ifstream in(dir + "/v.json");
  const auto j = nlohmann::json::parse(in);
  CHECK(j["prompts"][0]["prompt"]["tokens"] == 20);  // --length overrides the set's lengths
  CHECK(j["method"] == "p");

  r = hc::test::run_headcal("validate --model random:tiny --profile '" + dir + "/p.yaml' --prompt-set '" + dir +
                            "/set.yaml' --device cpu --max-kl 0");
  CHECK(r.exit_code == 1);
  r = hc::test::run_headcal("record --model random:tiny --prompt-set '" + dir + "/set.yaml' --generate random " +
                            "--length 8 --device cpu --out '" + dir + "/x.h5'");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("--prompt-set") != std::string::npos);
}

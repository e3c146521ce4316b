// Stage timings of the record pipeline (CalibrationTimings, `headcal bench calibrate`): every stage
// is measured, the stages fit in the total, and timing a run changes nothing it writes.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "calib/prober.h"
#include "calib/record.h"
#include "catch.h"
#include "io/calibration/atlas.h"
#include "io/calibration/grid.h"
#include "io/calibration/profile.h"
#include "io/prompt/prompt.h"
#include "search/search.h"
#include "tests/support/test_support.h"

namespace {

// Two prompts of odd lengths (a set: both go through one engine) or one.
std::vector<hc::RecordPrompt> test_prompts(int64_t vocab, bool two) {
  std::vector<hc::RecordPrompt> prompts{{"long", "random ids, seed 4", 1.0, hc::random_token_ids(197, vocab, 4)}};
  if (two) prompts.push_back({"short", "random ids, seed 5", 0.5, hc::random_token_ids(71, vocab, 5)});
  return prompts;
}

hc::RecordOptions options_for(hc::DeviceKind device, hc::CandidateProber& prober,
                              const std::vector<hc::RecordPrompt>& p) {
  hc::RecordOptions o;
  o.device = device;
  o.map_size = 16;
  o.n_threads = 2;
  o.prober = &prober;
  o.prompt_description = "test prompts";
  o.prompt_sha256 = p.size() > 1 ? std::string(64, 'a') : std::string();
  return o;
}

// Every record stage was measured, none is negative and together they fit in the total.
void check_record_timings(const hc::CalibrationTimings& t) {
  INFO("load " << t.load_s << " prefill " << t.prefill_s << " statistics " << t.statistics_s << " probes "
               << t.probes_s << " atlas " << t.atlas_s << " total " << t.total_s);
  CHECK(t.load_s >= 0);
  CHECK(t.prefill_s > 0);
  CHECK(t.statistics_s > 0);
  CHECK(t.probes_s > 0);
  CHECK(t.atlas_s > 0);
  CHECK(t.search_s == 0);  // search is the caller's stage
  CHECK(t.stages_s() <= t.total_s);
}

// Candidate tables of every prompt and layer: the same candidates in the same order, numbers equal
// within `tolerance` (0: exactly).
void check_same_tables(const hc::Atlas& a, const hc::Atlas& b, double tolerance) {
  REQUIRE(a.prompt_count() == b.prompt_count());
  REQUIRE(a.recorded_layers() == b.recorded_layers());
  for (size_t p = 0; p < a.prompt_count(); ++p)
    for (int64_t layer : a.recorded_layers()) {
      const auto& x = a.candidates(layer, p);
      const auto& y = b.candidates(layer, p);
      REQUIRE(x.size() == y.size());
      for (size_t i = 0; i < x.size(); ++i) {
        INFO("prompt " << p << " layer " << layer << " row " << i);
        CHECK(x[i].head == y[i].head);
        CHECK(x[i].candidate() == y[i].candidate());
        for (auto field : {&hc::CandidateRow::cost, &hc::CandidateRow::density, &hc::CandidateRow::recall,
                           &hc::CandidateRow::out_err}) {
          const double u = x[i].*field, v = y[i].*field;
          if (tolerance == 0) CHECK(u == v);
          else CHECK(std::fabs(u - v) <= tolerance * std::max(1.0, std::fabs(u)));
        }
      }
    }
}

}  // namespace

TEST_CASE("record with timings: every stage measured, the same atlas and profile as without", "[record][timings]") {
  const auto model = hc::open_model_spec("random:tiny:6");
  const std::string dir = hc::test::make_temp_dir("record_timings");
  for (bool two : {false, true}) {
    INFO((two ? "two prompts" : "one prompt"));
    const std::vector<hc::RecordPrompt> prompts = test_prompts(model->config().vocab, two);
    const hc::Grid grid = hc::default_grid(197);
    auto prober = hc::make_cpu_prober(grid, {}, 2);
    hc::RecordOptions plain = options_for(hc::DeviceKind::Cpu, *prober, prompts);
    const hc::RecordSummary s_plain = hc::record_atlas_set(*model, prompts, dir + "/plain.h5", plain);

    hc::CalibrationTimings t;
    t.search_s = 99;  // left from an earlier use: a run starts from zero
    hc::RecordOptions timed = plain;
    timed.timings = &t;
    const hc::RecordSummary s_timed = hc::record_atlas_set(*model, prompts, dir + "/timed.h5", timed);
    check_record_timings(t);
    CHECK(t.peak_device_bytes == 0);  // the CPU backend
    // The CPU probes (a dense pass for the LSE, then every candidate of the grid on every head) do
    // several times the statistics' work on the same layers.
    CHECK(t.probes_s > t.statistics_s);
    CHECK(s_timed.layers_recorded == s_plain.layers_recorded);
    CHECK(t.total_s >= s_timed.prefill_s);  // the summary's record time lies inside the total

    const hc::Atlas a = hc::Atlas::open(dir + "/plain.h5");
    const hc::Atlas b = hc::Atlas::open(dir + "/timed.h5");
    check_same_tables(a, b, 0);
    for (int64_t layer : a.recorded_layers()) {
      const hc::AtlasLayer x = a.read_layer(layer, prompts.size() - 1), y = b.read_layer(layer, prompts.size() - 1);
      CHECK(x.colmass == y.colmass);
      CHECK(x.diagmass == y.diagmass);
      CHECK(x.map == y.map);
    }
    hc::search::SearchOptions budget;
    budget.mode = hc::search::BudgetMode::global_density;
    budget.value = 0.3;
    const std::string profile_plain = hc::profile_to_yaml(hc::search::run(a, budget));
    CHECK(profile_plain == hc::profile_to_yaml(hc::search::run(b, budget)));
    CHECK(profile_plain.find("heads:") != std::string::npos);
  }
}

TEST_CASE("record with timings on CUDA: stages measured, peak memory, the same candidate tables",
          "[record][timings][gpu]") {
  HC_REQUIRE_GPU();
  const auto model = hc::open_model_spec("random:tiny:6");
  const std::string dir = hc::test::make_temp_dir("record_timings_gpu");
  const std::vector<hc::RecordPrompt> prompts = test_prompts(model->config().vocab, true);
  auto prober = hc::make_cuda_prober(hc::default_grid(197), {});
  hc::RecordOptions plain = options_for(hc::DeviceKind::Cuda, *prober, prompts);
  hc::record_atlas_set(*model, prompts, dir + "/plain.h5", plain);

  hc::CalibrationTimings t;
  hc::RecordOptions timed = plain;
  timed.timings = &t;
  const hc::RecordSummary s = hc::record_atlas_set(*model, prompts, dir + "/timed.h5", timed);
  check_record_timings(t);
  CHECK(t.peak_device_bytes > 0);
  CHECK(t.peak_device_bytes == s.peak_device_bytes);
  // Float atomics in the GPU sums may order additions differently between runs.
  check_same_tables(hc::Atlas::open(dir + "/plain.h5"), hc::Atlas::open(dir + "/timed.h5"), 1e-6);
}

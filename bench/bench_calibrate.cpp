#include "bench/bench_calibrate.h"

#include <chrono>
#include <filesystem>
#include <system_error>
#include <nlohmann/json.hpp>

#include "io/calibration/atlas.h"
#include "io/calibration/profile.h"
#include "search/search.h"

namespace hc::bench {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Stage {
  const char* header;
  double CalibrationTimings::*seconds;
};
// The stages in the order a calibration runs them; the total follows.
constexpr Stage kStages[] = {
    {"load s", &CalibrationTimings::load_s},         {"prefill s", &CalibrationTimings::prefill_s},
    {"statistics s", &CalibrationTimings::statistics_s}, {"probes s", &CalibrationTimings::probes_s},
    {"atlas s", &CalibrationTimings::atlas_s},       {"search s", &CalibrationTimings::search_s},
};

double gib(size_t bytes) { return static_cast<double>(bytes) / double(size_t(1) << 30); }

}  // namespace

CalibrationBenchRow time_calibration(const ModelFile& model, const std::vector<RecordPrompt>& prompts,
                                     RecordOptions options, const search::SearchOptions& search_options,
                                     const std::string& work_dir, RecordSummary* summary) {
  namespace fs = std::filesystem;
  const std::string atlas_path = (fs::path(work_dir) / "calibration.atlas.h5").string();
  const std::string profile_path = (fs::path(work_dir) / "calibration.yaml").string();
  CalibrationBenchRow row;
  options.timings = &row.timings;

  const auto t0 = Clock::now();
  const RecordSummary s = record_atlas_set(model, prompts, atlas_path, options);
  const auto t_search = Clock::now();
  const Profile profile = search::run(Atlas::open(atlas_path), search_options);
  write_profile(profile, profile_path);
  row.timings.search_s = seconds_since(t_search);
  row.timings.total_s = seconds_since(t0);

  row.n_tokens = s.n_tokens;
  row.prompts = s.prompts;
  row.prompt = options.prompt_description;
  row.prompt_sha256 = profile.calibration.sha256;
  row.layers = s.layers_recorded;
  row.achieved_density = profile.calibration.achieved_density;
  row.mean_recall = profile.calibration.mean_recall;
  if (summary) *summary = s;
  std::error_code ec;  // the files are only a by-product of the timing
  fs::remove(atlas_path, ec);
  fs::remove(profile_path, ec);
  return row;
}

void print_calibration_bench(const CalibrationBench& b, std::FILE* out) {
  const bool cuda = b.backend == "cuda";
  std::fprintf(out, "calibration stages: %s (%s) on %s, %s\n", b.model_name.c_str(), b.model.c_str(),
               b.device.c_str(), b.budget.c_str());
  std::fprintf(out, "prompt: %s\n", b.prompt_source.c_str());
  if (!b.statistics) std::fprintf(out, "statistics: not recorded (--no-statistics)\n");
  std::fprintf(out, "%8s %10s", "N", "candidates");
  for (const Stage& s : kStages) std::fprintf(out, " %12s", s.header);
  std::fprintf(out, " %12s", "total s");
  if (cuda) std::fprintf(out, " %9s", "peak GiB");
  std::fprintf(out, "\n");
  for (const CalibrationBenchRow& r : b.rows) {
    std::fprintf(out, "%8lld %10zu", static_cast<long long>(r.n_tokens), r.candidates);
    for (const Stage& s : kStages) std::fprintf(out, " %12.3f", r.timings.*s.seconds);
    std::fprintf(out, " %12.3f", r.timings.total_s);
    if (cuda) std::fprintf(out, " %9.2f", gib(r.timings.peak_device_bytes));
    std::fprintf(out, "\n");
  }
  std::fprintf(out, "share of the total:\n");
  for (const CalibrationBenchRow& r : b.rows) {
    std::fprintf(out, "%8lld %10s", static_cast<long long>(r.n_tokens), "");
    for (const Stage& s : kStages)
      std::fprintf(out, " %11.1f%%", r.timings.total_s > 0 ? 100.0 * (r.timings.*s.seconds) / r.timings.total_s : 0.0);
    std::fprintf(out, "\n");
  }
}

std::string calibration_bench_json(const CalibrationBench& b) {
  nlohmann::json j;
  j["format"] = "headcal-bench-calibrate";
  j["version"] = 1;
  j["kind"] = "calibrate";
  j["model"] = b.model;
  j["model_name"] = b.model_name;
  j["backend"] = b.backend;
  j["device"] = b.device;
  j["prompt_source"] = b.prompt_source;
  j["budget"] = b.budget;
  j["statistics"] = b.statistics;
  nlohmann::json rows = nlohmann::json::array();
  for (const CalibrationBenchRow& r : b.rows) {
    const CalibrationTimings& t = r.timings;
    nlohmann::json row;
    row["n"] = r.n_tokens;
    row["prompts"] = r.prompts;
    row["prompt"] = r.prompt;
    row["prompt_sha256"] = r.prompt_sha256;
    row["candidates"] = r.candidates;
    row["layers"] = r.layers;
    row["load_s"] = t.load_s;
    row["prefill_s"] = t.prefill_s;
    row["statistics_s"] = t.statistics_s;
    row["probes_s"] = t.probes_s;
    row["atlas_s"] = t.atlas_s;
    row["search_s"] = t.search_s;
    row["total_s"] = t.total_s;
    if (b.backend == "cuda") row["peak_device_bytes"] = t.peak_device_bytes;
    else row["peak_device_bytes"] = nullptr;
    row["achieved_density"] = r.achieved_density;
    row["mean_recall"] = r.mean_recall;
    rows.push_back(std::move(row));
  }
  j["results"] = std::move(rows);
  return j.dump(2) + "\n";
}

}  // namespace hc::bench

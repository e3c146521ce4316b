// headcal bench calibrate: one full calibration (record + search) per prompt length, timed stage
// by stage (bench/bench_calibrate.h), so the next person sees where calibration time goes.
#include "cli/bench_calibrate.h"

#include "calib/random_model.h"

#include <stdlib.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "bench/bench_calibrate.h"
#include "cli/budget_options.h"
#include "cli/option_checks.h"
#include "cli/prompt_options.h"
#include "cli/record_options.h"
#include "common/error.h"
#include "io/calibration/profile.h"
#include "search/allocate.h"

namespace hc::cli {

namespace {

namespace fs = std::filesystem;

struct BenchCalibrateOptions {
  std::vector<int64_t> n_list;
  std::string json_out;
  std::string work_dir;
};

// A fresh folder for one run's atlas and profile, removed with everything in it when done.
class WorkFolder {
 public:
  explicit WorkFolder(const std::string& parent) {
    std::string pattern = (fs::path(parent) / "headcal-bench-calibrate-XXXXXX").string();
    if (!::mkdtemp(pattern.data()))
      throw InputError(parent, "cannot create a work folder here: " +
                                   std::error_code(errno, std::generic_category()).message());
    path_ = pattern;
  }
  ~WorkFolder() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  WorkFolder(const WorkFolder&) = delete;
  WorkFolder& operator=(const WorkFolder&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// How the prompts were chosen, for the table's heading and the JSON.
std::string prompt_source(const RecordCliOptions& rec, bool defaulted) {
  if (!rec.prompt_set.empty()) return "--prompt-set " + rec.prompt_set + " (every prompt's length set to N)";
  const PromptSpec& p = *rec.prompt;
  std::string s;
  if (!p.generator.empty()) s = "--generate " + p.generator + " --seed " + std::to_string(p.seed);
  if (!p.prompt_file.empty()) s += (s.empty() ? "" : " ") + std::string("--prompt ") + p.prompt_file;
  if (!p.tokens_file.empty()) s += (s.empty() ? "" : " ") + std::string("--tokens ") + p.tokens_file;
  return defaulted ? s + " (the default)" : s;
}

// "global-density 0.2", "minference-rule" (as the profile's budget reads).
std::string budget_text(const search::SearchOptions& s) {
  if (s.rule == search::SearchRule::minference) return "minference-rule";
  char value[32];
  std::snprintf(value, sizeof value, "%g", s.value);
  return std::string(search::budget_mode_name(s.mode)) + " " + value;
}

}  // namespace

Runner setup_bench_calibrate(CLI::App& sub) {
  std::shared_ptr<RecordCliOptions> rec = add_record_options(sub);
  // The lengths come from --n, and a calibration needs its probes.
  sub.remove_option(sub.get_option("--length"));
  sub.remove_option(sub.get_option("--no-probes"));
  sub.get_option("--model")->description(
      "GGUF file, Hugging Face directory, or random:SHAPE[:SEED] (random weights; SHAPE: " +
      hc::random_shape_names(", ") + ")");
  auto o = std::make_shared<BenchCalibrateOptions>();
  sub.add_option("--n", o->n_list, "prompt lengths in tokens, comma-separated (one calibration each)")
      ->required()
      ->delimiter(',')
      ->check(positive_integer(kMaxPromptTokens));
  sub.add_option("--json", o->json_out, "also write the results as JSON to this file")->check(output_file());
  sub.add_option("--work-dir", o->work_dir,
                 "folder for each run's atlas and profile, removed afterwards (default: the system's temporary folder)")
      ->check(CLI::ExistingDirectory);
  auto budget = std::make_shared<BudgetOptions>(sub);  // default: --global-density 0.2, as calibrate

  return [rec, o, budget]() {
    search::SearchOptions default_budget;
    default_budget.mode = search::BudgetMode::global_density;
    default_budget.value = 0.2;
    const search::SearchOptions search_opts = budget->resolve(default_budget);
    // Without a prompt option: kv_retrieval (as in calibrate's examples), or uniform ids for random weights.
    const bool defaulted = !prompt_given(*rec->prompt) && rec->prompt_set.empty();
    if (defaulted) rec->prompt->generator = rec->model.rfind("random:", 0) == 0 ? "random" : "kv_retrieval";

    std::vector<PreparedRecord> runs = prepare_records(*rec, o->n_list, "--n");
    const WorkFolder work(o->work_dir.empty() ? fs::temp_directory_path().string() : o->work_dir);

    bench::CalibrationBench b;
    b.model = rec->model;
    const ModelFile& model = *runs.front().model;
    b.model_name = model.config().name.empty() ? model.path() : model.config().name;
    b.prompt_source = prompt_source(*rec, defaulted);
    b.budget = budget_text(search_opts);
    b.statistics = !rec->no_statistics;
    for (size_t i = 0; i < runs.size(); ++i) {
      const PreparedRecord& run = runs[i];
      std::fprintf(stderr, "bench calibrate: N = %lld (%zu of %zu), %zu candidate patterns per head\n",
                   static_cast<long long>(o->n_list[i]), i + 1, runs.size(), run.grid_candidates);
      RecordSummary summary;
      bench::CalibrationBenchRow row =
          bench::time_calibration(model, run.records, run.options, search_opts, work.path(), &summary);
      row.candidates = run.grid_candidates;
      b.backend = summary.backend;
      if (summary.backend == "cuda") {
        b.device = summary.device;
      } else {
        const unsigned threads =
            rec->threads > 0 ? static_cast<unsigned>(rec->threads) : std::thread::hardware_concurrency();
        b.device = "CPU, " + std::to_string(threads) + " threads";
      }
      b.rows.push_back(std::move(row));
    }
    print_calibration_bench(b, stdout);
    if (!o->json_out.empty()) {
      write_file_atomic(o->json_out, bench::calibration_bench_json(b));
      std::printf("wrote %s\n", o->json_out.c_str());
    }
    return 0;
  };
}

}  // namespace hc::cli

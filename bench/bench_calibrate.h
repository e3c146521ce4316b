#pragma once
// Where a calibration's time goes (`headcal bench calibrate`): one full calibration (record with
// stage timings, then search and the profile written) per prompt length, printed as a table of
// seconds per stage and written as JSON. Host code; the record stages come from calib/record.h.
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "calib/record.h"
#include "search/allocate.h"

namespace hc::bench {

// One calibration at one prompt length.
struct CalibrationBenchRow {
  int64_t n_tokens = 0;        // the longest prompt's N
  int prompts = 1;
  std::string prompt;          // the prompt's (or prompt set's) description at this N
  std::string prompt_sha256;
  size_t candidates = 0;       // grid candidates per head, without the implied dense row
  int layers = 0;              // layers recorded
  CalibrationTimings timings;  // every stage, search and total included
  double achieved_density = 0;  // of the profile search chose
  double mean_recall = 0;
};

struct CalibrationBench {
  std::string model;          // as given (--model)
  std::string model_name;     // the model's own name
  std::string backend;        // "cuda" / "cpu"
  std::string device;         // GPU name and memory, or "CPU, T threads"
  std::string prompt_source;  // how the prompts were chosen ("--generate kv_retrieval (default)", ...)
  std::string budget;         // the search's budget ("global-density 0.2")
  bool statistics = true;     // false: recorded with --no-statistics (probes only)
  std::vector<CalibrationBenchRow> rows;
};

// Runs one calibration of `prompts` in `work_dir`: record with options.timings set, then search
// with `search_options` and the profile written, each timed. The atlas and profile it wrote there
// are removed before it returns. `summary` (optional) receives the record's summary (backend, device).
CalibrationBenchRow time_calibration(const ModelFile& model, const std::vector<RecordPrompt>& prompts,
                                     RecordOptions options, const search::SearchOptions& search_options,
                                     const std::string& work_dir, RecordSummary* summary = nullptr);

// The table: one row per N with seconds per stage (load, prefill, statistics, probes, atlas,
// search, total; peak device GiB on CUDA), then each stage's share of the total.
void print_calibration_bench(const CalibrationBench& bench, std::FILE* out);

// The JSON document (format "headcal-bench-calibrate", version 1): model, device, backend,
// prompt_source, budget, statistics and per N the stage seconds, candidates and peak device bytes.
std::string calibration_bench_json(const CalibrationBench& bench);

}  // namespace hc::bench

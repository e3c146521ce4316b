#pragma once
// The options `record` and `calibrate` share (model, prompt, device, layers, map size, threads,
// candidate grid), and turning them into a ready record run: model opened, prompt built, grid
// scaled to the prompt, the backend's candidate prober, progress on stderr.
#include <CLI/CLI.hpp>

#include <memory>
#include <string>
#include <vector>

#include "calib/record.h"
#include "cli/prompt_options.h"
#include "io/prompt/prompt.h"

namespace hc::cli {

struct RecordCliOptions {
  std::string model;
  std::shared_ptr<PromptSpec> prompt;
  std::string prompt_set;  // --prompt-set FILE
  std::string device = "auto";
  std::string layers;  // "a-b"
  std::string grid;    // YAML grid file; empty: the default grid scaled to N
  bool no_probes = false;
  bool no_statistics = false;
  int map_size = kDefaultMapSize;
  int threads = 0;
};

std::shared_ptr<RecordCliOptions> add_record_options(CLI::App& sub);

struct PreparedRecord {
  std::shared_ptr<const ModelFile> model;  // shared by the runs of prepare_records
  RunPrompts prompts;                  // one prompt, or a prompt set
  std::vector<RecordPrompt> records;   // the same, as the recorder takes them
  size_t grid_candidates = 0;  // per head, without the implied dense row
  std::unique_ptr<CandidateProber> prober;
  RecordOptions options;       // options.prober points into `prober`
};

// Bad options, model or prompt: InputError.
PreparedRecord prepare_record(const RecordCliOptions& cli);

// One run per prompt length of `lengths` (`bench calibrate --n`) over one opened model and one
// device choice: each with the prompt options' --length replaced by its length, the grid scaled
// to it and its own prober. Every run's options, model and prompts are checked before it returns
// (a length beyond the model's context without --allow-longer: InputError naming `length_option`).
std::vector<PreparedRecord> prepare_records(const RecordCliOptions& cli, const std::vector<int64_t>& lengths,
                                            const std::string& length_option);

// "recorded ... on cuda (...): prefill+record X s, load Y s[, peak GPU memory Z GiB]".
void print_record_summary(const RecordSummary& summary);

}  // namespace hc::cli

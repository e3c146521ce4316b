#pragma once
// `headcal bench prefill`: time to first token of the whole prefill, dense against a profile's
// sparse attention, over several prompt lengths, and the crossover length where sparse first wins
// (calib/prefill_timing.h does the timing; this sweeps, prints and writes JSON). CUDA only.
#include <string>
#include <vector>

#include "io/prompt/prompt.h"

namespace hc::bench {

struct PrefillBenchOptions {
  std::string model;    // GGUF, Hugging Face folder or random:<shape>
  std::string profile;  // YAML profile of that model
  std::vector<int> n_list{4096, 8192, 16384, 32768};
  PromptSpec prompt;    // the prompt source; its length is set to each N
  int repeats = 5;      // timed prefills of each kind per N (medians reported)
  std::string json_out;
};

int bench_prefill(const PrefillBenchOptions& options);

}  // namespace hc::bench

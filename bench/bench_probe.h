#pragma once
// The CPU prober's one-pass grid probe against one probe-mode reference run per candidate
// (`headcal bench probe`): both measure every candidate of the default grid on every head of a
// layer of Gaussian q, k, v, timed in the same run; the largest recall and out_err differences
// between them come with the times, so the comparison is of equal results.
#include <cstdint>
#include <string>
#include <vector>

namespace hc::bench {

struct ProbeBenchOptions {
  std::vector<int64_t> n_list = {512, 1024, 2048};
  int heads = 9;
  int kv_heads = 3;
  int head_dim = 64;
  int threads = 0;  // <= 0: every core
  uint64_t seed = 1;
  std::string json_out;
};

struct ProbeBenchRow {
  int64_t n_tokens = 0;
  size_t candidates = 0;      // default grid, per head
  double one_pass_s = 0;      // probe_grid_ref over every head (estimates included)
  double per_candidate_s = 0; // dense LSE, then one sparse_attention_ref probe per candidate and head
  double max_recall_diff = 0;
  double max_out_err_diff = 0;
  double speedup() const { return one_pass_s > 0 ? per_candidate_s / one_pass_s : 0; }
};

// Throws hc::InputError on bad options (lengths < 1, heads not a multiple of kv_heads, ...).
std::vector<ProbeBenchRow> run_probe_bench(const ProbeBenchOptions& options);

// Prints the table (and writes JSON when options.json_out is set); returns 0.
int bench_probe(const ProbeBenchOptions& options);

}  // namespace hc::bench

#pragma once
// A prober's grid probe against one probe-mode run per candidate (`headcal bench probe`): both
// measure the default grid's candidates on every head of one layer of random q, k, v, timed in the
// same run; the largest recall and out_err differences between them come with the times, so the
// comparison is of equal results.
//   cpu   the CPU prober's one pass (grid_probe_ref.h) against sparse_attention_ref per candidate,
//         every candidate, Gaussian q, k, v
//   cuda  the GPU grid probe (grid_probe_gpu.h) against the index-driven kernel per candidate
//         (calib/kernel_probe.h), every candidate, uniform bf16 q, k, v
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
  std::string device = "cpu";  // cpu or cuda
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
  int64_t unmeasured = 0;       // cuda: candidate-heads the grid probe left to the kernel
  int64_t cost_mismatches = 0;  // cuda: candidate-heads whose costs differ
  // cuda: the grid probe's sweeps' 64-key tiles per family in units of the layer's dense causal
  // tiles (GridProberGpu::last_tiles)
  double a_shape_tiles = 0, vertical_slash_tiles = 0, block_sparse_tiles = 0;
  double speedup() const { return one_pass_s > 0 ? per_candidate_s / one_pass_s : 0; }
};

// Throws hc::InputError on bad options (lengths < 1, heads not a multiple of kv_heads, ...).
std::vector<ProbeBenchRow> run_probe_bench(const ProbeBenchOptions& options);
// The cuda side (bench_probe_gpu.cu; options already checked).
std::vector<ProbeBenchRow> run_probe_bench_gpu(const ProbeBenchOptions& options);

// Prints the table (and writes JSON when options.json_out is set); returns 0.
int bench_probe(const ProbeBenchOptions& options);

}  // namespace hc::bench

#pragma once
// Kernel benchmarks behind `headcal bench dense|sparse` (bench_attention.cu, CUDA builds only).
#include <string>
#include <vector>

namespace hc::bench {

struct KernelBenchOptions {
  std::vector<int> n_list{8192, 32768, 131072};
  std::vector<int> d_list{64, 128};
  int heads = 0;     // 0: the shape TARGETS.md uses for this d (d=128: 32, d=64: 9)
  int kv_heads = 0;  // 0: likewise (d=128: 8, d=64: 3)
  bool fp16 = false;
  std::string json_out;       // write the results as JSON here (optional)
  std::string baseline_json;  // bench/sdpa_baseline.py output of the same run (optional)
  double seconds_per_point = 1.0;  // timed runs per measurement: enough for this long, 3..30
  std::vector<std::string> configs;  // sparse: these configurations (parse_config texts); empty: the usual six
};

// Dense causal attention: median time, TF/s (FLOPs = 4 N^2 d H / 2), ratio to SDPA flash/cuDNN.
int bench_dense(const KernelBenchOptions& options);

// MInference's usual configurations with GPU-built indices (build included): time, density,
// throughput over computed pairs, speed-up over our dense and over cuDNN SDPA.
int bench_sparse(const KernelBenchOptions& options);

}  // namespace hc::bench

namespace hc::bench {

// One timing of bench/sdpa_baseline.py (backend "flash" or "cudnn").
struct SdpaPoint {
  int n = 0, d = 0, heads = 0;
  std::string backend;
  double ms = 0, tflops = 0;
};
struct SdpaBaseline {
  std::string device;
  std::vector<SdpaPoint> points;
  // The point for (n, d, heads, backend), or nullptr.
  const SdpaPoint* find(int n, int d, int heads, const std::string& backend) const;
};
// Reads the script's JSON; throws hc::InputError naming the file when it is malformed.
SdpaBaseline read_sdpa_baseline(const std::string& path);

// Writes `json_text` to `path` through a temporary file in the same folder and a rename.
void write_text_atomically(const std::string& path, const std::string& json_text);

}  // namespace hc::bench

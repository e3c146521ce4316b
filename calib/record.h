#pragma once
// The record pipeline: model -> prefill engine -> per-layer hook -> recorder (+ candidate probes)
// -> atlas file, streamed one layer at a time (the engine never holds two layers, the writer
// never holds two layers' statistics).
//
// On the CUDA backend the hook gets device pointers and the recorder runs on the GPU; only the
// statistics ([H, N] twice and [H, M, M]) come back to the host per layer. On the CPU backend the
// CPU recorder runs on the host copies the engine hands out.
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "calib/cuda_engine.h"
#include "calib/device_select.h"
#include "calib/engine.h"
#include "calib/recorder.h"
#include "io/calibration/atlas.h"
#include "io/model/model_file.h"

namespace hc {

// One layer's dense attention as a prober sees it: exactly one of `host` / `device` is set,
// by the backend that ran the prefill. Pointers are valid only during CandidateProber::probe.
struct ProbeLayer {
  int layer = 0;
  kernels::AttentionDims dims;
  const LayerAttention* host = nullptr;          // CPU backend: fp32 host q, k, v, o, lse
  const DeviceLayerAttention* device = nullptr;  // CUDA backend: bf16 device q, k, v, o, fp32 lse, stream
};

// Extension point for the candidate probes (DESIGN.md "Calibration"): given a layer's q/k/v/o and
// dense LSE, return candidate rows (head, pattern, p1, p2, cost, density, recall, out_err) for
// any heads and candidates. The pipeline always adds one `dense` row per head itself, so a prober
// must not return dense rows. Called once per recorded layer, in ascending layer order.
class CandidateProber {
 public:
  virtual ~CandidateProber() = default;
  virtual std::vector<CandidateRow> probe(const ProbeLayer& layer) = 0;
  // Device bytes the prober allocates per prefill of n_tokens (counted in the CUDA memory check).
  virtual size_t device_bytes(const ModelConfig&, int64_t /*n_tokens*/) const { return 0; }
};

struct RecordProgress {
  int layer = 0;          // the layer just recorded
  int layers_done = 0;    // recorded so far
  int layers_total = 0;   // layers to record
  int64_t n_tokens = 0;
  double elapsed_s = 0;   // since the prefill started (weights already loaded)

  double tokens_per_s() const;  // token-layers per second / layers of the model recorded so far
  double eta_s() const;
};

// Where a calibration's time goes, stage by stage (`headcal bench calibrate`). record_atlas_set
// fills the record stages, peak_device_bytes and total_s (its own wall clock) when
// RecordOptions::timings points here; a caller that runs search on the atlas (search/ is no
// dependency of calib/) fills search_s and sets total_s to its own wall clock around both.
// Stages never overlap, so their sum is at most total_s.
struct CalibrationTimings {
  double load_s = 0;        // engine creation: weights dequantised (CPU) or uploaded (CUDA)
  double prefill_s = 0;     // the model's forward over every prompt, the recorder's and prober's work excluded
  double statistics_s = 0;  // the recorder: column mass, diagonal mass, pooled map (with their download)
  double probes_s = 0;      // the candidate probes of every layer: index builds and probe kernels
  double atlas_s = 0;       // creating, writing and closing the atlas file
  double search_s = 0;      // the caller's: reading the atlas, choosing per head under the budget, writing the profile
  double total_s = 0;
  size_t peak_device_bytes = 0;  // CUDA: the most device memory in use; 0 on the CPU

  double stages_s() const { return load_s + prefill_s + statistics_s + probes_s + atlas_s + search_s; }
};

struct RecordOptions {
  DeviceKind device = DeviceKind::Cpu;
  int first_layer = 0;
  int last_layer = -1;              // -1: the last layer
  int map_size = kDefaultMapSize;   // pooled map cells per side requested (min(map_size, N) used)
  // false: no recorder pass; the atlas holds the candidate tables only (meta statistics = 0):
  // at long N the statistics cost a QK^T pass per layer and 8 N bytes per head in the file.
  bool statistics = true;
  int n_threads = 0;                // CPU engine and CPU recorder
  std::string prompt_description;   // stored in the atlas meta (a prompt set: the set's description)
  std::string prompt_sha256;        // the set's sha256 for the meta; empty: the single prompt's ids'
  CandidateProber* prober = nullptr;  // optional
  std::function<void(const RecordProgress&)> on_progress;  // optional
  CudaEngineOptions cuda;
  // Optional: filled with the time of each stage (CalibrationTimings). On CUDA the device is then
  // synchronised at every stage boundary, which untimed runs skip.
  CalibrationTimings* timings = nullptr;
};

// One prompt of a recorded set (AtlasPrompt without its map size).
struct RecordPrompt {
  std::string name;
  std::string description;
  double weight = 1;
  std::vector<int32_t> tokens;  // [N]
};

struct RecordSummary {
  std::string backend;           // "cuda" / "cpu"
  std::string device;            // GPU name and memory, or "cpu"
  int64_t n_tokens = 0;          // the longest prompt's N
  int prompts = 1;
  int layers_recorded = 0;
  double load_s = 0;             // engine creation (weights upload)
  double prefill_s = 0;          // prefill + recording + atlas writing
  size_t peak_device_bytes = 0;  // CUDA only
};

// From this size of an atlas's statistics on, record and calibrate say so before the run and name
// --no-statistics (a 32-layer, 32-head model passes it at about 120K tokens).
constexpr int64_t kLargeStatisticsBytes = int64_t(1) << 30;
// The notice for `bytes` of statistics ("" below kLargeStatisticsBytes).
std::string statistics_size_notice(int64_t bytes);

// Opens `spec` as a model: "random:<shape>[:seed]" (calib/random_model.h) or a GGUF file / HF
// directory (io/model/open_model).
std::unique_ptr<ModelFile> open_model_spec(const std::string& spec);

// Creates the engine for `device`.
std::unique_ptr<Engine> make_engine(const ModelFile& model, DeviceKind device, const RecordOptions& options);

// Records `tokens` through a new engine and writes the atlas to `out_path` (temp file + rename).
RecordSummary record_atlas(const ModelFile& model, const std::vector<int32_t>& tokens, const std::string& out_path,
                           const RecordOptions& options);
// Same with an existing engine (tests reuse one engine across runs); options.device is ignored.
RecordSummary record_atlas_with(Engine& engine, const ModelFile& model, const std::vector<int32_t>& tokens,
                                const std::string& out_path, const RecordOptions& options);

// Records every prompt of a set, one prefill each through one engine (sized for the longest), into
// one atlas: per prompt its statistics and candidate table, the same layers and grid for all.
// Cost is linear in the number of prompts; memory is that of the longest prompt's run.
RecordSummary record_atlas_set(const ModelFile& model, const std::vector<RecordPrompt>& prompts,
                               const std::string& out_path, const RecordOptions& options);
RecordSummary record_atlas_set_with(Engine& engine, const ModelFile& model, const std::vector<RecordPrompt>& prompts,
                                    const std::string& out_path, const RecordOptions& options);

}  // namespace hc

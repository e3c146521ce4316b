#include "calib/record.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>

#include "calib/random_model.h"
#include "common/error.h"
#if defined(HEADCAL_HAVE_CUDA)
#include "common/cuda_check.h"
#endif
#include "headcal/version.h"
#include "io/prompt/prompt.h"
#include "kernels/sparse/cost.h"

namespace hc {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

int64_t longest_prompt(const std::vector<RecordPrompt>& prompts) {
  size_t n = 0;
  for (const RecordPrompt& p : prompts) n = std::max(n, p.tokens.size());
  return static_cast<int64_t>(n);
}

AtlasMeta make_meta(const ModelFile& model, const ModelConfig& c, const std::vector<RecordPrompt>& prompts,
                    const RecordOptions& options) {
  AtlasMeta m;
  m.model_fingerprint = model.fingerprint();
  m.model_name = c.name.empty() ? model.path() : c.name;
  m.model_file = model.path();
  m.arch = c.arch;
  m.layers = c.n_layers;
  m.heads = c.n_heads;
  m.kv_heads = c.n_kv_heads;
  m.head_dim = c.head_dim;
  m.tokens = longest_prompt(prompts);
  m.prompt_sha256 = !options.prompt_sha256.empty() ? options.prompt_sha256
                    : prompts.size() == 1          ? tokens_sha256(prompts.front().tokens)
                                                   : std::string();
  if (m.prompt_sha256.empty()) throw Error("internal error: a recorded prompt set needs its sha256");
  m.prompt_description = options.prompt_description;
  m.tool_version = HEADCAL_VERSION;
  m.map_size = map_cells(m.tokens, options.map_size);
  m.statistics = options.statistics ? 1 : 0;
  return m;
}

std::vector<AtlasPrompt> atlas_prompts(const std::vector<RecordPrompt>& prompts, const AtlasMeta& meta,
                                       const RecordOptions& options) {
  std::vector<AtlasPrompt> out;
  for (const RecordPrompt& p : prompts) {
    const int64_t n = static_cast<int64_t>(p.tokens.size());
    out.push_back({p.name, p.description, tokens_sha256(p.tokens), p.weight,
                   std::min(meta.map_size, map_cells(n, options.map_size)), p.tokens});
  }
  return out;
}

// The statistics (none when not recorded) plus one dense row per head and the prober's rows, as
// one atlas layer of an n_tokens prompt.
AtlasLayer make_layer(int layer, int64_t n_tokens, LayerStats stats, const ModelConfig& c,
                      std::vector<CandidateRow> probed) {
  AtlasLayer out;
  out.layer = layer;
  out.colmass = std::move(stats.colmass);
  out.diagmass = std::move(stats.diagmass);
  out.map = std::move(stats.map);
  const double dense_cost = kernels::dense_cost_flops(n_tokens, c.head_dim);
  for (int32_t h = 0; h < static_cast<int32_t>(c.n_heads); ++h)
    out.candidates.push_back({h, Pattern::dense, 0, 0, dense_cost, 1.0, 1.0, 0.0});
  for (CandidateRow& r : probed) {
    if (r.pattern == Pattern::dense)
      throw Error("candidate prober returned a dense row for layer " + std::to_string(layer) +
                  " (the pipeline writes those itself)");
    out.candidates.push_back(r);
  }
  return out;
}

// The prober's rows for one layer (none without a prober); exactly one of host / device is set.
std::vector<CandidateRow> probe_layer(const RecordOptions& options, int layer, const kernels::AttentionDims& dims,
                                      const LayerAttention* host, const DeviceLayerAttention* device) {
  if (!options.prober) return {};
  ProbeLayer p;
  p.layer = layer;
  p.dims = dims;
  p.host = host;
  p.device = device;
  return options.prober->probe(p);
}

#if defined(HEADCAL_HAVE_CUDA)
// With timings on, waits for the work enqueued on `stream`, so that the time up to here belongs
// to the stage that enqueued it. Untimed runs never wait here.
void sync_for_timing(const RecordOptions& options, void* stream) {
  if (options.timings && stream) HC_CHECK_CUDA(cudaStreamSynchronize(static_cast<cudaStream_t>(stream)));
}
#endif

double seconds_between(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// One layer's hook times: statistics, probes, atlas writing, and the whole hook (from after the
// wait for the forward), which the prefill's wall clock excludes.
struct HookTimes {
  double statistics_s = 0, probes_s = 0, atlas_s = 0, hook_s = 0;
};

// One prompt's prefill: per layer the recorder's statistics and the prober's rows, written as the
// prompt's layer of the atlas. `hook_times` accumulates the time spent in the hooks.
void record_one_prompt(Engine& engine, const ModelConfig& c, PrefillRequest request, const RecordOptions& options,
                       AtlasWriter& writer, size_t prompt, const std::function<void(int)>& layer_done,
                       RecordSummary& summary, HookTimes& hook_times) {
  if (auto* cuda_engine = dynamic_cast<CudaEngine*>(&engine)) {
#if defined(HEADCAL_HAVE_CUDA)
    CudaRecorder recorder(options.map_size);
    DeviceLayerHook hook = [&](const DeviceLayerAttention& a) {
      sync_for_timing(options, a.stream);  // the layer's forward so far is prefill time
      const auto t0 = Clock::now();
      if (options.statistics) recorder.record(a.dims, a.q, a.q_row_stride, a.k, a.k_row_stride, a.lse, a.stream);
      sync_for_timing(options, a.stream);
      const auto t1 = Clock::now();
      std::vector<CandidateRow> probed = probe_layer(options, a.layer, a.dims, nullptr, &a);
      sync_for_timing(options, a.stream);
      const auto t2 = Clock::now();
      LayerStats stats = options.statistics ? recorder.download(a.stream) : LayerStats{};
      const auto t3 = Clock::now();
      writer.write_layer(make_layer(a.layer, a.dims.n_tokens, std::move(stats), c, std::move(probed)), prompt);
      const auto t4 = Clock::now();
      layer_done(a.layer);
      hook_times.statistics_s += seconds_between(t0, t1) + seconds_between(t2, t3);
      hook_times.probes_s += seconds_between(t1, t2);
      hook_times.atlas_s += seconds_between(t3, t4);
      hook_times.hook_s += seconds_since(t0);
    };
    cuda_engine->prefill_device(request, hook);
    summary.device = cuda_engine->device_description();
    summary.peak_device_bytes = std::max(summary.peak_device_bytes, cuda_engine->peak_device_bytes());
#else
    (void)cuda_engine;  // make_cuda_engine throws in builds without CUDA, so none exists here
    (void)hook_times;
    throw DeviceError("CUDA engine in a build without CUDA");
#endif
  } else {
    RecorderOptions ro;
    ro.map_size = options.map_size;
    ro.n_threads = options.n_threads;
    request.on_layer = [&](const LayerAttention& a) {
      const auto t0 = Clock::now();
      LayerStats stats = options.statistics ? record_attention_cpu(a.dims, a.q, a.k, a.lse, ro) : LayerStats{};
      const auto t1 = Clock::now();
      std::vector<CandidateRow> probed = probe_layer(options, a.layer, a.dims, &a, nullptr);
      const auto t2 = Clock::now();
      writer.write_layer(make_layer(a.layer, a.dims.n_tokens, std::move(stats), c, std::move(probed)), prompt);
      const auto t3 = Clock::now();
      layer_done(a.layer);
      hook_times.statistics_s += seconds_between(t0, t1);
      hook_times.probes_s += seconds_between(t1, t2);
      hook_times.atlas_s += seconds_between(t2, t3);
      hook_times.hook_s += seconds_since(t0);
    };
    engine.prefill(request);
    summary.device = "cpu";
  }
}

}  // namespace

double RecordProgress::tokens_per_s() const {
  return elapsed_s > 0 ? static_cast<double>(n_tokens) * layers_done / elapsed_s / std::max(layers_total, 1) : 0.0;
}

double RecordProgress::eta_s() const {
  return layers_done > 0 ? elapsed_s / layers_done * (layers_total - layers_done) : 0.0;
}

std::string statistics_size_notice(int64_t bytes) {
  if (bytes < kLargeStatisticsBytes) return "";
  char text[200];
  std::snprintf(text, sizeof text,
                "the atlas's statistics will take %.1f GB; --no-statistics records the candidate probes only, "
                "which is all search needs",
                static_cast<double>(bytes) / 1e9);
  return text;
}

std::unique_ptr<ModelFile> open_model_spec(const std::string& spec) {
  if (auto random = open_random_model(spec)) return random;
  return open_model(spec);
}

std::unique_ptr<Engine> make_engine(const ModelFile& model, DeviceKind device, const RecordOptions& options) {
  if (device == DeviceKind::Cpu) return make_cpu_engine(model, options.n_threads);
  return make_cuda_engine(model, options.cuda);
}

namespace {

std::vector<RecordPrompt> single_prompt(const std::vector<int32_t>& tokens, const RecordOptions& options) {
  return {{"prompt", options.prompt_description, 1.0, tokens}};
}

}  // namespace

RecordSummary record_atlas(const ModelFile& model, const std::vector<int32_t>& tokens, const std::string& out_path,
                           const RecordOptions& options) {
  return record_atlas_set(model, single_prompt(tokens, options), out_path, options);
}

RecordSummary record_atlas_with(Engine& engine, const ModelFile& model, const std::vector<int32_t>& tokens,
                                const std::string& out_path, const RecordOptions& options) {
  return record_atlas_set_with(engine, model, single_prompt(tokens, options), out_path, options);
}

RecordSummary record_atlas_set(const ModelFile& model, const std::vector<RecordPrompt>& prompts,
                               const std::string& out_path, const RecordOptions& options) {
  const auto t0 = Clock::now();
  RecordOptions opts = options;
  if (opts.device == DeviceKind::Cuda) {
    const int64_t n = longest_prompt(prompts);
    if (opts.statistics)
      opts.cuda.hook_device_bytes += cuda_recorder_device_bytes(model.config().n_heads, n, opts.map_size);
    if (opts.prober) opts.cuda.hook_device_bytes += opts.prober->device_bytes(model.config(), n);
  }
  std::unique_ptr<Engine> engine = make_engine(model, opts.device, opts);
  const double load_s = seconds_since(t0);
  RecordSummary s = record_atlas_set_with(*engine, model, prompts, out_path, opts);
  s.load_s = load_s;
  if (opts.timings) {
    opts.timings->load_s = load_s;
    opts.timings->total_s = seconds_since(t0);
  }
  return s;
}

RecordSummary record_atlas_set_with(Engine& engine, const ModelFile& model, const std::vector<RecordPrompt>& prompts,
                                    const std::string& out_path, const RecordOptions& options) {
  const ModelConfig& c = engine.config();
  if (prompts.empty()) throw InputError(out_path, "no prompt to record");
  if (options.map_size < 1) throw InputError("--map-size", "must be at least 1");
  PrefillRequest request;
  request.first_layer = options.first_layer;
  request.last_layer = options.last_layer;
  request.want_logits = false;
  ResolvedRequest resolved{};
  for (const RecordPrompt& p : prompts) {  // rejects bad tokens and layer ranges before any work
    request.tokens = p.tokens;
    resolved = resolve_request(c, request);
  }

  const auto t_start = Clock::now();
  const AtlasMeta meta = make_meta(model, c, prompts, options);
  AtlasWriter writer(out_path, meta, atlas_prompts(prompts, meta, options));
  double atlas_s = seconds_since(t_start);
  RecordProgress progress;
  progress.layers_total = (resolved.last_layer - resolved.first_layer + 1) * static_cast<int>(prompts.size());
  progress.n_tokens = meta.tokens;
  const auto t0 = Clock::now();
  auto layer_done = [&](int layer) {
    progress.layer = layer;
    progress.layers_done++;
    progress.elapsed_s = seconds_since(t0);
    if (options.on_progress) options.on_progress(progress);
  };

  RecordSummary summary;
  summary.backend = engine.backend();
  summary.n_tokens = meta.tokens;
  summary.prompts = static_cast<int>(prompts.size());
  HookTimes hooks;
  double prefill_s = 0;
  for (size_t p = 0; p < prompts.size(); ++p) {
    request.tokens = prompts[p].tokens;
    const double hook_before = hooks.hook_s;
    const auto t_prompt = Clock::now();
    record_one_prompt(engine, c, request, options, writer, p, layer_done, summary, hooks);
    prefill_s += seconds_since(t_prompt) - (hooks.hook_s - hook_before);
  }
  const auto t_finalize = Clock::now();
  writer.finalize();
  atlas_s += seconds_since(t_finalize);
  summary.layers_recorded = progress.layers_done / static_cast<int>(prompts.size());
  summary.prefill_s = seconds_since(t0);
  if (options.timings) {
    CalibrationTimings& t = *options.timings;
    t = CalibrationTimings{};
    t.prefill_s = std::max(prefill_s, 0.0);
    t.statistics_s = hooks.statistics_s;
    t.probes_s = hooks.probes_s;
    t.atlas_s = atlas_s + hooks.atlas_s;
    t.peak_device_bytes = summary.peak_device_bytes;
    t.total_s = seconds_since(t_start);
  }
  return summary;
}

}  // namespace hc

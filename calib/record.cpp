#include "calib/record.h"

#include <algorithm>
#include <chrono>
#include <functional>

#include "calib/random_model.h"
#include "common/error.h"
#include "headcal/version.h"
#include "io/prompt.h"
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

// The statistics plus one dense row per head and the prober's rows, as one atlas layer.
AtlasLayer make_layer(int layer, LayerStats stats, const ModelConfig& c, std::vector<CandidateRow> probed) {
  AtlasLayer out;
  out.layer = layer;
  out.colmass = std::move(stats.colmass);
  out.diagmass = std::move(stats.diagmass);
  out.map = std::move(stats.map);
  const double dense_cost = kernels::dense_cost_flops(stats.n_tokens, c.head_dim);
  for (int32_t h = 0; h < static_cast<int32_t>(c.n_heads); ++h)
    out.candidates.push_back({h, PatternKind::dense, 0, 0, dense_cost, 1.0, 1.0, 0.0});
  for (CandidateRow& r : probed) {
    if (r.pattern == PatternKind::dense)
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

// One prompt's prefill: per layer the recorder's statistics and the prober's rows, written as the
// prompt's layer of the atlas.
void record_one_prompt(Engine& engine, const ModelConfig& c, PrefillRequest request, const RecordOptions& options,
                       AtlasWriter& writer, size_t prompt, const std::function<void(int)>& layer_done,
                       RecordSummary& summary) {
  if (auto* cuda_engine = dynamic_cast<CudaEngine*>(&engine)) {
#if defined(HEADCAL_HAVE_CUDA)
    CudaRecorder recorder(options.map_size);
    DeviceLayerHook hook = [&](const DeviceLayerAttention& a) {
      recorder.record(a.dims, a.q, a.q_row_stride, a.k, a.k_row_stride, a.lse, a.stream);
      std::vector<CandidateRow> probed = probe_layer(options, a.layer, a.dims, nullptr, &a);
      writer.write_layer(make_layer(a.layer, recorder.download(a.stream), c, std::move(probed)), prompt);
      layer_done(a.layer);
    };
    cuda_engine->prefill_device(request, hook);
    summary.device = cuda_engine->device_description();
    summary.peak_device_bytes = std::max(summary.peak_device_bytes, cuda_engine->peak_device_bytes());
#else
    (void)cuda_engine;  // make_cuda_engine throws in builds without CUDA, so none exists here
    throw DeviceError("CUDA engine in a build without CUDA");
#endif
  } else {
    RecorderOptions ro;
    ro.map_size = options.map_size;
    ro.n_threads = options.n_threads;
    request.on_layer = [&](const LayerAttention& a) {
      LayerStats stats = record_attention_cpu(a.dims, a.q, a.k, a.lse, ro);
      std::vector<CandidateRow> probed = probe_layer(options, a.layer, a.dims, &a, nullptr);
      writer.write_layer(make_layer(a.layer, std::move(stats), c, std::move(probed)), prompt);
      layer_done(a.layer);
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
    opts.cuda.hook_device_bytes += cuda_recorder_device_bytes(model.config().n_heads, n, opts.map_size);
    if (opts.prober) opts.cuda.hook_device_bytes += opts.prober->device_bytes(model.config(), n);
  }
  std::unique_ptr<Engine> engine = make_engine(model, opts.device, opts);
  const double load_s = seconds_since(t0);
  RecordSummary s = record_atlas_set_with(*engine, model, prompts, out_path, opts);
  s.load_s = load_s;
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

  const AtlasMeta meta = make_meta(model, c, prompts, options);
  AtlasWriter writer(out_path, meta, atlas_prompts(prompts, meta, options));
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
  for (size_t p = 0; p < prompts.size(); ++p) {
    request.tokens = prompts[p].tokens;
    record_one_prompt(engine, c, request, options, writer, p, layer_done, summary);
  }
  writer.finalize();
  summary.layers_recorded = progress.layers_done / static_cast<int>(prompts.size());
  summary.prefill_s = seconds_since(t0);
  return summary;
}

}  // namespace hc

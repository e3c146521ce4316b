#include "calib/record.h"

#include <algorithm>
#include <chrono>

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

AtlasMeta make_meta(const ModelFile& model, const ModelConfig& c, const std::vector<int32_t>& tokens,
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
  m.tokens = static_cast<int64_t>(tokens.size());
  m.prompt_sha256 = tokens_sha256(tokens);
  m.prompt_description = options.prompt_description;
  m.tool_version = HEADCAL_VERSION;
  m.map_size = map_cells(m.tokens, options.map_size);
  return m;
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

RecordSummary record_atlas(const ModelFile& model, const std::vector<int32_t>& tokens, const std::string& out_path,
                           const RecordOptions& options) {
  const auto t0 = Clock::now();
  RecordOptions opts = options;
  if (opts.device == DeviceKind::Cuda) {
    const int64_t n = static_cast<int64_t>(tokens.size());
    opts.cuda.hook_device_bytes += cuda_recorder_device_bytes(model.config().n_heads, n, opts.map_size);
    if (opts.prober) opts.cuda.hook_device_bytes += opts.prober->device_bytes(model.config(), n);
  }
  std::unique_ptr<Engine> engine = make_engine(model, opts.device, opts);
  const double load_s = seconds_since(t0);
  RecordSummary s = record_atlas_with(*engine, model, tokens, out_path, opts);
  s.load_s = load_s;
  return s;
}

RecordSummary record_atlas_with(Engine& engine, const ModelFile& model, const std::vector<int32_t>& tokens,
                                const std::string& out_path, const RecordOptions& options) {
  const ModelConfig& c = engine.config();
  PrefillRequest request;
  request.tokens = tokens;
  request.first_layer = options.first_layer;
  request.last_layer = options.last_layer;
  request.want_logits = false;
  const ResolvedRequest resolved = resolve_request(c, request);  // rejects bad tokens and layer ranges early
  if (options.map_size < 1) throw InputError("--map-size", "must be at least 1");

  AtlasWriter writer(out_path, make_meta(model, c, tokens, options), tokens);
  RecordProgress progress;
  progress.layers_total = resolved.last_layer - resolved.first_layer + 1;
  progress.n_tokens = static_cast<int64_t>(tokens.size());
  const auto t0 = Clock::now();
  auto layer_done = [&](int layer) {
    progress.layer = layer;
    progress.layers_done++;
    progress.elapsed_s = seconds_since(t0);
    if (options.on_progress) options.on_progress(progress);
  };

  RecordSummary summary;
  summary.backend = engine.backend();
  summary.n_tokens = progress.n_tokens;
  if (auto* cuda_engine = dynamic_cast<CudaEngine*>(&engine)) {
#if defined(HEADCAL_HAVE_CUDA)
    CudaRecorder recorder(options.map_size);
    DeviceLayerHook hook = [&](const DeviceLayerAttention& a) {
      recorder.record(a.dims, a.q, a.q_row_stride, a.k, a.k_row_stride, a.lse, a.stream);
      std::vector<CandidateRow> probed;
      if (options.prober) {
        ProbeLayer p;
        p.layer = a.layer;
        p.dims = a.dims;
        p.device = &a;
        probed = options.prober->probe(p);
      }
      writer.write_layer(make_layer(a.layer, recorder.download(a.stream), c, std::move(probed)));
      layer_done(a.layer);
    };
    cuda_engine->prefill_device(request, hook);
    summary.device = cuda_engine->device_description();
    summary.peak_device_bytes = cuda_engine->peak_device_bytes();
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
      std::vector<CandidateRow> probed;
      if (options.prober) {
        ProbeLayer p;
        p.layer = a.layer;
        p.dims = a.dims;
        p.host = &a;
        probed = options.prober->probe(p);
      }
      writer.write_layer(make_layer(a.layer, std::move(stats), c, std::move(probed)));
      layer_done(a.layer);
    };
    engine.prefill(request);
    summary.device = "cpu";
  }
  writer.finalize();
  summary.layers_recorded = progress.layers_done;
  summary.prefill_s = seconds_since(t0);
  return summary;
}

}  // namespace hc

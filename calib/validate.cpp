#include "calib/validate.h"
#include "calib/cuda_engine.h"
#include "calib/prober.h"
#include "calib/validate_format.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>
#include <memory>
#include <mutex>
#include <sstream>
#include <thread>

#include "calib/parallel_chunks.h"
#include "common/error.h"
#include "common/stopwatch.h"
#include "headcal/version.h"
#include "kernels/attention/attention_ref.h"
#include "kernels/sparse/cost.h"
#if defined(HEADCAL_HAVE_CUDA)
#include "calib/device_attention.h"
#endif
#include "kernels/sparse/index_ref.h"
#include "kernels/sparse/sparse_attention_ref.h"

namespace hc {

namespace {

int resolve_threads(int n_threads) {
  return n_threads > 0 ? n_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
}

bool all_dense(const std::vector<kernels::PatternConfig>& configs) {
  for (const kernels::PatternConfig& c : configs)
    if (c.pattern != kernels::Pattern::dense) return false;
  return true;
}

std::string head_name(const HeadValidation& h) {
  return "L" + std::to_string(h.layer) + "H" + std::to_string(h.head);
}

std::string fixed(double value, int digits) { return format_fixed(value, digits); }
std::string scientific(double value) { return format_scientific(value); }

// The CPU sparse prefill's per-layer work (see validate.h).
struct CpuSparseRun {
  const std::vector<std::vector<kernels::PatternConfig>>& configs;  // [layers][heads]
  kernels::EstimatorSettings settings;
  int n_threads;
  ValidationReport& report;

  void operator()(const LayerAttentionInput& in, float* o, float* lse) {
    const kernels::AttentionDims& dims = in.dims;
    const std::vector<kernels::PatternConfig>& layer_configs = configs.at(static_cast<size_t>(in.layer));
    HeadValidation* heads = report.heads.data() + static_cast<int64_t>(in.layer) * dims.n_heads;
    if (all_dense(layer_configs)) {
      const SteadyClock::time_point t0 = SteadyClock::now();
      kernels::dense_attention_ref(dims, in.q, in.k, in.v, o, lse, n_threads);
      report.sparse_attention_s += seconds_since(t0);
      for (int64_t h = 0; h < dims.n_heads; ++h) {
        heads[h].recall = 1;
        heads[h].out_err = 0;
        heads[h].density = 1;
      }
      return;
    }
    const int64_t N = dims.n_tokens, H = dims.n_heads, d = dims.head_dim;
    std::vector<float> dense_o(static_cast<size_t>(N * H * d));  // [N, H, d] reference output
    std::vector<float> dense_lse(static_cast<size_t>(H * N));    // [H, N] recall reference
    kernels::dense_attention_ref(dims, in.q, in.k, in.v, dense_o.data(), dense_lse.data(), n_threads);

    const SteadyClock::time_point t0 = SteadyClock::now();
    const kernels::SparseIndex index = kernels::build_index(in.q, in.k, dims, layer_configs, settings, n_threads);
    const double index_s = seconds_since(t0);
    kernels::SparseRefOptions opts;
    opts.dense_lse = dense_lse.data();
    opts.n_threads = n_threads;
    kernels::SparseProbe probe;
    kernels::sparse_attention_ref(dims, in.q, in.k, in.v, index.view(), o, lse, opts, &probe);
    report.sparse_attention_s += seconds_since(t0);
    report.index_build_s += index_s;

    const double dense_cost = kernels::dense_cost_flops(N, d);
    for (int64_t h = 0; h < H; ++h) {
      heads[h].recall = probe.recall[static_cast<size_t>(h)];
      heads[h].out_err = head_relative_error(o, dense_o.data(), N, H, d, h);
      heads[h].density =
          kernels::head_cost_flops(index, h, layer_configs[static_cast<size_t>(h)], d, settings) / dense_cost;
    }
  }
};

void summarise_heads(ValidationReport& report) {
  double recall_sum = 0, err_sum = 0, density_sum = 0;
  report.min_head_recall = 1;
  for (const HeadValidation& h : report.heads) {
    recall_sum += h.recall;
    err_sum += h.out_err;
    density_sum += h.density;  // every head of a model has the same dense cost
    report.min_head_recall = std::min(report.min_head_recall, h.recall);
  }
  const double n = static_cast<double>(std::max<size_t>(1, report.heads.size()));
  report.mean_recall = recall_sum / n;
  report.mean_out_err = err_sum / n;
  report.density = density_sum / n;
}

}  // namespace

void check_profile_for_model(const Profile& profile, const ModelConfig& config, const std::string& fingerprint,
                             bool strict, const std::string& source, std::vector<std::string>* warnings) {
  const std::string shape = profile_shape_mismatch(profile.model, config);
  if (!shape.empty()) throw InputError(source, "the profile does not fit the model (" + shape + ")");
  if (profile.defaults.block != kernels::kBlock)
    throw InputError(source, "defaults.block is " + std::to_string(profile.defaults.block) +
                                 "; the kernels use blocks of " + std::to_string(kernels::kBlock));
  if (profile.heads.size() != static_cast<size_t>(config.n_layers * config.n_heads))
    throw InputError(source, "the profile has " + std::to_string(profile.heads.size()) + " head entries, the model " +
                                 std::to_string(config.n_layers * config.n_heads));
  if (profile.model.fingerprint != fingerprint) {
    const std::string what = "the profile was made for model fingerprint '" + profile.model.fingerprint +
                             "', this model's is '" + fingerprint + "'";
    if (strict) throw InputError(source, what + " (--strict)");
    if (warnings) warnings->push_back(what);
  }
}

std::vector<kernels::PatternConfig> layer_configs(const Profile& profile, int64_t layer) {
  std::vector<kernels::PatternConfig> configs(static_cast<size_t>(profile.model.heads));  // [heads]
  for (int64_t h = 0; h < profile.model.heads; ++h) {
    configs[static_cast<size_t>(h)] = pattern_config(profile.at(layer, h).candidate());
  }
  return configs;
}

kernels::EstimatorSettings estimator_settings(const Profile& profile) { return estimator_settings(profile.defaults); }

LogitComparison compare_logits(const float* logits_a, const float* logits_b, int64_t positions, int64_t vocab,
                               int n_threads) {
  NextTokenComparison rows;
  rows.resize(static_cast<size_t>(std::max<int64_t>(positions, 0)));
  compare_logit_rows(logits_a, logits_b, positions, vocab, rows.kl.data(), rows.agree.data(), rows.confidence.data(),
                     resolve_threads(n_threads));
  summarise_next_token(rows);
  return {rows.mean_kl, rows.max_kl, rows.top1_agreement};
}

double relative_error(const float* a, const float* b, size_t count) {
  double diff = 0, ref = 0;
  for (size_t i = 0; i < count; ++i) {
    const double e = static_cast<double>(b[i]) - a[i];
    diff += e * e;
    ref += static_cast<double>(a[i]) * a[i];
  }
  return kernels::output_error(diff, ref);  // the one rule for a zero reference
}

ValidationReport validate_profile_run(Engine& engine, const std::string& model_fingerprint, const Profile& profile,
                                      const std::vector<int32_t>& tokens, const ValidateOptions& options,
                                      DenseReference* reference) {
  const ModelConfig& c = engine.config();
  ValidationReport report;
  report.backend = engine.backend();
  report.model_fingerprint = model_fingerprint;
  report.profile_fingerprint = profile.model.fingerprint;
  report.profile_tokens = profile.calibration.tokens;
  report.n_tokens = static_cast<int64_t>(tokens.size());
  report.min_recall_threshold = options.min_recall;
  report.max_kl_threshold = options.max_kl;
  check_profile_for_model(profile, c, model_fingerprint, options.strict, options.profile_source, &report.warnings);
  if (tokens.empty()) throw InputError("validate", "the prompt has no tokens");

  std::vector<std::vector<kernels::PatternConfig>> configs;  // [layers][heads]
  for (int64_t layer = 0; layer < c.n_layers; ++layer) configs.push_back(layer_configs(profile, layer));
  report.heads.resize(static_cast<size_t>(c.n_layers * c.n_heads));
  for (int64_t layer = 0; layer < c.n_layers; ++layer)
    for (int64_t h = 0; h < c.n_heads; ++h) {
      HeadValidation& hv = report.heads[static_cast<size_t>(layer * c.n_heads + h)];
      hv.layer = static_cast<int>(layer);
      hv.head = static_cast<int>(h);
      hv.config = configs[static_cast<size_t>(layer)][static_cast<size_t>(h)];
      hv.profile_recall = profile.at(layer, h).recall;
    }

  PrefillRequest base;
  base.tokens = tokens;
  // The next-token comparison works from the final hidden states, a chunk of positions at a time,
  // so host memory is O(N x hidden), never [N, vocab].
  base.want_logits = false;
  base.want_final_hidden = true;
  const int threads = resolve_threads(options.n_threads);

  PrefillResult dense, sparse;
  const bool reuse_dense = reference != nullptr && !reference->tokens.empty() && reference->tokens == tokens;
  // The progress of one prefill: a callback per layer (none without options.on_progress).
  auto ticker = [&](const char* phase) -> std::function<void()> {
    if (!options.on_progress) return {};
    auto progress = std::make_shared<ValidateProgress>();
    progress->phase = phase;
    progress->layers_total = static_cast<int>(c.n_layers);
    const SteadyClock::time_point start = SteadyClock::now();
    return [&options, progress, start]() {
      ++progress->layers_done;
      progress->elapsed_s = seconds_since(start);
      options.on_progress(*progress);
    };
  };
  if (reuse_dense) {
    report.dense_attention_s = reference->dense_attention_s;
    report.dense_prefill_s = reference->dense_prefill_s;
  }
  if (report.backend == "cuda") {
#if defined(HEADCAL_HAVE_CUDA)
    auto* cuda_engine = dynamic_cast<CudaEngine*>(&engine);
    HC_ASSERT(cuda_engine != nullptr, "a 'cuda' engine is a CudaEngine");
    SteadyClock::time_point t0 = SteadyClock::now();
    if (!reuse_dense) {
      dense = validate_dense_prefill_cuda(*cuda_engine, base, report, ticker("dense"));
      report.dense_prefill_s = seconds_since(t0);
    }
    t0 = SteadyClock::now();
    sparse = validate_sparse_prefill_cuda(*cuda_engine, profile, base, report, ticker("sparse"));
    report.sparse_prefill_s = seconds_since(t0);
#else
    throw DeviceError("validate: this build has no CUDA");
#endif
  } else {
    if (!reuse_dense) {
      PrefillRequest dense_request = base;
      const std::function<void()> dense_done = ticker("dense");
      dense_request.attention_override = [&](const LayerAttentionInput& in, float* o, float* lse) {
        // The engine's own dense attention, timed.
        const SteadyClock::time_point t0 = SteadyClock::now();
        kernels::dense_attention_ref(in.dims, in.q, in.k, in.v, o, lse, threads);
        report.dense_attention_s += seconds_since(t0);
        if (dense_done) dense_done();
      };
      const SteadyClock::time_point t0 = SteadyClock::now();
      dense = engine.prefill(dense_request);
      report.dense_prefill_s = seconds_since(t0);
    }

    PrefillRequest sparse_request = base;
    const std::function<void()> sparse_done = ticker("sparse");
    sparse_request.attention_override = [run = CpuSparseRun{configs, estimator_settings(profile), threads, report},
                                         &sparse_done](const LayerAttentionInput& in, float* o, float* lse) mutable {
      run(in, o, lse);
      if (sparse_done) sparse_done();
    };
    const SteadyClock::time_point t0 = SteadyClock::now();
    sparse = engine.prefill(sparse_request);
    report.sparse_prefill_s = seconds_since(t0);
  }

  const int64_t positions = report.n_tokens;
  const std::vector<float>& dense_hidden = reuse_dense ? reference->final_hidden : dense.final_hidden;  // [N, hidden]
  HC_ASSERT(dense_hidden.size() == sparse.final_hidden.size() &&
                dense_hidden.size() == static_cast<size_t>(positions * c.hidden),
            "both prefills return the final hidden state of every position");
  const NextTokenComparison cmp =
      engine.compare_next_token(dense_hidden.data(), sparse.final_hidden.data(), positions, 0);
  report.mean_kl = cmp.mean_kl;
  report.max_kl = cmp.max_kl;
  report.top1_agreement = cmp.top1_agreement;
  report.confident_share = cmp.confident_share;
  report.confident_top1 = cmp.confident_top1;
  report.hidden_rel_error = relative_error(dense_hidden.data(), sparse.final_hidden.data(), dense_hidden.size());
  if (reference != nullptr && !reuse_dense) {
    reference->tokens = tokens;
    reference->final_hidden = std::move(dense.final_hidden);
    reference->dense_attention_s = report.dense_attention_s;
    reference->dense_prefill_s = report.dense_prefill_s;
  }
  summarise_heads(report);
  return report;
}

bool check_validation_thresholds(ValidationReport& report, const ValidateOptions& options) {
  report.min_recall_threshold = options.min_recall;
  report.max_kl_threshold = options.max_kl;
  report.min_top1_threshold = options.min_top1;
  report.failures.clear();
  if (options.min_recall >= 0 && !(report.mean_recall >= options.min_recall)) {
    std::string msg = "mean recall " + fixed(report.mean_recall, 4) + " < " + fixed(options.min_recall, 4);
    std::vector<const HeadValidation*> below;
    for (const HeadValidation& h : report.heads)
      if (h.recall < options.min_recall) below.push_back(&h);
    std::sort(below.begin(), below.end(),
              [](const HeadValidation* a, const HeadValidation* b) { return a->recall < b->recall; });
    msg += "; " + std::to_string(below.size()) + " heads below";
    const size_t shown = std::min<size_t>(below.size(), 10);
    for (size_t i = 0; i < shown; ++i)
      msg += std::string(i ? ", " : ": ") + head_name(*below[i]) + " " + fixed(below[i]->recall, 4);
    if (below.size() > shown) msg += ", ...";
    report.failures.push_back(msg);
  }
  if (options.max_kl >= 0 && !(report.mean_kl <= options.max_kl))
    report.failures.push_back("mean KL " + scientific(report.mean_kl) + " > " + scientific(options.max_kl));
  if (options.min_top1 >= 0 && !(report.top1_agreement >= options.min_top1))
    report.failures.push_back("top-1 agreement " + fixed(report.top1_agreement, 4) + " < " + fixed(options.min_top1, 4));
  return report.failures.empty();
}

std::string validation_summary(const ValidationReport& r) {
  std::ostringstream out;
  int counts[4] = {0, 0, 0, 0};
  for (const HeadValidation& h : r.heads) ++counts[static_cast<int>(h.config.pattern) & 3];
  out << "validated " << r.heads.size() << " heads at " << r.n_tokens << " tokens on " << r.backend;
  if (r.profile_tokens > 0 && r.profile_tokens != r.n_tokens) out << " (profile calibrated at " << r.profile_tokens << ")";
  out << "\n";
  out << "  patterns: dense " << counts[0] << ", a_shape " << counts[1] << ", vertical_slash " << counts[2]
      << ", block_sparse " << counts[3] << "; density " << fixed(r.density, 4) << "\n";
  out << "  recall: mean " << fixed(r.mean_recall, 4) << ", min " << fixed(r.min_head_recall, 4)
      << "; head output error: mean " << fixed(r.mean_out_err, 4) << "\n";
  out << "  next token: mean KL " << scientific(r.mean_kl) << " nats, max " << scientific(r.max_kl)
      << ", top-1 agreement " << fixed(r.top1_agreement, 4) << " (" << fixed(r.confident_top1, 4)
      << " where dense is sure, p >= " << fixed(kConfidentProbability, 1) << ": " << fixed(100 * r.confident_share, 1) << "% of positions)\n";
  out << "  final hidden state: relative error " << scientific(r.hidden_rel_error) << "\n";
  out << "  attention time: dense " << fixed(r.dense_attention_s * 1e3, 1) << " ms, sparse "
      << fixed(r.sparse_attention_s * 1e3, 1) << " ms (index builds " << fixed(r.index_build_s * 1e3, 1) << " ms)";
  if (r.sparse_attention_s > 0) out << ", speedup " << fixed(r.dense_attention_s / r.sparse_attention_s, 2) << "x";
  // The CPU sparse kernel is the double-precision reference: its time says nothing of deployment.
  if (r.backend == "cpu") out << " [CPU references, not deployment timings]";
  out << "\n";
  out << "  prefill time: dense " << fixed(r.dense_prefill_s, 2) << " s, sparse " << fixed(r.sparse_prefill_s, 2)
      << " s (includes the dense reference of every sparse layer)\n";
  std::vector<const HeadValidation*> worst;
  for (const HeadValidation& h : r.heads)
    if (h.config.pattern != kernels::Pattern::dense) worst.push_back(&h);
  std::sort(worst.begin(), worst.end(), [](const HeadValidation* a, const HeadValidation* b) {
    return a->recall != b->recall ? a->recall < b->recall : (a->layer != b->layer ? a->layer < b->layer : a->head < b->head);
  });
  if (!worst.empty()) {
    out << "  lowest recall:";
    const size_t shown = std::min<size_t>(worst.size(), 5);
    for (size_t i = 0; i < shown; ++i)
      out << (i ? "," : "") << " " << head_name(*worst[i]) << " " << kernels::describe(worst[i]->config) << " "
          << fixed(worst[i]->recall, 4) << " (profile " << fixed(worst[i]->profile_recall, 4) << ")";
    out << "\n";
  }
  out << thresholds_lines(r, r.failures, "thresholds");
  return out.str();
}

std::string format_fixed(double value, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, value);
  return buf;
}

std::string format_scientific(double value) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.3e", value);
  return buf;
}

std::string thresholds_lines(const ValidationReport& r, const std::vector<std::string>& failures,
                             const std::string& label) {
  if (r.min_recall_threshold < 0 && r.max_kl_threshold < 0 && r.min_top1_threshold < 0) return "";
  std::string out = "  " + label + ":";
  if (r.min_recall_threshold >= 0) out += " min recall " + format_fixed(r.min_recall_threshold, 4);
  if (r.max_kl_threshold >= 0) out += " max KL " + format_scientific(r.max_kl_threshold);
  if (r.min_top1_threshold >= 0) out += " min top-1 " + format_fixed(r.min_top1_threshold, 4);
  out += failures.empty() ? ": PASS\n" : ": FAIL\n";
  for (const std::string& f : failures) out += "    " + f + "\n";
  return out;
}

std::string validation_json(const ValidationReport& r, const std::string& model_path, const std::string& profile_path,
                            const std::string& prompt_description, const std::string& prompt_sha256) {
  nlohmann::ordered_json j;
  j["format"] = "headcal-validation";
  j["version"] = 1;
  j["tool_version"] = HEADCAL_VERSION;
  j["model"] = {{"path", model_path}, {"fingerprint", r.model_fingerprint}};
  j["profile"] = {{"path", profile_path}, {"fingerprint", r.profile_fingerprint}, {"calibration_tokens", r.profile_tokens}};
  j.update(validation_json_body(r, prompt_description, prompt_sha256));
  return j.dump(1) + "\n";
}

nlohmann::ordered_json validation_json_body(const ValidationReport& r, const std::string& prompt_description,
                                            const std::string& prompt_sha256) {
  nlohmann::ordered_json j;
  j["prompt"] = {{"description", prompt_description}, {"tokens", r.n_tokens}, {"sha256", prompt_sha256}};
  j["backend"] = r.backend;
  j["summary"] = {{"mean_recall", r.mean_recall},       {"min_head_recall", r.min_head_recall},
                  {"mean_out_err", r.mean_out_err},     {"density", r.density},
                  {"mean_kl", r.mean_kl},               {"max_kl", r.max_kl},
                  {"top1_agreement", r.top1_agreement}, {"confident_top1", r.confident_top1},
                  {"confident_share", r.confident_share}, {"hidden_rel_error", r.hidden_rel_error}};
  j["timing_s"] = {{"dense_attention", r.dense_attention_s}, {"sparse_attention", r.sparse_attention_s},
                   {"index_build", r.index_build_s},         {"dense_prefill", r.dense_prefill_s},
                   {"sparse_prefill", r.sparse_prefill_s}};
  nlohmann::ordered_json thresholds = nlohmann::ordered_json::object();
  if (r.min_recall_threshold >= 0) thresholds["min_recall"] = r.min_recall_threshold;
  if (r.max_kl_threshold >= 0) thresholds["max_kl"] = r.max_kl_threshold;
  if (r.min_top1_threshold >= 0) thresholds["min_top1"] = r.min_top1_threshold;
  j["thresholds"] = thresholds;
  j["passed"] = r.failures.empty();
  j["failures"] = r.failures;
  j["warnings"] = r.warnings;
  nlohmann::ordered_json heads = nlohmann::ordered_json::array();
  for (const HeadValidation& h : r.heads)
    heads.push_back({{"layer", h.layer},
                     {"head", h.head},
                     {"pattern", kernels::pattern_name(h.config.pattern)},
                     {"p1", h.config.p1},
                     {"p2", h.config.p2},
                     {"recall", h.recall},
                     {"out_err", h.out_err},
                     {"density", h.density},
                     {"profile_recall", h.profile_recall}});
  j["heads"] = heads;
  return j;
}

size_t validate_device_bytes(const ModelConfig& config, const Profile& profile, int64_t n_tokens) {
  const kernels::AttentionDims dims = cuda_attention_dims(config, n_tokens);  // the CUDA engine's attention
  const size_t dense_o = size_t(n_tokens) * dims.n_heads * dims.head_dim * 2;  // bf16 [N, H, d]
  const size_t dense_lse = size_t(config.n_heads) * n_tokens * 4;            // fp32 [H, N]
  const size_t probe = size_t(config.n_heads) * 4 * 8;                       // [H] x4 sums
  size_t planner = 0;
#if defined(HEADCAL_HAVE_CUDA)
  // The layer planner's one workspace (kernels/sparse/layer_plan.h), exactly.
  std::vector<std::vector<kernels::PatternConfig>> layers;
  for (int64_t layer = 0; layer < config.n_layers; ++layer) layers.push_back(layer_configs(profile, layer));
  planner = static_cast<size_t>(
      kernels::LayerPlanner::workspace_bytes(layers, layer_shape(dims), estimator_settings(profile)));
#else
  (void)profile;
#endif
  return dense_o + dense_lse + probe + planner + (64u << 20);
}

}  // namespace hc

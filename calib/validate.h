#pragma once
// Validation of a profile (DESIGN.md "calib/ validate"): the prefill runs twice on one engine,
// once dense and once with every head on its profiled sparse kernel, the sparse outputs flowing on
// to later layers as in deployment. Compared: per-head recall (what each sparse kernel keeps of
// the attention it replaces, measured in the sparse run against the dense LSE of the same layer
// input), per-head output error, the next-token distributions of every position (mean KL and
// top-1 agreement), the final hidden state, and the attention time of both runs. The prefills
// return only the final hidden states ([N, hidden]); Engine::compare_next_token turns them into
// logits a chunk of positions at a time, so host memory is O(N x hidden), never [N, vocab].
//
// Per layer of the sparse run (both backends):
//   - the dense kernel runs over all heads: its LSE is the recall reference and its output error
//     reference (untimed when the layer has a sparse head, since deployment would not run it);
//   - a layer whose heads are all `dense` keeps that dense output (deployment's fast path), so an
//     all-dense profile reproduces the dense prefill exactly;
//   - otherwise the layer's index is built from the layer's real q/k (dense heads get the dense
//     index, as one kernel family serves all heads) and the sparse kernel in probe mode writes
//     o and lse for every head: timed = index build + sparse kernel.
// The CUDA backend runs each layer through the layer planner (kernels/sparse/layer_plan.h) and
// times with CUDA events exactly what deployment runs: the dense kernel alone in the dense run, plan
// + run in the sparse run (an all-dense layer: the dense kernel), nothing else; the sparse kernel
// runs once more, untimed, in probe mode (which does extra work deployment would not).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "calib/cuda_engine.h"
#include "calib/device_select.h"
#include "calib/engine.h"
#include "io/model/model_file.h"
#include "io/calibration/profile.h"
#include "kernels/sparse/pattern.h"

namespace hc {

// One prefill of a validation as it goes (ValidateOptions::on_progress): called after each layer.
struct ValidateProgress {
  const char* phase = "";  // "dense" or "sparse" (the sparse prefill also runs each layer's dense
                           // reference and probe, so it takes longer than the dense one)
  int layers_done = 0;
  int layers_total = 0;
  double elapsed_s = 0;  // since this prefill began
  double eta_s() const { return layers_done > 0 ? elapsed_s / layers_done * (layers_total - layers_done) : 0.0; }
};

struct ValidateOptions {
  int n_threads = 0;         // CPU attention, index builds and comparisons; <= 0: all cores
  bool strict = false;       // a model fingerprint mismatch is an InputError, not a warning
  double min_recall = -1;    // threshold on the mean recall over heads; < 0: none
  double max_kl = -1;        // threshold on the mean KL(P_dense || P_sparse); < 0: none
  double min_top1 = -1;      // threshold on the top-1 agreement; < 0: none
  std::string profile_source = "profile";  // named in messages (the profile's path)
  // Optional. On CUDA a layer then waits for the GPU before it is reported, so the times are the
  // device's, not the host's enqueueing.
  std::function<void(const ValidateProgress&)> on_progress;
};

struct HeadValidation {
  int layer = 0;
  int head = 0;
  kernels::PatternConfig config;
  double recall = 1;          // sparse run, probe mode against the dense LSE of the same input
  double out_err = 0;         // ||O_sparse - O_dense||_F / ||O_dense||_F over this head, same input
  double density = 1;         // kernel pairs x 4d + estimator FLOPs, over the dense cost
  double profile_recall = 1;  // what the profile recorded at calibration length
};

struct ValidationReport {
  std::string backend;  // "cpu" / "cuda"
  std::string model_fingerprint;
  std::string profile_fingerprint;
  int64_t n_tokens = 0;
  int64_t profile_tokens = 0;  // calibration length recorded in the profile
  std::vector<std::string> warnings;
  std::vector<HeadValidation> heads;  // [layers * heads], (layer, head) order

  double mean_recall = 1;
  double min_head_recall = 1;
  double mean_out_err = 0;
  double density = 1;           // sum of head costs / sum of dense costs
  double mean_kl = 0;           // mean over positions of KL(P_dense || P_sparse), nats
  double max_kl = 0;            // over positions
  double top1_agreement = 1;    // fraction of positions whose argmax agrees
  double confident_share = 0;   // fraction of positions where dense gives its argmax p >= 0.5
  double confident_top1 = 1;    // top-1 agreement over those positions (calib/next_token.h)
  double hidden_rel_error = 0;  // ||h_s - h_d||_F / ||h_d||_F, final hidden (after the final norm)

  double dense_attention_s = 0;   // dense run: the attention calls only
  double sparse_attention_s = 0;  // sparse run: index builds + sparse kernels (+ all-dense layers)
  double index_build_s = 0;       // part of sparse_attention_s
  double dense_prefill_s = 0;     // whole prefill, dense
  double sparse_prefill_s = 0;    // whole prefill, sparse (includes the untimed reference work)

  // Threshold outcome (filled by check_validation_thresholds).
  double min_recall_threshold = -1;
  double max_kl_threshold = -1;
  double min_top1_threshold = -1;
  std::vector<std::string> failures;  // empty: passed
};

// Throws InputError when the profile's shapes do not fit the model or its block is not 64; a
// fingerprint mismatch is appended to `warnings` (InputError when strict).
void check_profile_for_model(const Profile& profile, const ModelConfig& config, const std::string& fingerprint,
                             bool strict, const std::string& source, std::vector<std::string>* warnings);

// The kernel config of every head of `layer` ([heads]) and the estimator settings of a profile.
std::vector<kernels::PatternConfig> layer_configs(const Profile& profile, int64_t layer);
kernels::EstimatorSettings estimator_settings(const Profile& profile);

// The dense prefill's part of a validation, kept to validate several profiles on one prompt (layer
// sensitivity): the prompt, the final hidden state and the dense run's timings.
struct DenseReference {
  std::vector<int32_t> tokens;        // [N] the prompt it belongs to; empty: not computed yet
  std::vector<float> final_hidden;    // [N, hidden]
  double dense_attention_s = 0;
  double dense_prefill_s = 0;
};

// Runs the dense and the sparse prefill of `tokens` on `engine` (CPU or CUDA) and compares them.
// Thresholds are recorded in the report but not checked here (check_validation_thresholds).
// With `reference`: when it holds this prompt's dense run, that run is reused instead of a new
// dense prefill (the sparse run never depends on it), otherwise it is filled.
ValidationReport validate_profile_run(Engine& engine, const std::string& model_fingerprint, const Profile& profile,
                                      const std::vector<int32_t>& tokens, const ValidateOptions& options,
                                      DenseReference* reference = nullptr);

// Fills report.failures against options.min_recall / max_kl / min_top1 ("mean recall 0.91 < 0.95;
// heads below: L3H2 0.71, ...") and returns whether it passed.
bool check_validation_thresholds(ValidationReport& report, const ValidateOptions& options);

// A human-readable summary (several lines) and a JSON record (format headcal-validation, v1).
std::string validation_summary(const ValidationReport& report);
std::string validation_json(const ValidationReport& report, const std::string& model_path,
                            const std::string& profile_path, const std::string& prompt_description,
                            const std::string& prompt_sha256);

// Next-token comparison of two logit matrices [positions, vocab]: mean and max KL(P_a || P_b)
// (double, stable log-softmax) and the fraction of rows whose argmax agrees (ties: lowest id).
// The row formula is compare_logit_rows (calib/next_token.h), which the engines' chunked
// compare_next_token also follows.
struct LogitComparison {
  double mean_kl = 0;
  double max_kl = 0;
  double top1_agreement = 1;
};
LogitComparison compare_logits(const float* logits_a, const float* logits_b, int64_t positions, int64_t vocab,
                               int n_threads = 0);

// ||b - a||_F / ||a||_F in double (0 when both are zero).
double relative_error(const float* a, const float* b, size_t count);

// Device memory the CUDA validate run allocates per prefill beyond the engine's (the dense
// reference's output and LSE, the probe's sums, the layer planner's workspace for this profile):
// CudaEngineOptions::hook_device_bytes.
size_t validate_device_bytes(const ModelConfig& config, const Profile& profile, int64_t n_tokens);

// ---- Validation over a prompt set (calib/validate_set.cpp) ----

// One prompt of a validated set.
struct PromptValidation {
  std::string name;
  std::string description;
  std::string sha256;
  double weight = 1;
  ValidationReport report;
};

// The prompts' reports and their aggregate: the mean (weighted) and the worst prompt of each
// measure. Thresholds apply to every prompt, so they hold on the worst one.
struct SetValidation {
  std::string description;  // the set (or the single prompt)
  std::string sha256;
  std::vector<PromptValidation> prompts;

  double density = 1;           // weighted mean over prompts
  double mean_kl = 0, worst_kl = 0;      // of the prompts' mean KL
  double mean_top1 = 1, worst_top1 = 1;  // of the prompts' top-1 agreement
  double mean_confident_top1 = 1, worst_confident_top1 = 1;  // of the prompts' confident_top1
  double mean_recall = 1, worst_recall = 1;  // of the prompts' mean recall over heads
  double min_head_recall = 1;   // over every prompt and head
  double dense_attention_s = 0, sparse_attention_s = 0, index_build_s = 0;  // summed over prompts
  std::vector<std::string> failures;  // "prompt NAME: mean KL ... > ..."; empty: passed
};

struct ValidationPrompt {
  std::string name;
  std::string description;
  std::string sha256;
  double weight = 1;
  std::vector<int32_t> tokens;  // [N]
};

// Validates every prompt on one engine (sized for the longest), then aggregates and checks the
// thresholds of `options` on each prompt. `on_prompt` (optional) sees each report as it is done.
SetValidation validate_prompt_set(Engine& engine, const std::string& model_fingerprint, const Profile& profile,
                                  const std::vector<ValidationPrompt>& prompts, const std::string& set_description,
                                  const std::string& set_sha256, const ValidateOptions& options,
                                  const std::function<void(const PromptValidation&)>& on_prompt = {});

// The aggregate lines (mean and worst of each measure, the lowest heads over all prompts, the
// thresholds' outcome); per-prompt summaries come from validation_summary.
std::string set_validation_summary(const SetValidation& v);

// JSON record, format headcal-validation version 2: "summary" holds the weighted means (mean_kl,
// top1_agreement, confident_top1, density, mean_recall) and the worst prompt's (worst_kl, worst_top1,
// worst_confident_top1, worst_recall), "prompts" every prompt's record (as version 1's body, heads included), "method"
// the label (e.g. how the profile was made) for frontier plots.
std::string set_validation_json(const SetValidation& v, const std::string& model_path, const std::string& profile_path,
                                const std::string& method);

#if defined(HEADCAL_HAVE_CUDA)
// The CUDA sparse run (calib/validate_cuda.cu): fills report heads, attention timings and
// returns the sparse prefill's result.
// layer_done (optional) is called after each layer, once the GPU has finished it.
PrefillResult validate_sparse_prefill_cuda(CudaEngine& engine, const Profile& profile, const PrefillRequest& base,
                                           ValidationReport& report, const std::function<void()>& layer_done = {});
// The dense run with CUDA-event timing of the dense attention calls.
PrefillResult validate_dense_prefill_cuda(CudaEngine& engine, const PrefillRequest& base, ValidationReport& report,
                                          const std::function<void()>& layer_done = {});
#endif

}  // namespace hc

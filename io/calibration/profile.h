#pragma once
// The profile: one sparse pattern per (layer, head), what `search` writes and `validate`,
// `export` and inference engines read. YAML, format headcal-profile, version 1:
//
//   format: headcal-profile
//   version: 1
//   model: {name: ..., arch: llama, layers: 30, heads: 9, kv_heads: 3, head_dim: 64, fingerprint: ...}
//   calibration:
//     prompt: ...            # description of the calibration prompt
//     tokens: 8192           # N, the length recall/density were measured at
//     sha256: ...            # of the prompt's token ids
//     budget: {mode: global-density, value: 0.3}   # density | global-density | min-recall | imported
//                                                  # | minference-rule (value 0)
//     objective: mean-recall # optional: how candidates were scored over the prompts (search/tables.h)
//     prompts: 5             # optional: the number of prompts of the calibration set (1 when absent)
//     target: minference     # optional: the runtime search chose for (headcal when absent)
//     achieved_density: 0.29 # sum of chosen costs / sum of dense costs, over all heads
//     mean_recall: 0.97
//     tool_version: 0.1.0
//   defaults: {block: 64, last_q: 64, v_sink: 30, s_local: 100}
//   heads:                   # exactly one entry per (layer, head), sorted
//     - {layer: 0, head: 0, pattern: vertical_slash, v: 1000, s: 800, recall: 0.98, density: 0.21, out_err: 0.02}
//     - {layer: 0, head: 1, pattern: a_shape, sink: 64, local: 512, recall: ..., density: ..., out_err: ...}
//     - {layer: 0, head: 2, pattern: block_sparse, k: 16, ...}
//     - {layer: 0, head: 3, pattern: dense, ...}
//
// Parameter keys and ranges per pattern: io/calibration/grid.h. recall, density and out_err are the values
// measured at calibration length (density may exceed 1 slightly: estimator FLOPs count).
#include <cstdint>
#include <string>
#include <vector>

#include "io/calibration/grid.h"
#include "io/model/model_config.h"

namespace hc {

constexpr const char* kProfileFormat = "headcal-profile";
constexpr int64_t kProfileVersion = 1;

// The runtime a profile is calibrated for (DESIGN.md "Targets"): headcal's own kernels, which run
// every pattern and parameter exactly, or what MInference / vLLM-SGLang dual-chunk attention run
// (io/calibration/export_changes.h maps a head to what the runtime computes).
enum class Target { headcal, minference, dual_chunk };

// "headcal", "minference", "dual-chunk": the --target values and the profile's calibration.target.
const char* target_name(Target target);
// Inverse of target_name; false for an unknown name.
bool parse_target(const std::string& name, Target* target);

struct ProfileModel {
  std::string name;
  std::string arch;
  int64_t layers = 0;
  int64_t heads = 0;
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  std::string fingerprint;
};

struct ProfileCalibration {
  std::string prompt;
  int64_t tokens = 0;
  std::string sha256;
  std::string budget_mode;  // "density", "global-density", "min-recall", "imported", "minference-rule"
  double budget_value = 0;  // in (0, 1]; 0 for "imported" and "minference-rule"
  double achieved_density = 0;
  double mean_recall = 0;
  std::string tool_version;
  std::string objective;  // empty: not recorded (single-prompt profiles, imports)
  int64_t prompts = 1;    // prompts of the calibration set
  Target target = Target::headcal;  // the runtime search chose for (only non-headcal is written)
};

struct ProfileHead {
  int64_t layer = 0;
  int64_t head = 0;
  Pattern pattern = Pattern::dense;
  int32_t p1 = 0;
  int32_t p2 = 0;
  double recall = 1;
  double density = 1;
  double out_err = 0;

  GridCandidate candidate() const { return {pattern, p1, p2}; }
};

struct Profile {
  ProfileModel model;
  ProfileCalibration calibration;
  PatternDefaults defaults;
  std::vector<ProfileHead> heads;  // [layers * heads], sorted by (layer, head)

  // The entry of (layer, head); the profile must be complete and sorted (validate_profile).
  const ProfileHead& at(int64_t layer, int64_t head) const;
};

// True for "density", "global-density", "min-recall", "imported", "minference-rule".
bool is_known_budget_mode(const std::string& mode);

// Throws InputError(source, ...) for the first problem: model counts, budget, defaults, an entry
// outside the model, a (layer, head) missing or repeated, parameters out of range, non-finite
// numbers. Sorts nothing: entries must already be in (layer, head) order.
void validate_profile(const Profile& profile, const std::string& source);

std::string profile_to_yaml(const Profile& profile);
// Parses and validates (format name, version, then validate_profile).
Profile parse_profile_yaml(const std::string& text, const std::string& source);
Profile read_profile(const std::string& path);
// Validates, then writes to a temporary file in the same folder and renames it onto `path`.
void write_profile(const Profile& profile, const std::string& path);

// Empty when the profile's shapes (layers, heads, kv_heads, head_dim) fit `config`, else what
// differs ("heads: profile 9, model 32").
std::string profile_shape_mismatch(const ProfileModel& model, const ModelConfig& config);
// Empty when two descriptions name the same model (fingerprint and shapes), else what differs.
std::string profile_model_mismatch(const ProfileModel& a, const ProfileModel& b, const char* a_name,
                                   const char* b_name);

// Writes `text` to `path` through a temporary file in the same folder and a rename
// (shared by the profile, export and report writers).
void write_file_atomic(const std::string& path, const std::string& text);

}  // namespace hc

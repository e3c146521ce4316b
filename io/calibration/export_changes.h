#pragma once
// What a runtime runs instead of a profile's heads: the mapping behind `--target` (search keeps the
// candidates the target runs exactly, validate runs each head as the target does) and the check
// behind `headcal export`. runtime_head() is the one place the rules below are applied.
//
// A profile promises, per head, a pattern with exact parameters (its recall and density were
// measured for that set). An export is honest only when the runtime that loads the file computes
// that set. This module lists every head whose meaning the runtime would change, and the
// profile-wide conditions under which it would run something else, from the consumers' own
// loading and kernel code:
//
// MInference (HF patch, `config_path`):
//   - block_sparse(k), k != 100: its kernel ignores the parameters and keeps the top 100 64-key
//     blocks per row block (at most all of them).
//   - dense: MInference has no dense type; the export writes vertical_and_slash(N, N) with N the
//     calibration length, which is dense up to N tokens only.
//   - vertical_slash: it keeps max(v, 30) columns and max(s, 50) diagonals, always the first 30
//     columns and the nearest 100 diagonals, estimated from the last 64 queries. headcal's own
//     forced sets are the profile's defaults (v_sink, s_local, last_q): equal with 30 / 100 / 64,
//     otherwise every vertical_slash head differs (v < 30 or s < 50 are also raised).
//   - a_shape(sink, local) is stream_llm(sink, local): the same set.
// vLLM <= 0.10.2 / SGLang <= 0.5.19 dual-chunk attention (sparse_attention_config.json):
//   - only vertical_and_slash heads run (the backend asserts it): a_shape and block_sparse heads
//     are impossible, and cannot be written even with --force.
//   - vertical_slash with v = 30 runs with v = 130 (the backend adds 100); first 30 columns and
//     nearest 100 diagonals forced, no clamp of v or s; last_q comes from the config block that
//     export prints (sparse_attention_last_q), so it always matches the profile.
//   - dense: as for MInference, vertical_and_slash(N, N), dense up to N only.
//   - the whole profile: sparse only above sparse_attention_threshold (32768) tokens, so a profile
//     calibrated at N <= 32768 runs dense at its own length; and only for the model types whose
//     attention takes the config (vLLM: qwen2, qwen2_moe, qwen3, qwen3_moe; SGLang: glm4, qwen2,
//     qwen2_moe, qwen3_moe): any other model runs no sparse attention at all. A prompt at or below
//     the threshold runs every head dense (a dense head then runs exactly).
// headcal (its own kernels): every head exactly as the profile says.
#include <cstdint>
#include <string>
#include <vector>

#include "io/calibration/profile.h"

namespace hc {

// "headcal", "MInference", "vLLM/SGLang dual-chunk attention".
const char* target_runtime_name(Target target);

// Runtime constants the checks use (from the consumers' code).
constexpr int32_t kMInferenceBlockTopK = 100;  // block_sparse: blocks kept per row block
constexpr int32_t kMInferenceMinVertical = 30;  // v raised to at least this
constexpr int32_t kMInferenceMinSlash = 50;     // s raised to at least this
constexpr int32_t kRuntimeForcedColumns = 30;   // first columns always kept (both runtimes)
constexpr int32_t kRuntimeForcedDiagonals = 100;  // nearest diagonals always kept (both runtimes)
constexpr int32_t kRuntimeLastQ = 64;           // MInference's estimate (dual-chunk: configurable)
constexpr int32_t kDualChunkBumpedVertical = 30;  // a v of exactly 30 ...
constexpr int32_t kDualChunkBumpedTo = 130;       // ... runs as 130
constexpr int64_t kDualChunkSparseThreshold = 32768;  // sparse only above this many tokens

// Model types whose attention takes dual_chunk_attention_config, per engine.
const std::vector<std::string>& dual_chunk_vllm_model_types();
const std::vector<std::string>& dual_chunk_sglang_model_types();

// What `target` computes for one head.
struct RuntimeHead {
  bool runs = true;          // false: the runtime cannot load the head (dual-chunk: not vertical_slash)
  GridCandidate config;      // what it computes, in headcal's terms (meaningful when runs)
  PatternDefaults defaults;  // the forced columns / diagonals and estimate it computes with
  std::string kind;          // short name of the kind of change; empty: exactly the profile's head
  std::string runtime;       // what runs instead, in words ("block_sparse(k=100): ..."); empty when exact
  bool exact() const { return runs && kind.empty(); }
};

// The estimator defaults `target` runs vertical_slash heads with: headcal the profile's;
// MInference v_sink 30, s_local 100, last_q 64; dual-chunk 30 / 100 and the profile's last_q (export
// prints it as sparse_attention_last_q). The block stays the profile's.
PatternDefaults runtime_defaults(Target target, const PatternDefaults& defaults);

// What `target` runs for a head `head` of a profile with `defaults`, calibrated at `n_tokens` (a
// dense head is written as vertical_and_slash(n_tokens, n_tokens)), on a prompt of `run_tokens`
// tokens (dual-chunk runs every head dense up to kDualChunkSparseThreshold; <= 0: n_tokens). The
// mapped config may be no valid headcal candidate under the runtime's defaults (v or s below what
// the runtime forces): candidate_problem(config, defaults) says so.
RuntimeHead runtime_head(Target target, const GridCandidate& head, const PatternDefaults& defaults,
                         int64_t n_tokens, int64_t run_tokens = 0);

// Why `target` runs no sparse attention at all for a model of type `arch` on prompts of
// `run_tokens` tokens (dual-chunk: a model type without the backend, or a prompt at or below the
// sparse threshold); empty when it runs the profile's heads.
std::string target_runs_dense(Target target, const std::string& arch, int64_t run_tokens);

struct ExportChange {
  int64_t layer = -1;  // -1: the whole profile (every head)
  int64_t head = -1;
  std::string kind;      // short name of the kind of change, groups the table
  std::string headcal;   // what the profile means ("block_sparse(k=8)")
  std::string runtime;   // what the runtime runs instead
  bool impossible = false;  // the runtime cannot load it at all: --force cannot write it
};

// Every change, per-head ones in (layer, head) order after the profile-wide ones. Per head: what
// runtime_head() runs on prompts long enough to be sparse; the dual-chunk threshold at the
// calibration length is one profile-wide change. Target::headcal: none.
std::vector<ExportChange> export_changes(const Profile& profile, Target target);

// "L0H1, L3H2, ... (12 heads)": the first `shown` heads of `changes` that name one.
std::string change_head_list(const std::vector<ExportChange>& changes, size_t shown = 6);

// The profile as `target` runs it on prompts of `run_tokens` tokens: every head replaced by
// runtime_head()'s config (dense heads at the profile's calibration length), the runtime's
// defaults; recall, density and out_err stay the profile's (measured for the calibrated heads).
// InputError(source, ...) naming the heads the runtime cannot run, and the heads it runs as a set
// headcal's kernels do not compute (fewer columns or diagonals than it forces). `changes` (when
// given) gets one row per head that differs, in the table's format (no profile-wide rows).
Profile profile_as_run(const Profile& profile, Target target, int64_t run_tokens, const std::string& source,
                       std::vector<ExportChange>* changes = nullptr);

// The changes as a table, grouped by kind: a count line per kind, then its rows (layer, head,
// headcal pattern, what runs instead). When there are more than `full_rows` rows in all, each
// kind shows only its first `rows_per_kind` rows and how many more there are.
std::string format_export_changes(const std::vector<ExportChange>& changes, Target target,
                                  size_t full_rows = 40, size_t rows_per_kind = 5);

}  // namespace hc

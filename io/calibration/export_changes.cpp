#include "io/calibration/export_changes.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <map>
#include <sstream>

#include "common/error.h"

namespace hc {

const char* target_runtime_name(Target target) {
  switch (target) {
    case Target::headcal: return "headcal";
    case Target::minference: return "MInference";
    case Target::dual_chunk: return "vLLM/SGLang dual-chunk attention";
  }
  return "unknown";
}

const std::vector<std::string>& dual_chunk_vllm_model_types() {
  static const std::vector<std::string> types = {"qwen2", "qwen2_moe", "qwen3", "qwen3_moe"};
  return types;
}

const std::vector<std::string>& dual_chunk_sglang_model_types() {
  static const std::vector<std::string> types = {"glm4", "qwen2", "qwen2_moe", "qwen3_moe"};
  return types;
}

namespace {

bool contains(const std::vector<std::string>& list, const std::string& s) {
  return std::find(list.begin(), list.end(), s) != list.end();
}

std::string join(const std::vector<std::string>& list) {
  std::string out;
  for (const std::string& s : list) out += (out.empty() ? "" : ", ") + s;
  return out;
}

std::string vs(int64_t v, int64_t s) {
  return "vertical_and_slash(" + std::to_string(v) + ", " + std::to_string(s) + ")";
}

int32_t clamp32(int64_t x) { return static_cast<int32_t>(std::min<int64_t>(x, std::numeric_limits<int32_t>::max())); }

bool dual_chunk_model_type(const std::string& arch) {
  return contains(dual_chunk_vllm_model_types(), arch) || contains(dual_chunk_sglang_model_types(), arch);
}

std::string head_name(int64_t layer, int64_t head) {
  return "L" + std::to_string(layer) + "H" + std::to_string(head);
}

}  // namespace

PatternDefaults runtime_defaults(Target target, const PatternDefaults& defaults) {
  PatternDefaults r = defaults;
  if (target == Target::headcal) return r;
  r.v_sink = kRuntimeForcedColumns;
  r.s_local = kRuntimeForcedDiagonals;
  if (target == Target::minference) r.last_q = kRuntimeLastQ;
  return r;
}

RuntimeHead runtime_head(Target target, const GridCandidate& head, const PatternDefaults& defaults, int64_t n,
                         int64_t run_tokens) {
  if (run_tokens <= 0) run_tokens = n;
  RuntimeHead r;
  r.config = head;
  r.defaults = runtime_defaults(target, defaults);
  if (target == Target::headcal) return r;
  const bool dual = target == Target::dual_chunk;
  const bool dense_run = dual && run_tokens <= kDualChunkSparseThreshold;
  auto change = [&](GridCandidate to, const char* kind, std::string runtime) {
    r.config = to;
    r.kind = kind;
    r.runtime = std::move(runtime);
  };
  const int64_t v = head.p1, s = head.p2;
  switch (head.pattern) {
    case Pattern::dense:
      if (dense_run) return r;  // below the threshold the backend runs dense attention itself
      change({Pattern::vertical_slash, clamp32(n), clamp32(n)}, "dense written as vertical_and_slash(N, N)",
             vs(n, n) + ": dense up to " + std::to_string(n) + " tokens only");
      return r;
    case Pattern::a_shape:
      if (!dual) return r;  // MInference: stream_llm(sink, local) is the same set
      r.runs = false;
      change(head, "not vertical_slash (impossible)", "nothing: the backend accepts only vertical_and_slash heads");
      return r;
    case Pattern::block_sparse:
      if (dual) {
        r.runs = false;
        change(head, "not vertical_slash (impossible)", "nothing: the backend accepts only vertical_and_slash heads");
      } else if (v != kMInferenceBlockTopK) {
        change({Pattern::block_sparse, kMInferenceBlockTopK, 0}, "block_sparse k != 100",
               "block_sparse(k=100): MInference ignores k and keeps 100 blocks per row block");
      }
      return r;
    case Pattern::vertical_slash:
      break;
  }
  if (!dual && (v < kMInferenceMinVertical || s < kMInferenceMinSlash)) {
    const int64_t v2 = std::max<int64_t>(v, kMInferenceMinVertical), s2 = std::max<int64_t>(s, kMInferenceMinSlash);
    change({Pattern::vertical_slash, clamp32(v2), clamp32(s2)}, "v < 30 or s < 50 raised",
           vs(v2, s2) + " (v raised to >= 30, s to >= 50)");
  } else if (dual && v == kDualChunkBumpedVertical) {
    change({Pattern::vertical_slash, kDualChunkBumpedTo, head.p2}, "v = 30 runs as 130",
           vs(kDualChunkBumpedTo, s) + ": the backend adds 100 to a v of 30");
  } else if (defaults.v_sink != r.defaults.v_sink || defaults.s_local != r.defaults.s_local ||
             defaults.last_q != r.defaults.last_q) {
    change(head, "forced columns / diagonals / estimate differ",
           vs(v, s) + " forcing the first " + std::to_string(kRuntimeForcedColumns) + " columns and nearest " +
               std::to_string(kRuntimeForcedDiagonals) + " diagonals, estimated from the last " +
               std::to_string(r.defaults.last_q) + " queries (profile: v_sink " + std::to_string(defaults.v_sink) +
               ", s_local " + std::to_string(defaults.s_local) + ", last_q " + std::to_string(defaults.last_q) + ")");
  }
  if (dense_run)
    change(GridCandidate{}, "prompt at or below the sparse threshold",
           "dense: sparse only above sparse_attention_threshold = " + std::to_string(kDualChunkSparseThreshold) +
               " tokens (prompt: " + std::to_string(run_tokens) + ")");
  return r;
}

std::string target_runs_dense(Target target, const std::string& arch, int64_t run_tokens) {
  if (target != Target::dual_chunk) return "";
  if (!dual_chunk_model_type(arch))
    return "model type '" + arch + "' has no dual-chunk attention: only " + join(dual_chunk_vllm_model_types()) +
           " (vLLM) and " + join(dual_chunk_sglang_model_types()) +
           " (SGLang) read sparse_attention_config.json, any other runs every head dense";
  if (run_tokens <= kDualChunkSparseThreshold)
    return std::to_string(run_tokens) + " tokens is at or below dual-chunk attention's sparse threshold of " +
           std::to_string(kDualChunkSparseThreshold) + " tokens, where it runs every head dense";
  return "";
}

std::vector<ExportChange> export_changes(const Profile& p, Target target) {
  validate_profile(p, "profile");
  std::vector<ExportChange> out;
  if (target == Target::headcal) return out;
  const int64_t n = p.calibration.tokens;

  if (target == Target::dual_chunk) {
    if (!dual_chunk_model_type(p.model.arch))
      out.push_back({-1, -1, "model type without the dual-chunk backend", "sparse heads (" + p.model.arch + ")",
                     "dense: only " + join(dual_chunk_vllm_model_types()) + " (vLLM) and " +
                         join(dual_chunk_sglang_model_types()) + " (SGLang) read sparse_attention_config.json",
                     false});
    if (n <= kDualChunkSparseThreshold)
      out.push_back({-1, -1, "calibration length at or below the sparse threshold",
                     "sparse heads at N = " + std::to_string(n),
                     "dense: sparse only above sparse_attention_threshold = " +
                         std::to_string(kDualChunkSparseThreshold) + " tokens",
                     false});
  }
  // Per head, what runs on a prompt long enough to be sparse; the threshold is the row above.
  const int64_t sparse_run = std::max<int64_t>(n, kDualChunkSparseThreshold + 1);
  for (const ProfileHead& h : p.heads) {
    const RuntimeHead r = runtime_head(target, h.candidate(), p.defaults, n, sparse_run);
    if (!r.exact())
      out.push_back({h.layer, h.head, r.kind, describe_candidate(h.candidate()), r.runtime, !r.runs});
  }
  return out;
}

std::string change_head_list(const std::vector<ExportChange>& changes, size_t shown) {
  std::string out;
  size_t heads = 0;
  for (const ExportChange& c : changes) {
    if (c.layer < 0) continue;
    if (heads < shown) out += (out.empty() ? "" : ", ") + head_name(c.layer, c.head);
    ++heads;
  }
  if (heads > shown) out += ", ... (" + std::to_string(heads) + " heads)";
  return out;
}

Profile profile_as_run(const Profile& profile, Target target, int64_t run_tokens, const std::string& source,
                       std::vector<ExportChange>* changes) {
  validate_profile(profile, source);
  Profile out = profile;
  out.defaults = runtime_defaults(target, profile.defaults);
  std::vector<ExportChange> changed, impossible, unreproducible;
  std::string first_problem;
  for (ProfileHead& h : out.heads) {
    const RuntimeHead r = runtime_head(target, h.candidate(), profile.defaults, profile.calibration.tokens, run_tokens);
    if (r.exact()) continue;
    const ExportChange row{h.layer, h.head, r.kind, describe_candidate(h.candidate()), r.runtime, !r.runs};
    if (!r.runs) {
      impossible.push_back(row);
      continue;
    }
    const std::string problem = candidate_problem(r.config, out.defaults);
    if (!problem.empty()) {
      if (first_problem.empty()) first_problem = head_name(h.layer, h.head) + " runs " + r.runtime + ": " + problem;
      unreproducible.push_back(row);
      continue;
    }
    h.pattern = r.config.pattern;
    h.p1 = r.config.p1;
    h.p2 = r.config.p2;
    changed.push_back(row);
  }
  const std::string runtime = target_runtime_name(target);
  if (!impossible.empty())
    throw InputError(source, std::to_string(impossible.size()) + " head(s) cannot run in " + runtime + " (" +
                                 impossible.front().runtime + "): " + change_head_list(impossible) +
                                 "; search with --target " + target_name(target) + " for this runtime");
  if (!unreproducible.empty())
    throw InputError(source, std::to_string(unreproducible.size()) + " head(s) run in " + runtime +
                                 " as a set headcal's kernels do not compute (fewer columns or diagonals than it "
                                 "forces): " +
                                 change_head_list(unreproducible) + "; " + first_problem);
  if (changes) *changes = std::move(changed);
  validate_profile(out, source);
  return out;
}

std::string format_export_changes(const std::vector<ExportChange>& changes, Target target,
                                  size_t full_rows, size_t rows_per_kind) {
  // Kinds in order of first appearance.
  std::vector<std::string> kinds;
  std::map<std::string, std::vector<const ExportChange*>> by_kind;
  for (const ExportChange& c : changes) {
    if (!by_kind.count(c.kind)) kinds.push_back(c.kind);
    by_kind[c.kind].push_back(&c);
  }
  const bool summarise = changes.size() > full_rows;
  size_t w_head = 8;
  for (const ExportChange& c : changes) w_head = std::max(w_head, c.headcal.size());
  std::ostringstream s;
  for (const std::string& kind : kinds) {
    const auto& rows = by_kind[kind];
    const bool whole = rows.front()->layer < 0;
    s << "  " << kind << ": " << (whole ? std::string("the whole profile") : std::to_string(rows.size()) + " head(s)")
      << "\n";
    char line[64];
    std::snprintf(line, sizeof line, "    %-6s %-5s ", "layer", "head");
    s << line << std::string("headcal") << std::string(w_head - 7, ' ') << "  " << target_runtime_name(target)
      << " runs\n";
    const size_t shown = summarise ? std::min(rows.size(), rows_per_kind) : rows.size();
    for (size_t i = 0; i < shown; ++i) {
      const ExportChange& c = *rows[i];
      if (c.layer < 0)
        std::snprintf(line, sizeof line, "    %-6s %-5s ", "all", "all");
      else
        std::snprintf(line, sizeof line, "    %-6lld %-5lld ", static_cast<long long>(c.layer),
                      static_cast<long long>(c.head));
      s << line << c.headcal << std::string(w_head - c.headcal.size(), ' ') << "  " << c.runtime << "\n";
    }
    if (shown < rows.size()) s << "    ... and " << rows.size() - shown << " more\n";
  }
  return s.str();
}

}  // namespace hc

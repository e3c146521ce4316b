#include "io/export_changes.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

namespace hc {

const char* export_target_name(ExportTarget target) {
  return target == ExportTarget::minference ? "MInference" : "vLLM/SGLang dual-chunk attention";
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

// The exported stand-in for a dense head: every column and diagonal up to the calibration length.
ExportChange dense_change(const ProfileHead& h, int64_t n) {
  return {h.layer, h.head, "dense written as vertical_and_slash(N, N)", "dense",
          vs(n, n) + ": dense up to " + std::to_string(n) + " tokens only", false};
}

// Forced sets and estimate of a vertical_slash head against the runtime's (both runtimes force
// the first 30 columns and nearest 100 diagonals; `last_q` is the runtime's estimate length).
void forced_set_changes(const Profile& p, const ProfileHead& h, int64_t last_q, bool clamps,
                        std::vector<ExportChange>* out) {
  const std::string mine = describe_candidate(h.candidate());
  int64_t v = h.p1, s = h.p2;
  if (clamps && (v < kMInferenceMinVertical || s < kMInferenceMinSlash)) {
    out->push_back({h.layer, h.head, "v < 30 or s < 50 raised", mine,
                    vs(std::max<int64_t>(v, kMInferenceMinVertical), std::max<int64_t>(s, kMInferenceMinSlash)) +
                        " (v raised to >= 30, s to >= 50)",
                    false});
    return;
  }
  const PatternDefaults& d = p.defaults;
  if (d.v_sink != kRuntimeForcedColumns || d.s_local != kRuntimeForcedDiagonals || d.last_q != last_q) {
    out->push_back({h.layer, h.head, "forced columns / diagonals / estimate differ", mine,
                    vs(v, s) + " forcing the first " + std::to_string(kRuntimeForcedColumns) + " columns and nearest " +
                        std::to_string(kRuntimeForcedDiagonals) + " diagonals, estimated from the last " +
                        std::to_string(last_q) + " queries (profile: v_sink " + std::to_string(d.v_sink) +
                        ", s_local " + std::to_string(d.s_local) + ", last_q " + std::to_string(d.last_q) + ")",
                    false});
  }
}

}  // namespace

std::vector<ExportChange> export_changes(const Profile& p, ExportTarget target) {
  validate_profile(p, "profile");
  std::vector<ExportChange> out;
  const int64_t n = p.calibration.tokens;

  if (target == ExportTarget::dual_chunk) {
    const std::string& arch = p.model.arch;
    const bool vllm = contains(dual_chunk_vllm_model_types(), arch);
    const bool sglang = contains(dual_chunk_sglang_model_types(), arch);
    if (!vllm && !sglang)
      out.push_back({-1, -1, "model type without the dual-chunk backend", "sparse heads (" + arch + ")",
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

  for (const ProfileHead& h : p.heads) {
    const std::string mine = describe_candidate(h.candidate());
    switch (h.pattern) {
      case PatternKind::dense:
        out.push_back(dense_change(h, n));
        break;
      case PatternKind::a_shape:
        if (target == ExportTarget::dual_chunk)
          out.push_back({h.layer, h.head, "not vertical_slash (impossible)", mine,
                         "nothing: the backend accepts only vertical_and_slash heads", true});
        break;  // MInference: stream_llm(sink, local) is the same set
      case PatternKind::block_sparse:
        if (target == ExportTarget::dual_chunk)
          out.push_back({h.layer, h.head, "not vertical_slash (impossible)", mine,
                         "nothing: the backend accepts only vertical_and_slash heads", true});
        else if (h.p1 != kMInferenceBlockTopK)
          out.push_back({h.layer, h.head, "block_sparse k != 100", mine,
                         "block_sparse(k=100): MInference ignores k and keeps 100 blocks per row block", false});
        break;
      case PatternKind::vertical_slash:
        if (target == ExportTarget::minference) {
          forced_set_changes(p, h, kRuntimeLastQ, true, &out);
        } else if (h.p1 == kDualChunkBumpedVertical) {
          out.push_back({h.layer, h.head, "v = 30 runs as 130", mine,
                         vs(kDualChunkBumpedTo, h.p2) + ": the backend adds 100 to a v of 30", false});
        } else {
          forced_set_changes(p, h, p.defaults.last_q, false, &out);
        }
        break;
    }
  }
  return out;
}

std::string format_export_changes(const std::vector<ExportChange>& changes, ExportTarget target,
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
    s << line << std::string("headcal") << std::string(w_head - 7, ' ') << "  " << export_target_name(target)
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

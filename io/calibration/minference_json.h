#pragma once
// MInference's per-head pattern config (JSON), as MInference and vLLM's dual-chunk attention
// backend read it: a list with one object per layer; each object maps the head index, as a
// string, to [type, p1, p2, score]:
//
//   [{"0": ["vertical_and_slash", 1000, 6096, 0.98], "1": ["stream_llm", 64, 1024, 0.95], ...}, ...]
//
// What the numbers mean on their side (read from MInference's minference_forward.py,
// ops/streaming_kernel.py, ops/block_sparse_flash_attention.py, and vLLM's
// attention/backends/dual_chunk_flash_attn.py), and how headcal maps them:
//
//   MInference                               headcal
//   ["vertical_and_slash", v, s, score]   <-> vertical_slash(v, s)
//       MInference keeps the top-max(v,30) columns (the first 30 forced) and the top-max(s,50)
//       diagonals, the nearest 100 forced. That is headcal's v_sink = 30, s_local = 100 when
//       s >= 100; an imported s < 100 becomes s = s_local (a superset of what MInference
//       computes: its top-s then picks s of the 100 forced diagonals), v < v_sink becomes v_sink.
//       vLLM's dual-chunk backend turns v == 30 into 130 (a hard-coded bump).
//   ["stream_llm", n_init, n_local, score] <-> a_shape(sink = n_init, local = n_local)
//       MInference's streaming kernel keeps keys j < n_init and the window 0 <= i - j < n_local:
//       exactly a_shape's C(i).
//   ["block_sparse", p1, p2, score]       <-> block_sparse(k)
//       MInference ignores p1 and p2: its kernel always keeps the top 100 64-key blocks per
//       64-row block. headcal exports ["block_sparse", k, 64, recall]; import reads k back when
//       p2 == 64 and p1 >= 2 (a headcal export), otherwise k = 100 (what MInference runs).
//       MInference does not force block 0 and the diagonal as headcal does: equal when k covers
//       them anyway, otherwise headcal computes slightly more.
//   (no dense type)                        <-  dense
//       exported as ["vertical_and_slash", N, N, 1.0] with N = the calibration length: every
//       column and every diagonal, i.e. dense up to that length. Import maps a vertical_and_slash
//       with v >= N and s >= N back to dense (N = the reference length given to import).
//
// score: MInference's search writes its own score there and nothing reads it; headcal exports
// the head's recall. Imported heads carry recall = density = out_err = 0 ("not measured";
// `headcal validate` measures them), except dense heads (recall 1, density 1, out_err 0).
//
// Which exported heads a runtime would run differently, and how, is io/calibration/export_changes.h: export
// returns that list with the file, and `headcal export` refuses to write a file with changes
// unless forced. vLLM's dual-chunk backend (the same JSON as sparse_attention_config.json)
// asserts every head is vertical_and_slash: for that target, export throws InputError naming an
// a_shape or block_sparse head, since neither can be expressed as vertical_and_slash without
// changing what is computed.
#include <cstdint>
#include <string>
#include <vector>

#include "io/calibration/export_changes.h"
#include "io/calibration/profile.h"

namespace hc {

struct MInferenceExportOptions {
  Target target = Target::minference;
};

struct MInferenceExport {
  std::string json;                   // one layer object per line
  std::vector<ExportChange> changes;  // what the target runs differently (export_changes)
};

MInferenceExport export_minference(const Profile& profile, const MInferenceExportOptions& options = {});

struct MInferenceImportOptions {
  ProfileModel model;      // the model the config is for (from --model or --atlas)
  int64_t tokens = 0;      // reference length N: dense detection, calibration.tokens
  PatternDefaults defaults;
  std::string prompt;      // calibration.prompt text for the profile ("imported from ...")
  std::string tool_version;
};

struct MInferenceImport {
  Profile profile;
  std::vector<std::string> notes;
};

// Throws InputError(source, ...) for malformed JSON, a layer count other than the model's, a
// head index outside the model or missing, an unknown type, non-integer or negative parameters.
MInferenceImport import_minference(const std::string& json_text, const std::string& source,
                                   const MInferenceImportOptions& options);

}  // namespace hc

#pragma once
// The atlas: everything `record` measured, in one HDF5 file that search and report work from
// without the model or a GPU. One atlas holds one or several prompts (a prompt set), each with its
// own statistics and candidate table, measured on the same model, grid and layers. Layout
// (docs/DESIGN.md "Files"); readable from h5py with no headcal code:
//
//   /                       attributes format = "headcal-atlas", version = 2
//   /meta                   group; one attribute per AtlasMeta field (strings, int64); tokens is the
//                           longest prompt's N, prompt_sha256 / prompt_description describe the set
//   /recorded_layers        int32 [L_rec]          the layers present, ascending (--layers a-b)
//   /prompt_PP              group per prompt (PP = 00, 01, ...), attributes name, description,
//                           sha256, weight (float64), tokens (N_p), map_size (M_p = min(map, N_p))
//     tokens                int32 [N_p]            the prompt's token ids
//     layer_XX              group (XX = layer index, two digits at least), attribute layer
//       colmass             float32 [H, N_p]       sum_i P[i][j] per key j
//       diagmass            float32 [H, N_p]       sum_i P[i][i-o] per offset o = i - j
//       map                 float32 [H, M_p, M_p]  pooled attention map (mean of P over cells)
//                                                  (these three only where meta statistics = 1)
//       candidates          compound [R]           one row per (head, candidate):
//                             head int32, pattern enum(int32){dense=0, a_shape=1,
//                             vertical_slash=2, block_sparse=3}, p1 int32, p2 int32,
//                             cost float64 (FLOPs: pairs computed x 4d + estimator FLOPs),
//                             density float64 (cost / dense cost), recall float64,
//                             out_err float64 (||O_sparse - O_dense||_F / ||O_dense||_F)
//
// Version 1 files (one prompt: /tokens and /layer_XX at the root, meta.map_size its M) are read as
// an atlas of one prompt.
//
// The recorder writes one `dense` row per head (cost = dense cost, density 1, recall 1,
// out_err 0); search needs it for the dense cost and falls back on cost / density otherwise.
//
// Writing streams prompt by prompt and layer by layer (a run never holds two layers); the file is
// built under a temporary name in the destination folder and renamed by finalize(), so an
// interrupted run leaves no atlas behind. Reading loads meta, every prompt's tokens and candidate
// tables at open (small); colmass / diagmass / map are read per prompt and layer on request.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/calibration/grid.h"

namespace hc {

constexpr const char* kAtlasFormat = "headcal-atlas";
constexpr int64_t kAtlasVersion = 2;

struct AtlasMeta {
  std::string model_fingerprint;  // ModelFile::fingerprint()
  std::string model_name;
  std::string model_file;  // the model's path as given to record ("" in atlases that predate it)
  std::string arch;
  int64_t layers = 0;    // layers of the model (recorded ones may be fewer)
  int64_t heads = 0;     // query heads H
  int64_t kv_heads = 0;
  int64_t head_dim = 0;
  int64_t tokens = 0;    // N
  std::string prompt_sha256;       // sha256 of the token ids (int32 little-endian)
  std::string prompt_description;  // file name or generator spec, for people
  std::string tool_version;        // HEADCAL_VERSION of the writer
  int64_t block_size = 64;
  int64_t last_q = 64;
  int64_t v_sink = 30;
  int64_t s_local = 100;
  int64_t map_size = 128;  // M
  // 1: every layer holds colmass, diagmass and map; 0: recorded without them (record
  // --no-statistics), the candidate tables only. Atlases without the attribute have them.
  int64_t statistics = 1;

  PatternDefaults defaults() const { return {block_size, last_q, v_sink, s_local}; }
};

struct CandidateRow {
  int32_t head = 0;
  Pattern pattern = Pattern::dense;
  int32_t p1 = 0;
  int32_t p2 = 0;
  double cost = 0;
  double density = 0;
  double recall = 0;
  double out_err = 0;

  GridCandidate candidate() const { return {pattern, p1, p2}; }
};

// One layer's statistics for one prompt. The vectors are either empty (not loaded, or not
// recorded) or exactly their shape (N and M of that prompt).
struct AtlasLayer {
  int64_t layer = 0;
  std::vector<float> colmass;   // [H, N]
  std::vector<float> diagmass;  // [H, N]
  std::vector<float> map;       // [H, M, M]
  std::vector<CandidateRow> candidates;
};

// One prompt of the atlas: what it is, its weight in search, its token ids.
struct AtlasPrompt {
  std::string name;         // unique in the atlas ("prompt" for a single --prompt/--generate run)
  std::string description;  // file name or generator spec, for people
  std::string sha256;       // of the token ids (int32 little-endian)
  double weight = 1;        // > 0
  int64_t map_size = 0;     // M of this prompt (min(meta.map_size, N)); 0: the writer fills it in
  std::vector<int32_t> tokens;  // [N]
};

class AtlasWriter {
 public:
  // Creates the temporary file next to `path` and writes root attributes, /meta and every prompt's
  // group and tokens. meta.tokens must be the longest prompt's N. Throws InputError on a meta or
  // prompts that do not describe a valid atlas (zero heads, no prompt, repeated names, weight <= 0).
  AtlasWriter(const std::string& path, const AtlasMeta& meta, std::vector<AtlasPrompt> prompts);
  // One prompt, described by meta.prompt_description / prompt_sha256.
  AtlasWriter(const std::string& path, const AtlasMeta& meta, const std::vector<int32_t>& tokens);
  ~AtlasWriter();  // removes the temporary file unless finalize() ran
  AtlasWriter(const AtlasWriter&) = delete;
  AtlasWriter& operator=(const AtlasWriter&) = delete;

  // Appends one layer of prompt `prompt`. Prompts are written in order, each prompt's layers in
  // ascending order, each once, all vectors at their full shapes, candidate heads in [0, H). The
  // data is on disk when this returns.
  void write_layer(const AtlasLayer& layer, size_t prompt = 0);
  // Writes /recorded_layers, closes and renames onto `path`. Every prompt must have the same
  // layers, at least one.
  void finalize();

  const std::string& path() const { return path_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

class Atlas {
 public:
  // Opens and validates: format, version, every meta count, each prompt's attributes, dataset
  // shapes against the meta, candidate rows (head range, known pattern, finite numbers).
  // InputError(path, ...) otherwise.
  static Atlas open(const std::string& path);

  Atlas(Atlas&&) noexcept;
  Atlas& operator=(Atlas&&) noexcept;
  ~Atlas();

  const std::string& path() const { return path_; }
  const AtlasMeta& meta() const { return meta_; }
  int64_t version() const { return version_; }
  size_t prompt_count() const { return prompts_.size(); }
  const AtlasPrompt& prompt(size_t p) const { return prompts_.at(p); }
  const std::vector<int32_t>& tokens() const { return prompts_.front().tokens; }  // the first prompt's [N]
  const std::vector<int64_t>& recorded_layers() const { return layers_; }    // ascending
  bool has_layer(int64_t layer) const;
  // Candidate rows of a recorded layer for one prompt (loaded at open). InputError for a layer not
  // recorded.
  const std::vector<CandidateRow>& candidates(int64_t layer, size_t prompt = 0) const;
  // Reads colmass, diagmass and map of one layer of one prompt (and a copy of its candidates);
  // the three stay empty in an atlas recorded without statistics (meta().statistics == 0).
  AtlasLayer read_layer(int64_t layer, size_t prompt = 0) const;

 private:
  Atlas() = default;
  std::string path_;
  int64_t version_ = 0;
  AtlasMeta meta_;
  std::vector<AtlasPrompt> prompts_;
  std::vector<int64_t> layers_;
  std::vector<std::vector<std::vector<CandidateRow>>> candidates_;  // [prompt][layer index]
};

// Bytes of the statistics (colmass, diagmass, map) an atlas holds for `layers` recorded layers of
// `heads` heads over prompts of these lengths, at `map_size` cells per side requested:
// 8 N + 4 M^2 per head, layer and prompt (M = min(map_size, N)).
int64_t atlas_statistics_bytes(int64_t layers, int64_t heads, const std::vector<int64_t>& prompt_tokens,
                               int64_t map_size);

// "layer_07"
std::string atlas_layer_group(int64_t layer);
// "prompt_03"
std::string atlas_prompt_group(size_t prompt);

}  // namespace hc

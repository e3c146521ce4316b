#pragma once
// The atlas: everything `record` measured, in one HDF5 file that search and report work from
// without the model or a GPU. Layout (DESIGN.md "Files"); readable from h5py with no headcal code:
//
//   /                       attributes format = "headcal-atlas", version = 1
//   /meta                   group; one attribute per AtlasMeta field (strings, int64)
//   /tokens                 int32 [N]              the calibration prompt's token ids
//   /recorded_layers        int32 [L_rec]          the layers present, ascending (--layers a-b)
//   /layer_XX               group (XX = layer index, two digits at least), attribute layer
//     colmass               float32 [H, N]         sum_i P[i][j] per key j
//     diagmass              float32 [H, N]         sum_i P[i][i-o] per offset o = i - j
//     map                   float32 [H, M, M]      pooled attention map (mean of P over cells)
//     candidates            compound [R]           one row per (head, candidate):
//                             head int32, pattern enum(int32){dense=0, a_shape=1,
//                             vertical_slash=2, block_sparse=3}, p1 int32, p2 int32,
//                             cost float64 (FLOPs: pairs computed x 4d + estimator FLOPs),
//                             density float64 (cost / dense cost), recall float64,
//                             out_err float64 (||O_sparse - O_dense||_F / ||O_dense||_F)
//
// The recorder writes one `dense` row per head (cost = dense cost, density 1, recall 1,
// out_err 0); search needs it for the dense cost and falls back on cost / density otherwise.
//
// Writing streams layer by layer (a 30-layer run never holds two layers); the file is built
// under a temporary name in the destination folder and renamed by finalize(), so an
// interrupted run leaves no atlas behind. Reading loads meta, tokens and every candidate table
// at open (small); colmass / diagmass / map are read per layer on request.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/grid.h"

namespace hc {

constexpr const char* kAtlasFormat = "headcal-atlas";
constexpr int64_t kAtlasVersion = 1;

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

  PatternDefaults defaults() const { return {block_size, last_q, v_sink, s_local}; }
};

struct CandidateRow {
  int32_t head = 0;
  PatternKind pattern = PatternKind::dense;
  int32_t p1 = 0;
  int32_t p2 = 0;
  double cost = 0;
  double density = 0;
  double recall = 0;
  double out_err = 0;

  GridCandidate candidate() const { return {pattern, p1, p2}; }
};

// One layer's statistics. The vectors are either empty (not loaded) or exactly their shape.
struct AtlasLayer {
  int64_t layer = 0;
  std::vector<float> colmass;   // [H, N]
  std::vector<float> diagmass;  // [H, N]
  std::vector<float> map;       // [H, M, M]
  std::vector<CandidateRow> candidates;
};

class AtlasWriter {
 public:
  // Creates the temporary file next to `path` and writes root attributes, /meta and /tokens.
  // Throws InputError on a meta that does not describe a valid atlas (zero heads, N mismatch...).
  AtlasWriter(const std::string& path, const AtlasMeta& meta, const std::vector<int32_t>& tokens);
  ~AtlasWriter();  // removes the temporary file unless finalize() ran
  AtlasWriter(const AtlasWriter&) = delete;
  AtlasWriter& operator=(const AtlasWriter&) = delete;

  // Appends one layer; layers must come in ascending order, each once, all vectors at their
  // full shapes, candidate heads in [0, H). The data is on disk when this returns.
  void write_layer(const AtlasLayer& layer);
  // Writes /recorded_layers, closes and renames onto `path`. At least one layer is required.
  void finalize();

  const std::string& path() const { return path_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_;
};

class Atlas {
 public:
  // Opens and validates: format, version, every meta count, dataset shapes against the meta,
  // candidate rows (head range, known pattern, finite numbers). InputError(path, ...) otherwise.
  static Atlas open(const std::string& path);

  Atlas(Atlas&&) noexcept;
  Atlas& operator=(Atlas&&) noexcept;
  ~Atlas();

  const std::string& path() const { return path_; }
  const AtlasMeta& meta() const { return meta_; }
  int64_t version() const { return version_; }
  const std::vector<int32_t>& tokens() const { return tokens_; }             // [N]
  const std::vector<int64_t>& recorded_layers() const { return layers_; }    // ascending
  bool has_layer(int64_t layer) const;
  // Candidate rows of a recorded layer (loaded at open). InputError for a layer not recorded.
  const std::vector<CandidateRow>& candidates(int64_t layer) const;
  // Reads colmass, diagmass and map of one layer (and a copy of its candidates).
  AtlasLayer read_layer(int64_t layer) const;

 private:
  Atlas() = default;
  std::string path_;
  int64_t version_ = 0;
  AtlasMeta meta_;
  std::vector<int32_t> tokens_;
  std::vector<int64_t> layers_;
  std::vector<std::vector<CandidateRow>> candidates_;  // parallel to layers_
};

// "layer_07"
std::string atlas_layer_group(int64_t layer);

}  // namespace hc

#pragma once
// Candidate grid: the pattern configurations the recorder probes on every head.
// Either the default grid scaled to the prompt length N, or a user grid read from YAML.
//
// Pattern names and parameters (the same in the grid file, the atlas and the profile):
//   pattern          p1                 p2                 valid when
//   dense            0                  0                  (always)
//   a_shape          sink               local              sink >= 0, local >= 1
//   vertical_slash   v (columns)        s (offsets)        v >= v_sink, s >= s_local
//   block_sparse     k (key blocks      0                  k >= 2
//                    per row block)
// The forced vertical-slash sink columns and local offsets count toward v and s
// (DESIGN.md), so v < v_sink or s < s_local would describe a set the kernel never computes.
// block_sparse always keeps key block 0 and the diagonal block; both count toward k, so k >= 2.
// The patterns themselves (names, integer values): common/pattern.h.
//
// Grid file (YAML):
//   format: headcal-grid
//   version: 1
//   candidates:
//     - {pattern: a_shape, sink: 64, local: [512, 1024]}      # a list expands to every value
//     - {pattern: vertical_slash, v: [30, 1000], s: [100, 800]}  # cross product: 4 candidates
//     - {pattern: block_sparse, k: [4, 16]}
// A key may also be written as a fraction of N: `local: "0.25N"` (rounded to the nearest
// integer, at least 1), so one grid file fits prompts of every length.
#include <cstdint>
#include <string>
#include <vector>

#include "common/pattern.h"

namespace hc {

// Inverse of pattern_name; false for an unknown name.
bool find_pattern(const std::string& name, Pattern* pattern);

// Estimator settings shared by every head (profile "defaults", atlas meta).
struct PatternDefaults {
  int64_t block = 64;     // row block and key block size B
  int64_t last_q = 64;    // vertical-slash estimate uses the last min(last_q, N) queries
  int64_t v_sink = 30;    // vertical-slash: first v_sink columns always kept
  int64_t s_local = 100;  // vertical-slash: nearest s_local offsets always kept
};

struct GridCandidate {
  Pattern pattern = Pattern::dense;
  int32_t p1 = 0;
  int32_t p2 = 0;
};
inline bool operator==(const GridCandidate& a, const GridCandidate& b) {
  return a.pattern == b.pattern && a.p1 == b.p1 && a.p2 == b.p2;
}
inline bool operator!=(const GridCandidate& a, const GridCandidate& b) { return !(a == b); }
// Orders by pattern, then p1, then p2 (grids are kept sorted and free of duplicates).
bool operator<(const GridCandidate& a, const GridCandidate& b);

// "dense", "a_shape(sink=64, local=512)", "vertical_slash(v=30, s=800)", "block_sparse(k=8)".
std::string describe_candidate(const GridCandidate& c);
// Empty when valid, else what is wrong ("vertical_slash: v = 10 is below v_sink = 30").
std::string candidate_problem(const GridCandidate& c, const PatternDefaults& defaults);

struct Grid {
  std::vector<GridCandidate> candidates;  // sorted, unique; never holds `dense` (always implied)
};

// The default grid for an N-token prompt: per pattern, parameters at fixed fractions of N
// (1/64 .. 1/2), so every length gets candidates from ~2% to ~50% density; from
// kMinferenceGridMinTokens on, also MInference's eight fixed candidates. Details in grid.cpp.
constexpr int64_t kMinferenceGridMinTokens = 4096;
Grid default_grid(int64_t n_tokens, const PatternDefaults& defaults = {});

// Parses grid YAML. Unknown pattern or key, a missing parameter, a value out of range, a wrong
// format name or version: InputError(source, ...). `n_tokens` resolves "xN" fractions.
Grid parse_grid_yaml(const std::string& text, const std::string& source, int64_t n_tokens,
                     const PatternDefaults& defaults = {});
Grid read_grid_file(const std::string& path, int64_t n_tokens, const PatternDefaults& defaults = {});

}  // namespace hc

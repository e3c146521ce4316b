#pragma once
// Synthetic but meaningful atlases for the io/search/cli tests: each head has a "kind" (the
// pattern its attention really follows) and its candidate rows follow a recall-vs-density law
// that favours that pattern, so the right choice under a budget is known.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "io/calibration/atlas.h"
#include "io/calibration/grid.h"

namespace hc::test {

struct SyntheticSpec {
  int64_t layers = 4;
  int64_t heads = 6;
  int64_t kv_heads = 2;
  int64_t head_dim = 64;
  int64_t tokens = 4000;  // not a multiple of 64 on purpose
  int64_t map_size = 16;
  std::vector<int64_t> recorded;  // empty: all layers
  std::string fingerprint = "fp-synthetic";
  std::string name = "synthetic-model";
  std::string arch = "llama";
  std::vector<GridCandidate> extra;  // probed besides the default grid at `tokens`
  bool statistics = true;            // false: as record --no-statistics (candidate tables only)
};

inline AtlasMeta synthetic_meta(const SyntheticSpec& s) {
  AtlasMeta m;
  m.model_fingerprint = s.fingerprint;
  m.model_name = s.name;
  m.arch = s.arch;
  m.layers = s.layers;
  m.heads = s.heads;
  m.kv_heads = s.kv_heads;
  m.head_dim = s.head_dim;
  m.tokens = s.tokens;
  m.prompt_sha256 = "0123abcd";
  m.prompt_description = "synthetic prompt";
  m.tool_version = "test";
  m.map_size = s.map_size;
  m.statistics = s.statistics ? 1 : 0;
  return m;
}

// The pattern head h of layer l "really" follows: cycles a_shape, vertical_slash, block_sparse,
// and one head per layer that no pattern fits (needs dense).
inline Pattern synthetic_kind(int64_t layer, int64_t head) {
  switch ((layer + head) % 4) {
    case 0: return Pattern::a_shape;
    case 1: return Pattern::vertical_slash;
    case 2: return Pattern::block_sparse;
    default: return Pattern::dense;
  }
}

// Density of a candidate: the fraction of causal pairs its parameters suggest.
inline double synthetic_density(const GridCandidate& c, int64_t n) {
  double N = static_cast<double>(n), nb = std::ceil(N / 64.0);
  double d = 1;
  switch (c.pattern) {
    case Pattern::a_shape: d = (c.p1 + c.p2) / N; break;
    case Pattern::vertical_slash: d = (c.p1 + c.p2) / N; break;
    case Pattern::block_sparse: d = c.p1 / nb; break;
    case Pattern::dense: d = 1; break;
  }
  return std::min(1.0, std::max(1e-3, d));
}

// Recall law: the matching pattern reaches high recall at low density (density^0.02: 0.93 at
// 3%), the others only linearly (density^1); a "dense" head is linear in every pattern, so its
// recall gain per FLOP (1) beats any sparse head's (< 0.6 above 3% density).
inline double synthetic_recall(Pattern kind, const GridCandidate& c, double density) {
  if (c.pattern == Pattern::dense) return 1.0;
  double alpha = (c.pattern == kind) ? 0.02 : 1.0;
  return std::pow(density, alpha);
}

inline AtlasLayer synthetic_layer(const AtlasMeta& m, int64_t layer, const Grid& grid) {
  AtlasLayer L;
  L.layer = layer;
  const int64_t H = m.heads, N = m.tokens, M = m.map_size;
  L.colmass.resize(static_cast<size_t>(H * N));   // [H, N]
  L.diagmass.resize(static_cast<size_t>(H * N));  // [H, N]
  L.map.resize(static_cast<size_t>(H * M * M));   // [H, M, M]
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t j = 0; j < N; ++j) {
      L.colmass[h * N + j] = static_cast<float>(j < 4 ? N / 8.0 : 1.0 / (1 + j % 7) + layer);
      L.diagmass[h * N + j] = static_cast<float>(N / (1.0 + j) + h);
    }
    for (int64_t r = 0; r < M; ++r)
      for (int64_t c = 0; c <= r; ++c)
        L.map[(h * M + r) * M + c] = static_cast<float>((c == 0 ? 0.5 : 0.0) + (c == r ? 0.3 : 0.0) + 0.01 * h);
  }
  const double dense_cost = 4.0 * m.head_dim * N * (N + 1) / 2.0;
  for (int64_t h = 0; h < H; ++h) {
    Pattern kind = synthetic_kind(layer, h);
    L.candidates.push_back({static_cast<int32_t>(h), Pattern::dense, 0, 0, dense_cost, 1.0, 1.0, 0.0});
    for (const GridCandidate& c : grid.candidates) {
      double d = synthetic_density(c, N);
      double r = synthetic_recall(kind, c, d);
      L.candidates.push_back({static_cast<int32_t>(h), c.pattern, c.p1, c.p2, d * dense_cost, d, r, 1.0 - r});
    }
  }
  return L;
}

inline void write_synthetic_atlas(const std::string& path, const SyntheticSpec& spec) {
  AtlasMeta meta = synthetic_meta(spec);
  std::vector<int32_t> tokens(static_cast<size_t>(spec.tokens));
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = static_cast<int32_t>((i * 7919) % 49152);
  Grid grid = default_grid(spec.tokens, meta.defaults());
  for (const GridCandidate& c : spec.extra)
    if (std::find(grid.candidates.begin(), grid.candidates.end(), c) == grid.candidates.end())
      grid.candidates.push_back(c);
  AtlasWriter w(path, meta, tokens);
  std::vector<int64_t> layers = spec.recorded;
  if (layers.empty())
    for (int64_t l = 0; l < spec.layers; ++l) layers.push_back(l);
  for (int64_t l : layers) {
    AtlasLayer layer = synthetic_layer(meta, l, grid);
    if (!spec.statistics) layer.colmass = layer.diagmass = layer.map = {};
    w.write_layer(layer);
  }
  w.finalize();
}

}  // namespace hc::test

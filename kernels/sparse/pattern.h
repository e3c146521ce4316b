#pragma once
// A pattern with its parameters, as the kernels take it (the vocabulary: common/pattern.h; the
// index builders in index_ref.h are the executable definition of the semantics).
#include <cstdint>
#include <string>

#include "common/pattern.h"

namespace hc::kernels {

using hc::Pattern;
using hc::pattern_name;

struct PatternConfig {
  Pattern pattern = Pattern::dense;
  int p1 = 0;
  int p2 = 0;
};

inline bool operator==(const PatternConfig& a, const PatternConfig& b) {
  return a.pattern == b.pattern && a.p1 == b.p1 && a.p2 == b.p2;
}
inline bool operator!=(const PatternConfig& a, const PatternConfig& b) { return !(a == b); }

// Settings shared by every vertical-slash estimate (profile "defaults"). The forced sink columns
// and local offsets count toward v and s; they are kept even when v < v_sink or s < s_local.
struct EstimatorSettings {
  int last_q = 64;    // the estimate uses the last min(last_q, N) queries
  int v_sink = 30;    // columns 0 .. v_sink-1 always kept
  int s_local = 100;  // offsets 0 .. s_local-1 always kept
};

// Inverse of pattern_name; throws hc::InputError naming `what` (e.g. a file) on an unknown name.
Pattern parse_pattern(const std::string& name, const std::string& what = "pattern");
// "a_shape(64,512)", "vertical_slash(1000,2000)", "block_sparse(16)", "dense".
std::string describe(const PatternConfig& config);
// Inverse of describe: "a_shape(64,512)", "vertical_slash(1000,2000)", "block_sparse(16)", "dense"
// (spaces allowed around names and numbers). Throws hc::InputError naming `what` on a malformed
// text or an out-of-range parameter (check_config).
PatternConfig parse_config(const std::string& text, const std::string& what = "pattern");
// Throws hc::InputError (prefixed by `what`) when the parameters are out of range:
// a_shape: sink >= 0, local >= 1; vertical_slash: v >= 0, s >= 0; block_sparse: k_blocks >= 1.
void check_config(const PatternConfig& config, const std::string& what = "pattern");

}  // namespace hc::kernels

#include "kernels/sparse/pattern.h"

#include "common/error.h"

namespace hc::kernels {

const char* pattern_name(Pattern pattern) {
  switch (pattern) {
    case Pattern::dense: return "dense";
    case Pattern::a_shape: return "a_shape";
    case Pattern::vertical_slash: return "vertical_slash";
    case Pattern::block_sparse: return "block_sparse";
  }
  return "unknown";
}

Pattern parse_pattern(const std::string& name, const std::string& what) {
  for (Pattern p : {Pattern::dense, Pattern::a_shape, Pattern::vertical_slash, Pattern::block_sparse})
    if (name == pattern_name(p)) return p;
  throw InputError(what, "unknown pattern '" + name +
                             "' (expected dense, a_shape, vertical_slash or block_sparse)");
}

std::string describe(const PatternConfig& config) {
  const std::string name = pattern_name(config.pattern);
  switch (config.pattern) {
    case Pattern::dense: return name;
    case Pattern::block_sparse: return name + "(" + std::to_string(config.p1) + ")";
    default: return name + "(" + std::to_string(config.p1) + "," + std::to_string(config.p2) + ")";
  }
}

void check_config(const PatternConfig& config, const std::string& what) {
  const std::string desc = describe(config);
  switch (config.pattern) {
    case Pattern::dense: return;
    case Pattern::a_shape:
      if (config.p1 < 0) throw InputError(what, desc + ": sink must be >= 0");
      if (config.p2 < 1) throw InputError(what, desc + ": local must be >= 1");
      return;
    case Pattern::vertical_slash:
      if (config.p1 < 0 || config.p2 < 0) throw InputError(what, desc + ": v and s must be >= 0");
      return;
    case Pattern::block_sparse:
      if (config.p1 < 1) throw InputError(what, desc + ": k_blocks must be >= 1");
      return;
  }
  throw InputError(what, "unknown pattern value " + std::to_string(static_cast<int>(config.pattern)));
}

}  // namespace hc::kernels

#pragma once
// Helpers shared by the YAML readers and writers of grid and profile files.

#include <yaml-cpp/yaml.h>

#include <string>

#include "io/calibration/grid.h"

namespace hc {

// The two parameter keys of a pattern in grid and profile files ("" = unused), e.g.
// a_shape -> {"sink", "local"}; dense has none.
struct PatternParamKeys {
  const char* p1;
  const char* p2;
};
PatternParamKeys pattern_param_keys(Pattern kind);

// Parses `text` as YAML; a syntax error becomes an InputError naming `source`.
YAML::Node load_yaml_text(const std::string& text, const std::string& source);

}  // namespace hc

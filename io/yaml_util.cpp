#include "io/yaml_util.h"

#include "common/error.h"

namespace hc {

PatternParamKeys pattern_param_keys(PatternKind kind) {
  switch (kind) {
    case PatternKind::a_shape: return {"sink", "local"};
    case PatternKind::vertical_slash: return {"v", "s"};
    case PatternKind::block_sparse: return {"k", ""};
    case PatternKind::dense: break;
  }
  return {"", ""};
}

YAML::Node load_yaml_text(const std::string& text, const std::string& source) {
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    throw InputError(source, std::string("not valid YAML: ") + e.what());
  }
}

}  // namespace hc

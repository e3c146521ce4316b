#include "io/util/yaml_util.h"

#include <yaml-cpp/eventhandler.h>

#include <set>
#include <sstream>
#include <vector>

#include "common/error.h"

namespace hc {

PatternParamKeys pattern_param_keys(Pattern kind) {
  switch (kind) {
    case Pattern::a_shape: return {"sink", "local"};
    case Pattern::vertical_slash: return {"v", "s"};
    case Pattern::block_sparse: return {"k", ""};
    case Pattern::dense: break;
  }
  return {"", ""};
}

namespace {

// Rejects a key given twice in one mapping (yaml-cpp keeps the first silently). The visit is
// bounded so that aliases nested in aliases cannot make it exponential.
void reject_duplicate_keys(const YAML::Node& node, const std::string& source, size_t& budget, int depth) {
  if (budget == 0 || depth > 256)
    throw InputError(source, "the YAML nests or repeats (aliases) too deeply to be a headcal file");
  --budget;
  if (node.IsSequence()) {
    for (const YAML::Node& item : node) reject_duplicate_keys(item, source, budget, depth + 1);
  } else if (node.IsMap()) {
    std::set<std::string> keys;
    for (const auto& kv : node) {
      if (kv.first.IsScalar() && !keys.insert(kv.first.Scalar()).second)
        throw InputError(source, "line " + std::to_string(kv.first.Mark().line + 1) + ": key '" +
                                     kv.first.Scalar().substr(0, 60) + "' appears twice in the same mapping");
      reject_duplicate_keys(kv.second, source, budget, depth + 1);
    }
  }
}

// Parses without building nodes: only the number of documents is wanted.
class IgnoreEvents : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

}  // namespace

YAML::Node load_yaml_text(const std::string& text, const std::string& source) {
  YAML::Node root;
  int documents = 0;
  try {
    root = YAML::Load(text);
    // Count documents with a parser that stops after two: yaml-cpp's LoadAll can loop forever
    // on some malformed input, returning empty documents without consuming any.
    std::istringstream in(text);
    YAML::Parser parser(in);
    IgnoreEvents ignore;
    while (documents < 2 && parser.HandleNextDocument(ignore)) ++documents;
  } catch (const YAML::Exception& e) {
    throw InputError(source, std::string("not valid YAML: ") + e.what());
  }
  if (documents > 1) throw InputError(source, "holds more than one YAML document; a headcal file is one");
  size_t budget = 10'000'000;
  reject_duplicate_keys(root, source, budget, 0);
  return root;
}

}  // namespace hc

#include "kernels/sparse/pattern.h"

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <vector>

#include "common/error.h"

namespace hc::kernels {

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

namespace {

std::string trimmed(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

}  // namespace

PatternConfig parse_config(const std::string& text, const std::string& what) {
  const std::string t = trimmed(text);
  const std::string expected = " (expected e.g. a_shape(64,512), vertical_slash(1000,2000), block_sparse(16) or dense)";
  auto pattern_named = [&](const std::string& name) { return parse_pattern(name, what + ": '" + text + "'"); };
  PatternConfig config;
  const size_t open = t.find('(');
  if (open == std::string::npos) {
    config.pattern = pattern_named(t);
    if (config.pattern != Pattern::dense) throw InputError(what, "'" + text + "' has no parameters" + expected);
    return config;
  }
  if (t.back() != ')') throw InputError(what, "'" + text + "' does not end with ')'" + expected);
  config.pattern = pattern_named(trimmed(t.substr(0, open)));
  std::vector<int> values;
  const std::string inner = t.substr(open + 1, t.size() - open - 2);
  size_t pos = 0;
  for (;;) {
    const size_t comma = inner.find(',', pos);
    const std::string item = trimmed(inner.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(item.c_str(), &end, 10);
    if (item.empty() || *end != '\0' || errno == ERANGE || v < INT_MIN || v > INT_MAX)
      throw InputError(what, "'" + text + "': '" + item + "' is not an integer" + expected);
    values.push_back(static_cast<int>(v));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  const size_t wanted = config.pattern == Pattern::dense ? 0 : config.pattern == Pattern::block_sparse ? 1 : 2;
  if (values.size() != wanted)
    throw InputError(what, "'" + text + "': " + pattern_name(config.pattern) + " takes " + std::to_string(wanted) +
                               " parameter" + (wanted == 1 ? "" : "s") + ", got " + std::to_string(values.size()));
  config.p1 = values[0];
  if (wanted == 2) config.p2 = values[1];
  check_config(config, what);
  return config;
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

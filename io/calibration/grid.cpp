#include "io/calibration/grid.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <tuple>

#include "common/error.h"
#include "io/util/mapped_file.h"
#include "io/util/yaml_util.h"

namespace hc {

namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace

bool find_pattern(const std::string& name, Pattern* pattern) {
  for (int v = 0; v < kNumPatterns; ++v)
    if (name == pattern_name(static_cast<Pattern>(v))) {
      *pattern = static_cast<Pattern>(v);
      return true;
    }
  return false;
}

bool operator<(const GridCandidate& a, const GridCandidate& b) {
  return std::make_tuple(static_cast<int>(a.pattern), a.p1, a.p2) <
         std::make_tuple(static_cast<int>(b.pattern), b.p1, b.p2);
}

std::string describe_candidate(const GridCandidate& c) {
  std::ostringstream s;
  s << pattern_name(c.pattern);
  PatternParamKeys keys = pattern_param_keys(c.pattern);
  if (*keys.p1) {
    s << "(" << keys.p1 << "=" << c.p1;
    if (*keys.p2) s << ", " << keys.p2 << "=" << c.p2;
    s << ")";
  }
  return s.str();
}

std::string candidate_problem(const GridCandidate& c, const PatternDefaults& d) {
  std::ostringstream s;
  switch (c.pattern) {
    case Pattern::dense:
      if (c.p1 != 0 || c.p2 != 0) s << "dense takes no parameters (got " << c.p1 << ", " << c.p2 << ")";
      break;
    case Pattern::a_shape:
      if (c.p1 < 0) s << "a_shape: sink = " << c.p1 << " must be >= 0";
      else if (c.p2 < 1) s << "a_shape: local = " << c.p2 << " must be >= 1";
      break;
    case Pattern::vertical_slash:
      if (c.p1 < d.v_sink) s << "vertical_slash: v = " << c.p1 << " is below v_sink = " << d.v_sink;
      else if (c.p2 < d.s_local)
        s << "vertical_slash: s = " << c.p2 << " is below s_local = " << d.s_local;
      break;
    case Pattern::block_sparse:
      if (c.p1 < 2) s << "block_sparse: k = " << c.p1 << " must be >= 2 (block 0 and the diagonal count)";
      else if (c.p2 != 0) s << "block_sparse takes one parameter (p2 = " << c.p2 << " must be 0)";
      break;
    default: s << "unknown pattern value " << static_cast<int>(c.pattern);
  }
  return s.str();
}

Grid default_grid(int64_t n_tokens, const PatternDefaults& d) {
  if (n_tokens < 1) throw InputError("default grid", "prompt length must be >= 1, got " + std::to_string(n_tokens));
  // Fractions of N from 1/64 to 1/2: at 8K tokens the a_shape windows run 128..4096 and the
  // vertical-slash offsets 128..4096, which spans the 2%..60% densities where the choice between
  // patterns actually changes (below ~1/64 every pattern loses most of the attention mass on
  // the heads we looked at; above 1/2 the head is as good as dense).
  const int divisors[] = {64, 32, 16, 8, 4, 2};
  const int64_t B = d.block;
  const int64_t nb = ceil_div(n_tokens, B);
  auto frac = [&](int div) { return n_tokens / div; };
  auto round_up_block = [&](int64_t x) { return std::max<int64_t>(B, ceil_div(x, B) * B); };
  auto clamp32 = [](int64_t x) { return static_cast<int32_t>(std::min<int64_t>(x, INT32_MAX)); };

  std::set<GridCandidate> out;
  // a_shape: sinks of one and two blocks (StreamingLLM needs only a few sink tokens, but a
  // whole block costs the kernel the same), windows rounded up to whole blocks.
  for (int64_t sink : {B, 2 * B})
    for (int div : divisors)
      out.insert({Pattern::a_shape, clamp32(sink), clamp32(round_up_block(frac(div)))});
  // vertical_slash: v from the forced sink columns up to N/8 (more columns than that cost as
  // much as a block-sparse head), s from the forced local offsets up to N/2.
  std::vector<int64_t> vs{d.v_sink}, ss{d.s_local};
  for (int div : divisors) {
    if (div >= 8) vs.push_back(std::max<int64_t>(d.v_sink, frac(div)));
    ss.push_back(std::max<int64_t>(d.s_local, frac(div)));
  }
  for (int64_t v : vs)
    for (int64_t s : ss) out.insert({Pattern::vertical_slash, clamp32(v), clamp32(s)});
  // block_sparse: k key blocks out of nb, at least 2 (block 0 and the diagonal).
  out.insert({Pattern::block_sparse, 2, 0});
  for (int div : divisors)
    out.insert({Pattern::block_sparse, clamp32(std::max<int64_t>(2, ceil_div(nb, div))), 0});

  // MInference's searched candidates and the two its config conversion runs instead, so its own
  // search rule can be applied to the same atlas (search/minference_rule.h). Below 4K tokens they
  // are all near dense.
  if (n_tokens >= kMinferenceGridMinTokens) {
    out.insert({Pattern::a_shape, 100, 800});
    for (auto [v, s] : {std::pair<int32_t, int32_t>{30, 800}, {100, 750}, {500, 700}, {3500, 100}, {100, 800},
                        {1000, 6096}})
      out.insert({Pattern::vertical_slash, v, s});
    out.insert({Pattern::block_sparse, 8, 0});
  }

  Grid g;
  g.candidates.assign(out.begin(), out.end());
  return g;
}

namespace {

// One scalar grid value: an integer, or "<fraction>N" resolved against n_tokens.
int32_t parse_grid_value(const YAML::Node& node, const std::string& where, int64_t n_tokens) {
  if (!node.IsScalar()) throw InputError(where, "expected a number or a list of numbers");
  std::string text = node.Scalar();
  if (!text.empty() && (text.back() == 'N' || text.back() == 'n')) {
    std::string num = text.substr(0, text.size() - 1);
    char* end = nullptr;
    errno = 0;
    double f = std::strtod(num.c_str(), &end);
    if (num.empty() || *end != '\0' || errno != 0 || !(f > 0) || f > 1e6)
      throw InputError(where, "'" + text + "' is not a positive fraction of N (e.g. 0.25N)");
    double value = std::max(1.0, std::round(f * static_cast<double>(n_tokens)));
    if (value > INT32_MAX) throw InputError(where, "'" + text + "' is too large");
    return static_cast<int32_t>(value);
  }
  char* end = nullptr;
  errno = 0;
  long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < INT32_MIN || v > INT32_MAX)
    throw InputError(where, "'" + text + "' is not an integer");
  return static_cast<int32_t>(v);
}

std::vector<int32_t> parse_grid_values(const YAML::Node& node, const std::string& where,
                                       int64_t n_tokens) {
  std::vector<int32_t> values;
  if (node.IsSequence()) {
    if (node.size() == 0) throw InputError(where, "empty list");
    for (size_t i = 0; i < node.size(); ++i)
      values.push_back(parse_grid_value(node[i], where + "[" + std::to_string(i) + "]", n_tokens));
  } else {
    values.push_back(parse_grid_value(node, where, n_tokens));
  }
  return values;
}

}  // namespace

namespace {

Grid parse_grid_yaml_impl(const std::string& text, const std::string& source, int64_t n_tokens,
                          const PatternDefaults& defaults) {
  YAML::Node root = load_yaml_text(text, source);
  if (!root.IsMap()) throw InputError(source, "expected a YAML mapping with format, version, candidates");
  if (!root["format"] || !root["format"].IsScalar() || root["format"].Scalar() != "headcal-grid")
    throw InputError(source, "format must be 'headcal-grid'");
  if (!root["version"] || !root["version"].IsScalar() || root["version"].Scalar() != "1")
    throw InputError(source, "unsupported grid version '" +
                                 (root["version"] && root["version"].IsScalar() ? root["version"].Scalar() : std::string("?")) +
                                 "' (this headcal reads version 1)");
  for (auto it = root.begin(); it != root.end(); ++it) {
    std::string key = it->first.as<std::string>();
    if (key != "format" && key != "version" && key != "candidates")
      throw InputError(source, "unknown top-level key '" + key + "'");
  }
  YAML::Node list = root["candidates"];
  if (!list || !list.IsSequence() || list.size() == 0)
    throw InputError(source, "'candidates' must be a non-empty list");

  std::set<GridCandidate> out;
  for (size_t i = 0; i < list.size(); ++i) {
    std::string where = source + ": candidates[" + std::to_string(i) + "]";
    YAML::Node entry = list[i];
    if (!entry.IsMap() || !entry["pattern"] || !entry["pattern"].IsScalar())
      throw InputError(where, "expected a mapping with a 'pattern' key");
    std::string name = entry["pattern"].Scalar();
    Pattern kind;
    if (!find_pattern(name, &kind))
      throw InputError(where, "unknown pattern '" + name +
                                  "' (known: a_shape, vertical_slash, block_sparse)");
    if (kind == Pattern::dense)
      throw InputError(where, "dense is always a candidate; list only sparse patterns");
    PatternParamKeys keys = pattern_param_keys(kind);
    for (auto it = entry.begin(); it != entry.end(); ++it) {
      std::string key = it->first.as<std::string>();
      if (key != "pattern" && key != keys.p1 && (!*keys.p2 || key != keys.p2))
        throw InputError(where, "unknown key '" + key + "' for " + name);
    }
    if (!entry[keys.p1]) throw InputError(where, name + " needs '" + keys.p1 + "'");
    std::vector<int32_t> p1s = parse_grid_values(entry[keys.p1], where + "." + keys.p1, n_tokens);
    std::vector<int32_t> p2s{0};
    if (*keys.p2) {
      if (!entry[keys.p2]) throw InputError(where, name + " needs '" + keys.p2 + "'");
      p2s = parse_grid_values(entry[keys.p2], where + "." + keys.p2, n_tokens);
    }
    for (int32_t p1 : p1s)
      for (int32_t p2 : p2s) {
        GridCandidate c{kind, p1, p2};
        std::string problem = candidate_problem(c, defaults);
        if (!problem.empty()) throw InputError(where, problem);
        out.insert(c);
      }
  }
  Grid g;
  g.candidates.assign(out.begin(), out.end());
  return g;
}

}  // namespace

Grid parse_grid_yaml(const std::string& text, const std::string& source, int64_t n_tokens,
                     const PatternDefaults& defaults) {
  try {
    return parse_grid_yaml_impl(text, source, n_tokens, defaults);
  } catch (const YAML::Exception& e) {
    throw InputError(source, std::string("malformed grid: ") + e.what());
  }
}

Grid read_grid_file(const std::string& path, int64_t n_tokens, const PatternDefaults& defaults) {
  return parse_grid_yaml(read_whole_file(path, "cannot open grid file"), path, n_tokens, defaults);
}

}  // namespace hc

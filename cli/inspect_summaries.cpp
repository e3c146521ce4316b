#include "cli/inspect_summaries.h"

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "io/calibration/atlas.h"
#include "io/calibration/layer_weights.h"
#include "io/calibration/profile.h"
#include "io/util/mapped_file.h"

namespace hc::cli {

namespace {

void line(std::string& out, const char* key, const std::string& value) {
  char label[32];
  std::snprintf(label, sizeof label, "%-17s", (std::string(key) + ":").c_str());
  out += label + value + "\n";
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

// "dense 3, a_shape 10, ..." in the pattern enum's order, patterns absent left out.
std::string pattern_counts(const std::map<Pattern, int64_t>& counts) {
  std::string out;
  for (const auto& [kind, n] : counts) {
    if (!out.empty()) out += ", ";
    out += std::string(pattern_name(kind)) + " " + std::to_string(n);
  }
  return out.empty() ? "none" : out;
}

// "0-29" for a contiguous run, else the list.
std::string layer_list(const std::vector<int64_t>& layers) {
  if (layers.empty()) return "none";
  if (layers.back() - layers.front() + 1 == static_cast<int64_t>(layers.size()))
    return std::to_string(layers.front()) + "-" + std::to_string(layers.back());
  std::string out;
  for (int64_t l : layers) out += (out.empty() ? "" : ",") + std::to_string(l);
  return out;
}

}  // namespace

bool looks_like_hdf5(const std::string& path) {
  static const char kSignature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  std::ifstream in(path, std::ios::binary);
  char head[8] = {};
  return in.read(head, 8) && std::memcmp(head, kSignature, 8) == 0;
}

bool looks_like_yaml(const std::string& path) {
  for (const char* ext : {".yaml", ".yml"}) {
    const size_t n = std::strlen(ext);
    if (path.size() > n && path.compare(path.size() - n, n, ext) == 0) return true;
  }
  return false;
}

std::string describe_atlas(const std::string& path) {
  const Atlas atlas = Atlas::open(path);
  const AtlasMeta& m = atlas.meta();
  std::map<Pattern, int64_t> rows_by_pattern;
  int64_t rows = 0;
  for (int64_t layer : atlas.recorded_layers())
    for (const CandidateRow& r : atlas.candidates(layer)) ++rows_by_pattern[r.pattern], ++rows;
  std::string out;
  line(out, "format", std::string(kAtlasFormat) + " v" + std::to_string(atlas.version()));
  line(out, "model", m.model_name + " (" + m.arch + ")");
  line(out, "fingerprint", m.model_fingerprint);
  line(out, "layers", std::to_string(atlas.recorded_layers().size()) + " recorded of " + std::to_string(m.layers) +
                          " (" + layer_list(atlas.recorded_layers()) + ")");
  line(out, "heads", std::to_string(m.heads) + " (kv heads " + std::to_string(m.kv_heads) + "), head_dim " +
                         std::to_string(m.head_dim));
  line(out, "tokens", std::to_string(m.tokens) + " (" + m.prompt_description + ")");
  line(out, "prompt sha256", m.prompt_sha256);
  line(out, "map size", std::to_string(m.map_size));
  line(out, "candidate rows", std::to_string(rows) + ": " + pattern_counts(rows_by_pattern));
  line(out, "written by", "headcal " + m.tool_version);
  return out;
}

std::string describe_profile(const std::string& path) {
  const Profile p = read_profile(path);
  std::map<Pattern, int64_t> heads_by_pattern;
  for (const ProfileHead& h : p.heads) ++heads_by_pattern[h.pattern];
  const ProfileCalibration& c = p.calibration;
  std::string out;
  line(out, "format", "headcal-profile");
  line(out, "model", p.model.name + " (" + p.model.arch + ")");
  line(out, "fingerprint", p.model.fingerprint.empty() ? "none" : p.model.fingerprint);
  line(out, "shape", std::to_string(p.model.layers) + " layers x " + std::to_string(p.model.heads) + " heads (kv " +
                         std::to_string(p.model.kv_heads) + "), head_dim " + std::to_string(p.model.head_dim));
  line(out, "calibration", std::to_string(c.tokens) + " tokens (" + c.prompt + ")");
  line(out, "budget", c.budget_mode + (c.budget_mode == "imported" ? "" : " " + number(c.budget_value)));
  line(out, "achieved", "density " + number(c.achieved_density) + ", mean recall " + number(c.mean_recall));
  if (!c.objective.empty()) line(out, "objective", c.objective);
  line(out, "patterns", pattern_counts(heads_by_pattern));
  return out;
}

std::string describe_layer_weights(const std::string& path) {
  const LayerWeights w = read_layer_weights(path);
  std::string out;
  line(out, "format", "headcal-layer-weights");
  line(out, "fingerprint", w.model_fingerprint);
  line(out, "model layers", std::to_string(w.model_layers));
  line(out, "measured with", w.profile + " on " + w.prompts + " (" + std::to_string(w.tokens) + " tokens)");
  out += "layer  KL (nats)    out_err  weight\n";
  for (const LayerWeight& l : w.layers) {
    char row[96];
    if (l.measured)
      std::snprintf(row, sizeof row, "%5lld  %10.3e  %9.4f  %6.3f\n", static_cast<long long>(l.layer), l.kl, l.out_err,
                    l.weight);
    else
      std::snprintf(row, sizeof row, "%5lld  %10s  %9s  %6.3f (not measured)\n", static_cast<long long>(l.layer), "-",
                    "-", l.weight);
    out += row;
  }
  return out;
}

std::string describe_yaml(const std::string& path) {
  std::string format;
  try {
    const YAML::Node root = YAML::Load(read_whole_file(path, "cannot open"));
    if (root.IsMap() && root["format"] && root["format"].IsScalar()) format = root["format"].Scalar();
  } catch (const std::exception&) {
    // Unreadable or not YAML: the profile reader below says what is wrong, naming the file.
  }
  return format == "headcal-layer-weights" ? describe_layer_weights(path) : describe_profile(path);
}

}  // namespace hc::cli

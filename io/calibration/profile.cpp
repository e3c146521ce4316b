#include "io/calibration/profile.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "common/error.h"
#include "io/util/temp_files.h"
#include "io/util/mapped_file.h"
#include "io/util/yaml_util.h"

namespace fs = std::filesystem;

namespace hc {

namespace {

// Same bounds as the atlas reader: above any real model, below what a corrupt count could
// turn into a huge allocation.
constexpr int64_t kMaxLayers = 4096;
constexpr int64_t kMaxHeads = 4096;

std::string head_where(const ProfileHead& h) {
  return "heads entry (layer " + std::to_string(h.layer) + ", head " + std::to_string(h.head) + ")";
}

}  // namespace

const ProfileHead& Profile::at(int64_t layer, int64_t head) const {
  size_t index = static_cast<size_t>(layer * model.heads + head);
  if (layer < 0 || head < 0 || head >= model.heads || index >= heads.size() || heads[index].layer != layer ||
      heads[index].head != head)
    throw InputError("profile", "no entry for layer " + std::to_string(layer) + ", head " + std::to_string(head));
  return heads[index];
}

const char* target_name(Target target) {
  switch (target) {
    case Target::headcal: return "headcal";
    case Target::minference: return "minference";
    case Target::dual_chunk: return "dual-chunk";
  }
  return "unknown";
}

bool parse_target(const std::string& name, Target* target) {
  for (Target t : {Target::headcal, Target::minference, Target::dual_chunk})
    if (name == target_name(t)) {
      *target = t;
      return true;
    }
  return false;
}

bool is_known_budget_mode(const std::string& mode) {
  return mode == "density" || mode == "global-density" || mode == "min-recall" || mode == "imported" ||
         mode == "minference-rule";
}

void validate_profile(const Profile& p, const std::string& source) {
  auto range = [&](const char* name, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi)
      throw InputError(source, std::string(name) + " = " + std::to_string(v) + " is outside [" + std::to_string(lo) +
                                   ", " + std::to_string(hi) + "]");
  };
  range("model.layers", p.model.layers, 1, kMaxLayers);
  range("model.heads", p.model.heads, 1, kMaxHeads);
  range("model.kv_heads", p.model.kv_heads, 1, p.model.heads);
  if (p.model.heads % p.model.kv_heads != 0)
    throw InputError(source, "model.heads = " + std::to_string(p.model.heads) +
                                 " is not a multiple of model.kv_heads = " + std::to_string(p.model.kv_heads));
  range("model.head_dim", p.model.head_dim, 1, 1024);
  range("calibration.tokens", p.calibration.tokens, 1, int64_t(1) << 24);
  if (!is_known_budget_mode(p.calibration.budget_mode))
    throw InputError(source, "calibration.budget.mode '" + p.calibration.budget_mode +
                                 "' is not one of density, global-density, min-recall, imported");
  if (p.calibration.budget_mode != "imported" && p.calibration.budget_mode != "minference-rule" &&
      !(p.calibration.budget_value > 0 && p.calibration.budget_value <= 1))
    throw InputError(source, "calibration.budget.value must be in (0, 1]");
  range("defaults.block", p.defaults.block, 1, 4096);
  range("defaults.last_q", p.defaults.last_q, 1, int64_t(1) << 24);
  range("defaults.v_sink", p.defaults.v_sink, 0, int64_t(1) << 24);
  range("defaults.s_local", p.defaults.s_local, 0, int64_t(1) << 24);

  const int64_t expected = p.model.layers * p.model.heads;
  std::vector<char> seen(static_cast<size_t>(expected), 0);
  for (size_t i = 0; i < p.heads.size(); ++i) {
    const ProfileHead& h = p.heads[i];
    if (h.layer < 0 || h.layer >= p.model.layers || h.head < 0 || h.head >= p.model.heads)
      throw InputError(source, head_where(h) + ": outside the model's " + std::to_string(p.model.layers) +
                                   " layers x " + std::to_string(p.model.heads) + " heads");
    size_t slot = static_cast<size_t>(h.layer * p.model.heads + h.head);
    if (seen[slot]) throw InputError(source, head_where(h) + ": appears more than once");
    seen[slot] = 1;
    std::string problem = candidate_problem(h.candidate(), p.defaults);
    if (!problem.empty()) throw InputError(source, head_where(h) + ": " + problem);
    if (!std::isfinite(h.recall) || h.recall < 0 || h.recall > 1.01)
      throw InputError(source, head_where(h) + ": recall must be in [0, 1]");
    if (!std::isfinite(h.density) || h.density < 0) throw InputError(source, head_where(h) + ": density must be >= 0");
    if (!std::isfinite(h.out_err) || h.out_err < 0) throw InputError(source, head_where(h) + ": out_err must be >= 0");
  }
  if (static_cast<int64_t>(p.heads.size()) != expected) {
    for (int64_t s = 0; s < expected; ++s)
      if (!seen[static_cast<size_t>(s)])
        throw InputError(source, "no heads entry for layer " + std::to_string(s / p.model.heads) + ", head " +
                                     std::to_string(s % p.model.heads) + " (need one per layer and head)");
  }
  for (size_t i = 0; i < p.heads.size(); ++i)
    if (static_cast<size_t>(p.heads[i].layer * p.model.heads + p.heads[i].head) != i)
      throw InputError(source, head_where(p.heads[i]) + ": entries must be sorted by layer, then head");
}

std::string profile_to_yaml(const Profile& p) {
  YAML::Emitter out;
  out.SetDoublePrecision(10);
  out << YAML::Comment("headcal profile: one sparse attention pattern per (layer, head); see DESIGN.md");
  out << YAML::BeginMap;
  out << YAML::Key << "format" << YAML::Value << kProfileFormat;
  out << YAML::Key << "version" << YAML::Value << kProfileVersion;
  out << YAML::Key << "model" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "name" << YAML::Value << p.model.name;
  out << YAML::Key << "arch" << YAML::Value << p.model.arch;
  out << YAML::Key << "layers" << YAML::Value << p.model.layers;
  out << YAML::Key << "heads" << YAML::Value << p.model.heads;
  out << YAML::Key << "kv_heads" << YAML::Value << p.model.kv_heads;
  out << YAML::Key << "head_dim" << YAML::Value << p.model.head_dim;
  out << YAML::Key << "fingerprint" << YAML::Value << p.model.fingerprint;
  out << YAML::EndMap;
  out << YAML::Key << "calibration" << YAML::Value << YAML::BeginMap;
  out << YAML::Key << "prompt" << YAML::Value << YAML::DoubleQuoted << p.calibration.prompt;
  out << YAML::Key << "tokens" << YAML::Value << p.calibration.tokens;
  out << YAML::Key << "sha256" << YAML::Value << p.calibration.sha256;
  out << YAML::Key << "budget" << YAML::Value << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "mode" << YAML::Value << p.calibration.budget_mode;
  out << YAML::Key << "value" << YAML::Value << p.calibration.budget_value;
  out << YAML::EndMap;
  out << YAML::Key << "achieved_density" << YAML::Value << p.calibration.achieved_density;
  out << YAML::Key << "mean_recall" << YAML::Value << p.calibration.mean_recall;
  out << YAML::Key << "tool_version" << YAML::Value << YAML::DoubleQuoted << p.calibration.tool_version;
  if (!p.calibration.objective.empty()) out << YAML::Key << "objective" << YAML::Value << p.calibration.objective;
  if (p.calibration.prompts > 1) out << YAML::Key << "prompts" << YAML::Value << p.calibration.prompts;
  // Absent means headcal, so headcal profiles read the same in every version of the reader.
  if (p.calibration.target != Target::headcal)
    out << YAML::Key << "target" << YAML::Value << target_name(p.calibration.target);
  out << YAML::EndMap;
  out << YAML::Key << "defaults" << YAML::Value << YAML::Flow << YAML::BeginMap;
  out << YAML::Key << "block" << YAML::Value << p.defaults.block;
  out << YAML::Key << "last_q" << YAML::Value << p.defaults.last_q;
  out << YAML::Key << "v_sink" << YAML::Value << p.defaults.v_sink;
  out << YAML::Key << "s_local" << YAML::Value << p.defaults.s_local;
  out << YAML::EndMap;
  out << YAML::Key << "heads" << YAML::Value << YAML::BeginSeq;
  for (const ProfileHead& h : p.heads) {
    out << YAML::Flow << YAML::BeginMap;
    out << YAML::Key << "layer" << YAML::Value << h.layer;
    out << YAML::Key << "head" << YAML::Value << h.head;
    out << YAML::Key << "pattern" << YAML::Value << pattern_name(h.pattern);
    PatternParamKeys keys = pattern_param_keys(h.pattern);
    if (*keys.p1) out << YAML::Key << keys.p1 << YAML::Value << h.p1;
    if (*keys.p2) out << YAML::Key << keys.p2 << YAML::Value << h.p2;
    out << YAML::Key << "recall" << YAML::Value << h.recall;
    out << YAML::Key << "density" << YAML::Value << h.density;
    out << YAML::Key << "out_err" << YAML::Value << h.out_err;
    out << YAML::EndMap;
  }
  out << YAML::EndSeq;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

namespace {

YAML::Node need(const YAML::Node& parent, const char* key, const std::string& where, const std::string& source) {
  YAML::Node n = parent[key];
  if (!n) throw InputError(source, where + ": missing '" + key + "'");
  return n;
}

void only_keys(const YAML::Node& map, const std::set<std::string>& allowed, const std::string& where,
               const std::string& source) {
  for (auto it = map.begin(); it != map.end(); ++it) {
    std::string key = it->first.as<std::string>();
    if (!allowed.count(key)) throw InputError(source, where + ": unknown key '" + key + "'");
  }
}

template <typename T>
T scalar(const YAML::Node& parent, const char* key, const std::string& where, const std::string& source) {
  YAML::Node n = need(parent, key, where, source);
  if (!n.IsScalar()) throw InputError(source, where + "." + key + ": expected a scalar");
  try {
    return n.as<T>();
  } catch (const YAML::Exception&) {
    throw InputError(source, where + "." + key + ": '" + n.Scalar() + "' has the wrong type");
  }
}

Profile parse_profile_impl(const std::string& text, const std::string& source) {
  YAML::Node root = load_yaml_text(text, source);
  if (!root.IsMap()) throw InputError(source, "not a headcal profile (expected a YAML mapping)");
  if (!root["format"] || !root["format"].IsScalar() || root["format"].Scalar() != kProfileFormat)
    throw InputError(source, std::string("format must be '") + kProfileFormat + "'");
  int64_t version = scalar<int64_t>(root, "version", "top level", source);
  if (version != kProfileVersion)
    throw InputError(source, "profile version " + std::to_string(version) +
                                 " is not supported (this headcal reads version " + std::to_string(kProfileVersion) + ")");
  only_keys(root, {"format", "version", "model", "calibration", "defaults", "heads"}, "top level", source);

  Profile p;
  YAML::Node m = need(root, "model", "top level", source);
  if (!m.IsMap()) throw InputError(source, "model: expected a mapping");
  only_keys(m, {"name", "arch", "layers", "heads", "kv_heads", "head_dim", "fingerprint"}, "model", source);
  p.model.name = scalar<std::string>(m, "name", "model", source);
  p.model.arch = scalar<std::string>(m, "arch", "model", source);
  p.model.layers = scalar<int64_t>(m, "layers", "model", source);
  p.model.heads = scalar<int64_t>(m, "heads", "model", source);
  p.model.kv_heads = scalar<int64_t>(m, "kv_heads", "model", source);
  p.model.head_dim = scalar<int64_t>(m, "head_dim", "model", source);
  p.model.fingerprint = scalar<std::string>(m, "fingerprint", "model", source);

  YAML::Node c = need(root, "calibration", "top level", source);
  if (!c.IsMap()) throw InputError(source, "calibration: expected a mapping");
  only_keys(c, {"prompt", "tokens", "sha256", "budget", "achieved_density", "mean_recall", "tool_version",
                "objective", "prompts", "target"},
            "calibration", source);
  p.calibration.prompt = scalar<std::string>(c, "prompt", "calibration", source);
  p.calibration.tokens = scalar<int64_t>(c, "tokens", "calibration", source);
  p.calibration.sha256 = scalar<std::string>(c, "sha256", "calibration", source);
  YAML::Node b = need(c, "budget", "calibration", source);
  if (!b.IsMap()) throw InputError(source, "calibration.budget: expected {mode, value}");
  only_keys(b, {"mode", "value"}, "calibration.budget", source);
  p.calibration.budget_mode = scalar<std::string>(b, "mode", "calibration.budget", source);
  p.calibration.budget_value = scalar<double>(b, "value", "calibration.budget", source);
  p.calibration.achieved_density = scalar<double>(c, "achieved_density", "calibration", source);
  p.calibration.mean_recall = scalar<double>(c, "mean_recall", "calibration", source);
  p.calibration.tool_version = scalar<std::string>(c, "tool_version", "calibration", source);
  if (c["objective"]) p.calibration.objective = scalar<std::string>(c, "objective", "calibration", source);
  if (c["prompts"]) {
    p.calibration.prompts = scalar<int64_t>(c, "prompts", "calibration", source);
    if (p.calibration.prompts < 1 || p.calibration.prompts > 1024)
      throw InputError(source, "calibration.prompts must be in [1, 1024]");
  }
  if (c["target"]) {
    const std::string target = scalar<std::string>(c, "target", "calibration", source);
    if (!parse_target(target, &p.calibration.target))
      throw InputError(source, "calibration.target '" + target + "' is not one of headcal, minference, dual-chunk");
  }

  YAML::Node d = need(root, "defaults", "top level", source);
  if (!d.IsMap()) throw InputError(source, "defaults: expected a mapping");
  only_keys(d, {"block", "last_q", "v_sink", "s_local"}, "defaults", source);
  p.defaults.block = scalar<int64_t>(d, "block", "defaults", source);
  p.defaults.last_q = scalar<int64_t>(d, "last_q", "defaults", source);
  p.defaults.v_sink = scalar<int64_t>(d, "v_sink", "defaults", source);
  p.defaults.s_local = scalar<int64_t>(d, "s_local", "defaults", source);

  YAML::Node hs = need(root, "heads", "top level", source);
  if (!hs.IsSequence()) throw InputError(source, "heads: expected a list");
  // Bound the list before reserving: no more than the model's own layers x heads can be valid.
  if (p.model.layers > 0 && p.model.heads > 0 && p.model.layers <= kMaxLayers && p.model.heads <= kMaxHeads &&
      static_cast<int64_t>(hs.size()) > p.model.layers * p.model.heads)
    throw InputError(source, "heads: " + std::to_string(hs.size()) + " entries for " +
                                 std::to_string(p.model.layers * p.model.heads) + " (layer, head) pairs");
  p.heads.reserve(hs.size());
  for (size_t i = 0; i < hs.size(); ++i) {
    std::string where = "heads[" + std::to_string(i) + "]";
    YAML::Node e = hs[i];
    if (!e.IsMap()) throw InputError(source, where + ": expected a mapping");
    ProfileHead h;
    h.layer = scalar<int64_t>(e, "layer", where, source);
    h.head = scalar<int64_t>(e, "head", where, source);
    std::string name = scalar<std::string>(e, "pattern", where, source);
    if (!find_pattern(name, &h.pattern))
      throw InputError(source, where + ": unknown pattern '" + name +
                                   "' (known: dense, a_shape, vertical_slash, block_sparse)");
    PatternParamKeys keys = pattern_param_keys(h.pattern);
    std::set<std::string> allowed{"layer", "head", "pattern", "recall", "density", "out_err"};
    if (*keys.p1) {
      allowed.insert(keys.p1);
      h.p1 = scalar<int32_t>(e, keys.p1, where, source);
    }
    if (*keys.p2) {
      allowed.insert(keys.p2);
      h.p2 = scalar<int32_t>(e, keys.p2, where, source);
    }
    only_keys(e, allowed, where + " (" + name + ")", source);
    h.recall = scalar<double>(e, "recall", where, source);
    h.density = scalar<double>(e, "density", where, source);
    h.out_err = scalar<double>(e, "out_err", where, source);
    p.heads.push_back(h);
  }
  validate_profile(p, source);
  return p;
}

}  // namespace

Profile parse_profile_yaml(const std::string& text, const std::string& source) {
  try {
    return parse_profile_impl(text, source);
  } catch (const YAML::Exception& e) {
    throw InputError(source, std::string("malformed profile: ") + e.what());
  }
}

Profile read_profile(const std::string& path) {
  return parse_profile_yaml(read_whole_file(path, "cannot open profile"), path);
}

void write_file_atomic(const std::string& path, const std::string& text) {
  const fs::path p(path);
  const fs::path tmp = make_temp_path(path);
  struct Release {  // unregistered however this function ends
    std::string path;
    ~Release() { release_temp_path(path); }
  } release{tmp.string()};
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw InputError(path, "cannot create output file (temporary " + tmp.string() + ")");
    out << text;
    out.flush();
    if (!out) {
      out.close();
      std::error_code ec;
      fs::remove(tmp, ec);
      throw InputError(path, "cannot write output file");
    }
  }
  std::error_code ec;
  fs::rename(tmp, p, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw InputError(path, "cannot rename the finished file into place");
  }
}

void write_profile(const Profile& profile, const std::string& path) {
  validate_profile(profile, path);
  write_file_atomic(path, profile_to_yaml(profile));
}

std::string profile_shape_mismatch(const ProfileModel& m, const ModelConfig& c) {
  auto diff = [](const char* name, int64_t a, int64_t b) {
    return std::string(name) + ": profile " + std::to_string(a) + ", model " + std::to_string(b);
  };
  if (m.layers != c.n_layers) return diff("layers", m.layers, c.n_layers);
  if (m.heads != c.n_heads) return diff("heads", m.heads, c.n_heads);
  if (m.kv_heads != c.n_kv_heads) return diff("kv_heads", m.kv_heads, c.n_kv_heads);
  if (m.head_dim != c.head_dim) return diff("head_dim", m.head_dim, c.head_dim);
  return "";
}

std::string profile_model_mismatch(const ProfileModel& a, const ProfileModel& b, const char* a_name,
                                   const char* b_name) {
  auto diff = [&](const char* name, const std::string& x, const std::string& y) {
    return std::string(name) + ": " + a_name + " " + x + ", " + b_name + " " + y;
  };
  if (a.layers != b.layers) return diff("layers", std::to_string(a.layers), std::to_string(b.layers));
  if (a.heads != b.heads) return diff("heads", std::to_string(a.heads), std::to_string(b.heads));
  if (a.kv_heads != b.kv_heads) return diff("kv_heads", std::to_string(a.kv_heads), std::to_string(b.kv_heads));
  if (a.head_dim != b.head_dim) return diff("head_dim", std::to_string(a.head_dim), std::to_string(b.head_dim));
  if (a.fingerprint != b.fingerprint) return diff("model fingerprint", a.fingerprint, b.fingerprint);
  return "";
}

}  // namespace hc

#include "io/calibration/minference_json.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "common/error.h"
#include "io/util/json_strict.h"

namespace hc {

namespace {

// MInference's kernels use 64-token blocks.
constexpr int32_t kMInferenceBlock = 64;

std::string head_name(int64_t layer, int64_t head) {
  return "layer " + std::to_string(layer) + " head " + std::to_string(head);
}

}  // namespace

MInferenceExport export_minference(const Profile& profile, const MInferenceExportOptions& options) {
  validate_profile(profile, "profile");
  MInferenceExport out;
  out.changes = export_changes(profile, options.target);
  for (const ExportChange& c : out.changes)
    if (c.impossible)
      throw InputError("profile", head_name(c.layer, c.head) + " is " + c.headcal + ": " +
                                      target_runtime_name(options.target) + " runs " + c.runtime);
  const int64_t n_cal = profile.calibration.tokens;
  const int32_t n_dense = static_cast<int32_t>(std::min<int64_t>(n_cal, std::numeric_limits<int32_t>::max()));

  std::string json = "[\n";
  for (int64_t layer = 0; layer < profile.model.layers; ++layer) {
    nlohmann::ordered_json obj = nlohmann::ordered_json::object();
    for (int64_t head = 0; head < profile.model.heads; ++head) {
      const ProfileHead& h = profile.at(layer, head);
      nlohmann::ordered_json entry;
      switch (h.pattern) {
        case Pattern::dense:
          entry = {"vertical_and_slash", n_dense, n_dense, 1.0};
          break;
        case Pattern::vertical_slash:
          entry = {"vertical_and_slash", h.p1, h.p2, h.recall};
          break;
        case Pattern::a_shape:
          entry = {"stream_llm", h.p1, h.p2, h.recall};
          break;
        case Pattern::block_sparse:
          entry = {"block_sparse", h.p1, kMInferenceBlock, h.recall};
          break;
      }
      obj[std::to_string(head)] = entry;
    }
    json += obj.dump();
    json += (layer + 1 < profile.model.layers) ? ",\n" : "\n";
  }
  json += "]\n";
  out.json = json;
  return out;
}

namespace {

int32_t json_int(const nlohmann::json& v, const std::string& source, const std::string& where) {
  double d;
  if (v.is_number_integer()) {
    if (v.is_number_unsigned() ? v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int32_t>::max())
                               : (v.get<int64_t>() < 0 || v.get<int64_t>() > std::numeric_limits<int32_t>::max()))
      throw InputError(source, where + ": parameter " + v.dump() + " is outside [0, 2^31)");
    return static_cast<int32_t>(v.get<int64_t>());
  }
  if (v.is_number_float() && std::isfinite(d = v.get<double>()) && d == std::floor(d) && d >= 0 &&
      d <= std::numeric_limits<int32_t>::max())
    return static_cast<int32_t>(d);
  throw InputError(source, where + ": parameter " + v.dump() + " is not a non-negative integer");
}

}  // namespace

MInferenceImport import_minference(const std::string& json_text, const std::string& source,
                                   const MInferenceImportOptions& options) {
  const nlohmann::json root = parse_json_unique_keys(json_text, source);
  const ProfileModel& model = options.model;
  if (!root.is_array())
    throw InputError(source, "expected a list with one object per layer (MInference pattern config)");
  if (static_cast<int64_t>(root.size()) != model.layers)
    throw InputError(source, "has " + std::to_string(root.size()) + " layers, the model has " +
                                 std::to_string(model.layers));
  if (options.tokens < 1) throw InputError(source, "import needs a reference length (tokens >= 1)");

  MInferenceImport out;
  Profile& p = out.profile;
  p.model = model;
  p.defaults = options.defaults;
  p.calibration.prompt = options.prompt;
  p.calibration.tokens = options.tokens;
  p.calibration.budget_mode = "imported";
  p.calibration.budget_value = 0;
  p.calibration.tool_version = options.tool_version;
  p.heads.resize(static_cast<size_t>(model.layers * model.heads));
  int raised_s = 0, raised_v = 0, fixed_topk = 0, dense = 0;

  for (int64_t layer = 0; layer < model.layers; ++layer) {
    const nlohmann::json& obj = root[static_cast<size_t>(layer)];
    if (!obj.is_object()) throw InputError(source, "layer " + std::to_string(layer) + ": expected an object");
    std::vector<char> seen(static_cast<size_t>(model.heads), 0);
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      const std::string& key = it.key();
      std::string where = "layer " + std::to_string(layer) + " head '" + key + "'";
      size_t used = 0;
      long long head = -1;
      try {
        head = std::stoll(key, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      if (used != key.size() || key.empty()) throw InputError(source, where + ": head keys must be integers");
      if (head < 0 || head >= model.heads)
        throw InputError(source, where + ": head index outside the model's " + std::to_string(model.heads) + " heads");
      if (seen[static_cast<size_t>(head)]) throw InputError(source, where + ": listed twice");
      seen[static_cast<size_t>(head)] = 1;

      const nlohmann::json& v = it.value();
      if (!v.is_array() || v.size() != 4 || !v[0].is_string() || !v[3].is_number())
        throw InputError(source, where + ": expected [type, p1, p2, score]");
      std::string type = v[0].get<std::string>();
      int32_t p1 = json_int(v[1], source, where);
      int32_t p2 = json_int(v[2], source, where);

      ProfileHead h;
      h.layer = layer;
      h.head = head;
      h.recall = h.density = h.out_err = 0;  // not measured
      if (type == "vertical_and_slash") {
        if (p1 >= options.tokens && p2 >= options.tokens) {
          h.pattern = Pattern::dense;
          h.recall = h.density = 1;
          ++dense;
        } else {
          h.pattern = Pattern::vertical_slash;
          h.p1 = std::max<int32_t>(p1, static_cast<int32_t>(options.defaults.v_sink));
          h.p2 = std::max<int32_t>(p2, static_cast<int32_t>(options.defaults.s_local));
          raised_v += h.p1 != p1;
          raised_s += h.p2 != p2;
        }
      } else if (type == "stream_llm") {
        if (p2 < 1) throw InputError(source, where + ": stream_llm needs n_local >= 1");
        h.pattern = Pattern::a_shape;
        h.p1 = p1;
        h.p2 = p2;
      } else if (type == "block_sparse") {
        h.pattern = Pattern::block_sparse;
        if (p2 == kMInferenceBlock && p1 >= 2) {
          h.p1 = p1;
        } else {
          h.p1 = kMInferenceBlockTopK;
          ++fixed_topk;
        }
      } else {
        throw InputError(source, where + ": unknown type '" + type +
                                     "' (known: vertical_and_slash, stream_llm, block_sparse)");
      }
      p.heads[static_cast<size_t>(layer * model.heads + head)] = h;
    }
    for (int64_t head = 0; head < model.heads; ++head)
      if (!seen[static_cast<size_t>(head)])
        throw InputError(source, "layer " + std::to_string(layer) + ": no entry for head " + std::to_string(head));
  }

  // Not measured for an imported config (0 = unknown); `headcal validate` measures them.
  p.calibration.achieved_density = 0;
  p.calibration.mean_recall = 0;

  if (dense)
    out.notes.push_back(std::to_string(dense) + " head(s) covering >= " + std::to_string(options.tokens) +
                        " columns and diagonals imported as dense");
  if (raised_v)
    out.notes.push_back(std::to_string(raised_v) + " head(s) had v below v_sink = " +
                        std::to_string(options.defaults.v_sink) + ": raised to v_sink (the columns are forced anyway)");
  if (raised_s)
    out.notes.push_back(std::to_string(raised_s) + " head(s) had s below s_local = " +
                        std::to_string(options.defaults.s_local) + ": raised to s_local (a superset of MInference's set)");
  if (fixed_topk)
    out.notes.push_back(std::to_string(fixed_topk) +
                        " block_sparse head(s) imported with k = 100, the top-k MInference's kernel always uses");
  validate_profile(p, source);
  return out;
}

}  // namespace hc

#include "report/validation_record.h"

#include <filesystem>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/util/mapped_file.h"

namespace hc::report {

namespace {

double summary_number(const nlohmann::json& summary, const char* key, const std::string& path) {
  if (!summary.contains(key) || !summary.at(key).is_number())
    throw InputError(path, std::string("\"summary\" has no number \"") + key + "\"");
  return summary.at(key).get<double>();
}

}  // namespace

ValidationRecord read_validation_record(const std::string& path) {
  const std::string text = read_whole_file(path, "cannot open the validation record");
  nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) throw InputError(path, "not a JSON object (expected `headcal validate --json` output)");
  if (j.value("format", std::string()) != "headcal-validation")
    throw InputError(path, "not a validation record (\"format\" is not \"headcal-validation\")");
  if (!j.contains("summary") || !j.at("summary").is_object()) throw InputError(path, "no \"summary\" object");
  const nlohmann::json& s = j.at("summary");

  ValidationRecord r;
  r.path = path;
  r.density = summary_number(s, "density", path);
  r.mean_recall = summary_number(s, "mean_recall", path);
  r.mean_kl = summary_number(s, "mean_kl", path);
  r.top1_agreement = summary_number(s, "top1_agreement", path);
  if (j.contains("method") && j.at("method").is_string()) r.method = j.at("method").get<std::string>();
  const nlohmann::json* profile = j.contains("profile") ? &j.at("profile") : nullptr;
  if (r.method.empty() && profile && profile->is_object() && profile->contains("path") && profile->at("path").is_string())
    r.method = std::filesystem::path(profile->at("path").get<std::string>()).filename().string();
  if (r.method.empty()) r.method = std::filesystem::path(path).filename().string();
  if (j.contains("prompt") && j.at("prompt").is_object()) {
    const nlohmann::json& prompt = j.at("prompt");
    if (prompt.contains("description") && prompt.at("description").is_string())
      r.prompt = prompt.at("description").get<std::string>();
    if (prompt.contains("tokens") && prompt.at("tokens").is_number_integer()) r.tokens = prompt.at("tokens").get<int64_t>();
  }
  // A prompt set's record (version 2): the set's description, the first prompt's length.
  if (j.contains("prompt_set") && j.at("prompt_set").is_object()) {
    const nlohmann::json& set = j.at("prompt_set");
    if (set.contains("description") && set.at("description").is_string())
      r.prompt = set.at("description").get<std::string>();
    if (j.contains("prompts") && j.at("prompts").is_array() && !j.at("prompts").empty()) {
      const nlohmann::json& first = j.at("prompts").at(0);
      if (first.is_object() && first.contains("prompt") && first.at("prompt").is_object() &&
          first.at("prompt").contains("tokens") && first.at("prompt").at("tokens").is_number_integer())
        r.tokens = first.at("prompt").at("tokens").get<int64_t>();
    }
  }
  if (j.contains("passed") && j.at("passed").is_boolean()) r.passed = j.at("passed").get<bool>();
  return r;
}

std::vector<ValidationRecord> read_validation_records(const std::vector<std::string>& paths) {
  std::vector<ValidationRecord> out;
  for (const std::string& p : paths) out.push_back(read_validation_record(p));
  return out;
}

}  // namespace hc::report

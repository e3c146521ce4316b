// Validation over a prompt set: each prompt validated as validate_profile_run does, then the mean
// and the worst prompt of each measure, thresholds checked on every prompt.
#include <algorithm>
#include <cstdio>
#include <sstream>

#include "calib/validate.h"
#include "calib/validate_format.h"
#include "common/error.h"
#include "headcal/version.h"
#include "kernels/sparse/pattern.h"

namespace hc {

namespace {

std::string fixed(double value, int digits) { return format_fixed(value, digits); }
std::string scientific(double value) { return format_scientific(value); }

void aggregate(SetValidation& v) {
  double w_sum = 0, density = 0, kl = 0, top1 = 0, confident_top1 = 0, recall = 0;
  v.worst_kl = 0;
  v.worst_top1 = 1;
  v.worst_confident_top1 = 1;
  v.worst_recall = 1;
  v.min_head_recall = 1;
  v.dense_attention_s = v.sparse_attention_s = v.index_build_s = 0;
  for (const PromptValidation& p : v.prompts) {
    const ValidationReport& r = p.report;
    w_sum += p.weight;
    density += p.weight * r.density;
    kl += p.weight * r.mean_kl;
    top1 += p.weight * r.top1_agreement;
    confident_top1 += p.weight * r.confident_top1;
    recall += p.weight * r.mean_recall;
    v.worst_kl = std::max(v.worst_kl, r.mean_kl);
    v.worst_top1 = std::min(v.worst_top1, r.top1_agreement);
    v.worst_confident_top1 = std::min(v.worst_confident_top1, r.confident_top1);
    v.worst_recall = std::min(v.worst_recall, r.mean_recall);
    v.min_head_recall = std::min(v.min_head_recall, r.min_head_recall);
    v.dense_attention_s += r.dense_attention_s;
    v.sparse_attention_s += r.sparse_attention_s;
    v.index_build_s += r.index_build_s;
  }
  v.density = density / w_sum;
  v.mean_kl = kl / w_sum;
  v.mean_top1 = top1 / w_sum;
  v.mean_confident_top1 = confident_top1 / w_sum;
  v.mean_recall = recall / w_sum;
}

}  // namespace

SetValidation validate_prompt_set(Engine& engine, const std::string& model_fingerprint, const Profile& profile,
                                  const std::vector<ValidationPrompt>& prompts, const std::string& set_description,
                                  const std::string& set_sha256, const ValidateOptions& options,
                                  const std::function<void(const PromptValidation&)>& on_prompt) {
  if (prompts.empty()) throw InputError("validate", "no prompt to validate on");
  SetValidation v;
  v.description = set_description;
  v.sha256 = set_sha256;
  for (const ValidationPrompt& p : prompts) {
    PromptValidation pv{p.name, p.description, p.sha256, p.weight,
                        validate_profile_run(engine, model_fingerprint, profile, p.tokens, options)};
    check_validation_thresholds(pv.report, options);
    for (const std::string& f : pv.report.failures)
      v.failures.push_back(prompts.size() > 1 ? "prompt " + p.name + ": " + f : f);
    if (on_prompt) on_prompt(pv);
    v.prompts.push_back(std::move(pv));
  }
  aggregate(v);
  return v;
}

std::string set_validation_summary(const SetValidation& v) {
  std::ostringstream out;
  out << "over " << v.prompts.size() << " prompts (" << v.description << "), weighted mean / worst prompt:\n";
  auto worst_name = [&](auto better) {
    const PromptValidation* w = &v.prompts.front();
    for (const PromptValidation& p : v.prompts)
      if (better(w->report, p.report)) w = &p;
    return w->name;
  };
  out << "  next token: mean KL " << scientific(v.mean_kl) << " / " << scientific(v.worst_kl) << " nats ("
      << worst_name([](const ValidationReport& a, const ValidationReport& b) { return b.mean_kl > a.mean_kl; })
      << "), top-1 agreement " << fixed(v.mean_top1, 4) << " / " << fixed(v.worst_top1, 4) << " ("
      << worst_name([](const ValidationReport& a, const ValidationReport& b) {
           return b.top1_agreement < a.top1_agreement;
         })
      << ")\n";
  out << "  top-1 where dense is sure (p >= " << fixed(kConfidentProbability, 1) << "): " << fixed(v.mean_confident_top1, 4) << " / "
      << fixed(v.worst_confident_top1, 4) << " ("
      << worst_name([](const ValidationReport& a, const ValidationReport& b) {
           return b.confident_top1 < a.confident_top1;
         })
      << ")\n";
  out << "  recall: mean " << fixed(v.mean_recall, 4) << " / " << fixed(v.worst_recall, 4) << ", lowest head "
      << fixed(v.min_head_recall, 4) << "; density " << fixed(v.density, 4) << "\n";
  // The heads that keep least over all prompts: each head's worst recall.
  std::vector<std::pair<double, std::string>> heads;
  const size_t n_heads = v.prompts.front().report.heads.size();
  for (size_t i = 0; i < n_heads; ++i) {
    const HeadValidation& h0 = v.prompts.front().report.heads[i];
    if (h0.config.pattern == kernels::Pattern::dense) continue;
    double worst = h0.recall;
    std::string where = v.prompts.front().name;
    for (const PromptValidation& p : v.prompts)
      if (p.report.heads[i].recall < worst) worst = p.report.heads[i].recall, where = p.name;
    heads.push_back({worst, "L" + std::to_string(h0.layer) + "H" + std::to_string(h0.head) + " " +
                                kernels::describe(h0.config) + " " + fixed(worst, 4) + " (" + where + ")"});
  }
  std::sort(heads.begin(), heads.end());
  if (!heads.empty()) {
    out << "  lowest heads:";
    for (size_t i = 0; i < std::min<size_t>(heads.size(), 5); ++i) out << (i ? "," : "") << " " << heads[i].second;
    out << "\n";
  }
  out << thresholds_lines(v.prompts.front().report, v.failures, "thresholds (every prompt)");
  return out.str();
}

std::string set_validation_json(const SetValidation& v, const std::string& model_path, const std::string& profile_path,
                                const std::string& method) {
  HC_ASSERT(!v.prompts.empty(), "a validated set has prompts");
  const ValidationReport& first = v.prompts.front().report;
  nlohmann::ordered_json j;
  j["format"] = "headcal-validation";
  j["version"] = 2;
  j["tool_version"] = HEADCAL_VERSION;
  j["method"] = method;
  j["model"] = {{"path", model_path}, {"fingerprint", first.model_fingerprint}};
  j["profile"] = {
      {"path", profile_path}, {"fingerprint", first.profile_fingerprint}, {"calibration_tokens", first.profile_tokens}};
  j["prompt_set"] = {{"description", v.description}, {"sha256", v.sha256}, {"prompts", v.prompts.size()}};
  j["backend"] = first.backend;
  j["summary"] = {{"density", v.density},           {"mean_kl", v.mean_kl},
                  {"worst_kl", v.worst_kl},         {"top1_agreement", v.mean_top1},
                  {"worst_top1", v.worst_top1},     {"confident_top1", v.mean_confident_top1},
                  {"worst_confident_top1", v.worst_confident_top1}, {"mean_recall", v.mean_recall},
                  {"worst_recall", v.worst_recall}, {"min_head_recall", v.min_head_recall}};
  j["timing_s"] = {{"dense_attention", v.dense_attention_s},
                   {"sparse_attention", v.sparse_attention_s},
                   {"index_build", v.index_build_s}};
  j["passed"] = v.failures.empty();
  j["failures"] = v.failures;
  nlohmann::ordered_json prompts = nlohmann::ordered_json::array();
  for (const PromptValidation& p : v.prompts) {
    nlohmann::ordered_json e;
    e["name"] = p.name;
    e["weight"] = p.weight;
    e.update(validation_json_body(p.report, p.description, p.sha256));
    prompts.push_back(std::move(e));
  }
  j["prompts"] = prompts;
  return j.dump(1) + "\n";
}

}  // namespace hc

#include "cli/budget_options.h"

#include "common/error.h"
#include "io/calibration/layer_weights.h"
#include "search/search.h"

namespace hc::cli {

BudgetOptions::BudgetOptions(CLI::App& sub) {
  density_opt_ = sub.add_option("--density", density_, "per head: best recall with density <= D, D in (0, 1]");
  global_opt_ = sub.add_option("--global-density", global_density_,
                               "all heads: maximum total recall with total cost <= D x dense cost, D in (0, 1]");
  recall_opt_ = sub.add_option("--min-recall", min_recall_, "per head: cheapest candidate with recall >= R, R in (0, 1]");
  density_opt_->excludes(global_opt_)->excludes(recall_opt_);
  global_opt_->excludes(recall_opt_);
  sub.add_option("--patterns", patterns_, "patterns search may choose: all, or a list like a_shape,vertical_slash");
  sub.add_option("--objective", objective_,
                 "how a candidate is scored over the atlas's prompts: mixed:A (mean recall - A x mean output "
                 "error; default mixed:1), worst-mixed:A (mixed on the candidate's worst prompt), mean-recall, "
                 "worst-recall, recall-floor:F, output-error");
  sub.add_option("--layer-weights", layer_weights_,
                 "layer weights (YAML, from headcal sensitivity): each head's output-error term is multiplied by "
                 "its layer's weight");
  sub.add_option("--rule", rule_,
                 "budgeted (default), or minference: MInference's own search rule (its six candidates, most "
                 "attention kept, no budget), for comparison")
      ->check(CLI::IsMember({"budgeted", "minference"}));
  sub.add_option("--target", target_,
                 "the runtime the profile is for: headcal (default; every pattern exactly), minference "
                 "(MInference's HF patch) or dual-chunk (vLLM/SGLang dual-chunk attention, prompts above 32768 "
                 "tokens): search chooses only candidates it runs exactly, and the profile records it");
}

search::SearchOptions BudgetOptions::resolve(std::optional<search::SearchOptions> fallback) const {
  Target target = Target::headcal;
  if (!parse_target(target_, &target))
    throw InputError("--target", "unknown target '" + target_ + "' (headcal, minference, dual-chunk)");
  search::SearchOptions opts = resolve_budget(fallback);
  opts.target = target;
  if (!layer_weights_.empty()) {
    opts.layer_weights = read_layer_weights(layer_weights_);
    opts.layer_weights_source = layer_weights_;
  }
  return opts;
}

search::SearchOptions BudgetOptions::resolve_budget(std::optional<search::SearchOptions> fallback) const {
  search::SearchOptions opts;
  if (rule_ == "minference") {
    if (density_opt_->count() || global_opt_->count() || recall_opt_->count())
      throw InputError("--rule", "minference has no budget: drop --density, --global-density and --min-recall");
    opts.rule = search::SearchRule::minference;
    opts.patterns = search::parse_pattern_filter(patterns_);
    opts.objective = search::parse_objective(objective_);
    return opts;
  }
  if (density_opt_->count()) opts.mode = search::BudgetMode::density, opts.value = density_;
  else if (global_opt_->count()) opts.mode = search::BudgetMode::global_density, opts.value = global_density_;
  else if (recall_opt_->count()) opts.mode = search::BudgetMode::min_recall, opts.value = min_recall_;
  else if (fallback) opts = *fallback;
  else throw InputError("search", "give one budget: --density D, --global-density D or --min-recall R");
  opts.patterns = search::parse_pattern_filter(patterns_);
  opts.objective = search::parse_objective(objective_);
  search::validate_options(opts);
  return opts;
}

}  // namespace hc::cli

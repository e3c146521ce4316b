#pragma once
// The budget options `search` and `calibrate` share: --density | --global-density | --min-recall
// (mutually exclusive), --patterns, --objective (how candidates are scored over an atlas's
// prompts), --layer-weights (per-layer weights on its output-error terms, from `headcal
// sensitivity`), --rule minference (MInference's own rule instead of a budget) and --target (the
// runtime: search chooses only what it runs exactly).
#include <CLI/CLI.hpp>

#include <memory>
#include <optional>

#include "search/allocate.h"

namespace hc::cli {

class BudgetOptions {
 public:
  explicit BudgetOptions(CLI::App& sub);
  // The options given, validated (InputError exit 2 outside (0, 1], for an unknown pattern or target).
  // With no budget option: `fallback` when given, else an InputError asking for one.
  search::SearchOptions resolve(std::optional<search::SearchOptions> fallback = std::nullopt) const;

 private:
  search::SearchOptions resolve_budget(std::optional<search::SearchOptions> fallback) const;

  double density_ = 0, global_density_ = 0, min_recall_ = 0;
  std::string patterns_ = "all";
  std::string objective_ = "mixed:1";
  std::string rule_ = "budgeted";
  std::string target_ = "headcal";
  std::string layer_weights_;
  CLI::Option *density_opt_, *global_opt_, *recall_opt_;
};

}  // namespace hc::cli

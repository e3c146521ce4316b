#pragma once
// Budgeted choice of one option per head, on candidate tables alone (no atlas, no GPU). "score" is
// each option's objective value (tables.h: mean recall over the prompts unless chosen otherwise).
//
//   density D         each head on its own: the best score with density <= D (ties: cheaper);
//                     a head with no option within D gets its cheapest option (and a note).
//   global-density D  all heads together: maximise sum of score subject to
//                     sum of cost <= D * sum of dense cost. Lagrangian relaxation: for a
//                     multiplier lambda each head takes argmax score - lambda * cost, which only
//                     ever picks points of the head's upper convex hull in (cost, score). Walking
//                     lambda down from infinity passes the hull segments of all heads in order of
//                     slope; we take them in that order while they fit, i.e. the exact solution of
//                     the relaxation at the lambda where the budget binds (what bisecting lambda
//                     converges to, without the bisection). Then the budget left over is filled
//                     greedily with the best score-per-cost upgrades among all options, so a
//                     head may end up anywhere, dense included.
//   min-recall R      each head: the cheapest option with recall >= R (dense qualifies where the
//                     table has it); a head with none gets its option of most recall (and a note).
// Budget values outside (0, 1] are an InputError (exit 2).
#include <string>
#include <vector>

#include "io/calibration/layer_weights.h"
#include "search/tables.h"

namespace hc::search {

enum class BudgetMode { density, global_density, min_recall };

// "density", "global-density", "min-recall" (the profile's calibration.budget.mode).
const char* budget_mode_name(BudgetMode mode);

// How the per-head choice is made: under a budget (BudgetMode), or by MInference's own search rule
// (minference.h), which has no budget.
enum class SearchRule { budgeted, minference };

struct SearchOptions {
  BudgetMode mode = BudgetMode::global_density;
  double value = 0;  // D or R, in (0, 1]
  PatternFilter patterns;
  Objective objective;
  SearchRule rule = SearchRule::budgeted;
  Target target = Target::headcal;  // the runtime: only candidates it runs exactly (tables.h)
  // Per-layer weights on the output-error terms (search --layer-weights); no layers: none. run()
  // checks them against the atlas's model and fills objective.layer_weight.
  LayerWeights layer_weights;
  std::string layer_weights_source;  // named in errors and in the profile
};

// InputError("search options", ...) unless value is in (0, 1].
void validate_options(const SearchOptions& options);

struct Allocation {
  std::vector<size_t> choice;  // per table: index into its options
  double total_cost = 0;       // sum of chosen costs
  double dense_cost = 0;       // sum of dense costs
  double lambda = 0;           // global-density: the multiplier where the budget binds (0 otherwise)
  std::vector<std::string> notes;

  double achieved_density() const { return dense_cost > 0 ? total_cost / dense_cost : 0; }
};

Allocation allocate(const std::vector<HeadTable>& tables, const SearchOptions& options);

}  // namespace hc::search

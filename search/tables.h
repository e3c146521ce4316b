#pragma once
// Per-head candidate tables: what search chooses from, built from an atlas's candidate rows.
// For the headcal target every table holds a `dense` option (cost = the head's dense cost,
// density 1, recall 1), so every head always has a choice. For another target (io/calibration/profile.h) a
// table holds only the candidates that target runs exactly (io/calibration/export_changes.h), dense included
// only where it runs dense as it is, so a table may be empty.
#include <cstdint>
#include <string>
#include <vector>

#include "io/calibration/atlas.h"
#include "io/calibration/profile.h"

namespace hc::search {

struct Option {
  GridCandidate candidate;
  double cost = 0;     // FLOPs, as recorded; over several prompts their weighted mean
  double density = 0;  // cost / dense cost
  double recall = 0;   // the objective's recall: weighted mean over prompts, or the worst
  double out_err = 0;  // weighted mean over prompts
  double score = 0;    // what the budgeted choice maximises (Objective); dense scores 1
};

struct HeadTable {
  int64_t layer = 0;
  int64_t head = 0;
  double dense_cost = 0;        // FLOPs of dense attention for this head
  std::vector<Option> options;  // unique candidates, dense included
};

// Which patterns search may choose (dense is always allowed).
struct PatternFilter {
  bool a_shape = true;
  bool vertical_slash = true;
  bool block_sparse = true;
  bool allows(Pattern kind) const;
};

// How a candidate is scored over an atlas's prompts p (weights w_p, recall r_p, output error e_p);
// every score is 1 for dense and higher is better.
//   mean-recall    sum w_p r_p / sum w_p
//   worst-recall   min_p r_p (recall is then the worst too)
//   recall-floor   mean recall, and candidates whose worst recall is below `floor` are dropped
//   output-error   1 - sum w_p min(e_p, 1) / sum w_p: what the head changes in the layer's output
//   mixed          mean recall - `mix` x mean output error
//   worst-mixed    min_p (r_p - `mix` x e_p): mixed on the prompt where the candidate does worst
// With layer weights (search --layer-weights, io/calibration/layer_weights.h) every output-error
// term of a head in layer l is multiplied by layer_weight[l]: the same error costs more KL in some
// layers than in others.
enum class ObjectiveKind { mean_recall, worst_recall, recall_floor, output_error, mixed, worst_mixed };

// The default, mixed:1, gave the lowest held-out KL at equal density of the objectives measured on
// SmolLM2 at 8K (docs/QUALITY.md), keeping more recall per head than output-error alone.
struct Objective {
  ObjectiveKind kind = ObjectiveKind::mixed;
  double floor = 0;  // recall-floor
  double mix = 1;    // mixed, worst-mixed
  std::vector<double> layer_weight;  // [layers] multiplies the output-error terms; empty: all 1
};

// "mean-recall", "worst-recall", "recall-floor:0.9", "output-error", "mixed:0.5", "worst-mixed:1";
// InputError otherwise.
Objective parse_objective(const std::string& text);
std::string objective_name(const Objective& objective);

// One table per (recorded layer, head), in (layer, head) order. The dense cost of a head is its
// dense row's cost; without one, the median of cost / density over its rows. InputError(atlas
// path, ...) for a head with no rows, a repeated candidate, or no way to know the dense cost.
// Over several prompts, a candidate is kept when every prompt has it, scored by `objective`.
// Only candidates `target` runs exactly at the atlas's N with its defaults are kept.
std::vector<HeadTable> build_tables(const Atlas& atlas, const PatternFilter& filter = {},
                                    const Objective& objective = {}, Target target = Target::headcal);

// Whether `target` runs `candidate` exactly as recorded in `atlas` (its N and defaults).
bool runs_exactly(Target target, const GridCandidate& candidate, const Atlas& atlas);

}  // namespace hc::search

#include "search/tables.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <map>
#include <set>

#include "common/error.h"
#include "io/calibration/export_changes.h"

namespace hc::search {

bool PatternFilter::allows(Pattern kind) const {
  switch (kind) {
    case Pattern::dense: return true;
    case Pattern::a_shape: return a_shape;
    case Pattern::vertical_slash: return vertical_slash;
    case Pattern::block_sparse: return block_sparse;
  }
  return false;
}

Objective parse_objective(const std::string& text) {
  Objective o;
  const auto colon = text.find(':');
  const std::string name = text.substr(0, colon);
  auto number = [&](double lo, double hi) {
    if (colon == std::string::npos) throw InputError("--objective", "'" + name + "' needs a value, e.g. " + name + ":0.5");
    const std::string v = text.substr(colon + 1);
    char* end = nullptr;
    const double x = std::strtod(v.c_str(), &end);
    if (v.empty() || *end != '\0' || !std::isfinite(x) || x < lo || x > hi)
      throw InputError("--objective", "'" + v + "' is not a number in [" + std::to_string(lo) + ", " +
                                          std::to_string(hi) + "]");
    return x;
  };
  auto no_value = [&]() {
    if (colon != std::string::npos) throw InputError("--objective", "'" + name + "' takes no value");
  };
  if (name == "mean-recall") no_value(), o.kind = ObjectiveKind::mean_recall;
  else if (name == "worst-recall") no_value(), o.kind = ObjectiveKind::worst_recall;
  else if (name == "output-error") no_value(), o.kind = ObjectiveKind::output_error;
  else if (name == "recall-floor") o.kind = ObjectiveKind::recall_floor, o.floor = number(0, 1);
  else if (name == "mixed") o.kind = ObjectiveKind::mixed, o.mix = number(0, 100);
  else if (name == "worst-mixed") o.kind = ObjectiveKind::worst_mixed, o.mix = number(0, 100);
  else
    throw InputError("--objective", "unknown objective '" + text +
                                        "' (mean-recall, worst-recall, recall-floor:F, output-error, mixed:A, "
                                        "worst-mixed:A)");
  return o;
}

std::string objective_name(const Objective& o) {
  char buf[64];
  switch (o.kind) {
    case ObjectiveKind::mean_recall: return "mean-recall";
    case ObjectiveKind::worst_recall: return "worst-recall";
    case ObjectiveKind::output_error: return "output-error";
    case ObjectiveKind::recall_floor: std::snprintf(buf, sizeof buf, "recall-floor:%g", o.floor); return buf;
    case ObjectiveKind::mixed: std::snprintf(buf, sizeof buf, "mixed:%g", o.mix); return buf;
    case ObjectiveKind::worst_mixed: std::snprintf(buf, sizeof buf, "worst-mixed:%g", o.mix); return buf;
  }
  return "?";
}

namespace {

// One head's rows of one prompt, checked: no candidate twice, a dense cost known.
struct PromptHeadRows {
  std::map<GridCandidate, const CandidateRow*> rows;
  double dense_cost = 0;
};

PromptHeadRows collect_rows(const std::vector<const CandidateRow*>& head_rows, const Atlas& atlas,
                            const std::string& where) {
  if (head_rows.empty()) throw InputError(atlas.path(), where + ": no candidate rows");
  PromptHeadRows out;
  const CandidateRow* dense_row = nullptr;
  std::vector<double> implied_dense;  // cost / density of each sparse row
  for (const CandidateRow* r : head_rows) {
    if (!out.rows.emplace(r->candidate(), r).second)
      throw InputError(atlas.path(), where + ": candidate " + describe_candidate(r->candidate()) + " appears twice");
    if (r->pattern == Pattern::dense) {
      dense_row = r;
    } else if (r->density > 0) {
      implied_dense.push_back(r->cost / r->density);
    }
  }
  if (dense_row) {
    out.dense_cost = dense_row->cost;
  } else if (!implied_dense.empty()) {
    std::nth_element(implied_dense.begin(), implied_dense.begin() + implied_dense.size() / 2, implied_dense.end());
    out.dense_cost = implied_dense[implied_dense.size() / 2];
  }
  if (!(out.dense_cost > 0))
    throw InputError(atlas.path(), where + ": cannot tell the dense cost (no dense row, no density)");
  return out;
}

}  // namespace

bool runs_exactly(Target target, const GridCandidate& candidate, const Atlas& atlas) {
  const AtlasMeta& m = atlas.meta();
  return runtime_head(target, candidate, m.defaults(), m.tokens).exact();
}

std::vector<HeadTable> build_tables(const Atlas& atlas, const PatternFilter& filter, const Objective& objective,
                                    Target target) {
  const int64_t H = atlas.meta().heads;
  const size_t P = atlas.prompt_count();
  if (!objective.layer_weight.empty() && static_cast<int64_t>(objective.layer_weight.size()) != atlas.meta().layers)
    throw InputError(atlas.path(), "layer weights for " + std::to_string(objective.layer_weight.size()) +
                                       " layers, the atlas's model has " + std::to_string(atlas.meta().layers));
  std::map<GridCandidate, bool> exact;  // per candidate: heads share the grid
  auto runs = [&](const GridCandidate& c) {
    auto it = exact.find(c);
    if (it == exact.end()) it = exact.emplace(c, runs_exactly(target, c, atlas)).first;
    return it->second;
  };
  double weight_sum = 0;
  for (size_t p = 0; p < P; ++p) weight_sum += atlas.prompt(p).weight;
  std::vector<HeadTable> tables;
  tables.reserve(atlas.recorded_layers().size() * static_cast<size_t>(H));
  for (int64_t layer : atlas.recorded_layers()) {
    // [prompt][head] rows
    std::vector<std::vector<PromptHeadRows>> by_prompt(P);
    for (size_t p = 0; p < P; ++p) {
      std::vector<std::vector<const CandidateRow*>> by_head(static_cast<size_t>(H));
      for (const CandidateRow& r : atlas.candidates(layer, p)) by_head[static_cast<size_t>(r.head)].push_back(&r);
      for (int64_t head = 0; head < H; ++head) {
        std::string where = "layer " + std::to_string(layer) + " head " + std::to_string(head);
        if (P > 1) where = atlas.prompt(p).name + ": " + where;
        by_prompt[p].push_back(collect_rows(by_head[static_cast<size_t>(head)], atlas, where));
      }
    }
    for (int64_t head = 0; head < H; ++head) {
      HeadTable t;
      t.layer = layer;
      t.head = head;
      for (size_t p = 0; p < P; ++p) t.dense_cost += atlas.prompt(p).weight * by_prompt[p][head].dense_cost;
      t.dense_cost /= weight_sum;
      // Dense first; its recall is 1 by definition even if the probe summed to 0.99999.
      if (runs(GridCandidate{}))
        t.options.push_back({GridCandidate{}, t.dense_cost, 1.0, 1.0, 0.0, 1.0});
      for (const auto& [candidate, first] : by_prompt[0][head].rows) {
        if (candidate.pattern == Pattern::dense || !filter.allows(candidate.pattern)) continue;
        if (!runs(candidate)) continue;
        // The layer's weight on output error (1 without layer weights).
        const double lw = objective.layer_weight.empty() ? 1.0 : objective.layer_weight[static_cast<size_t>(layer)];
        double cost = 0, recall = 0, worst = 1, err = 0, clipped_err = 0;
        double worst_mixed = std::numeric_limits<double>::infinity();
        bool everywhere = true;
        for (size_t p = 0; p < P && everywhere; ++p) {
          const auto it = by_prompt[p][head].rows.find(candidate);
          if (it == by_prompt[p][head].rows.end()) {
            everywhere = false;
            break;
          }
          const double w = atlas.prompt(p).weight;
          const CandidateRow& r = *it->second;
          cost += w * r.cost;
          recall += w * r.recall;
          worst = std::min(worst, r.recall);
          err += w * r.out_err;
          clipped_err += w * std::min(r.out_err, 1.0);
          worst_mixed = std::min(worst_mixed, r.recall - objective.mix * lw * r.out_err);
        }
        if (!everywhere) continue;
        cost /= weight_sum, recall /= weight_sum, err /= weight_sum, clipped_err /= weight_sum;
        if (objective.kind == ObjectiveKind::recall_floor && worst < objective.floor) continue;
        Option o{candidate, cost, cost / t.dense_cost, recall, err, recall};
        switch (objective.kind) {
          case ObjectiveKind::mean_recall:
          case ObjectiveKind::recall_floor: break;
          case ObjectiveKind::worst_recall: o.recall = o.score = worst; break;
          case ObjectiveKind::output_error: o.score = 1.0 - lw * clipped_err; break;
          case ObjectiveKind::mixed: o.score = recall - objective.mix * lw * err; break;
          case ObjectiveKind::worst_mixed: o.score = worst_mixed; break;
        }
        t.options.push_back(o);
      }
      tables.push_back(std::move(t));
    }
  }
  return tables;
}

}  // namespace hc::search

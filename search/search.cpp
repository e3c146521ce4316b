#include "search/search.h"

#include <cstdio>
#include <map>
#include <sstream>

#include "common/error.h"
#include "io/calibration/export_changes.h"
#include "search/minference_rule.h"

namespace hc::search {

namespace {

std::string heads_named(const std::vector<std::pair<int64_t, int64_t>>& heads) {
  std::string out;
  for (size_t i = 0; i < heads.size() && i < 6; ++i)
    out += (i ? ", L" : "L") + std::to_string(heads[i].first) + "H" + std::to_string(heads[i].second);
  if (heads.size() > 6) out += ", ... (" + std::to_string(heads.size()) + " heads)";
  return out;
}

// Refuses an atlas the target cannot run sparse at all, or whose unrecorded layers (dense) it
// cannot run; returns a note on the grid candidates the target does not run exactly.
std::string check_target(const Atlas& atlas, Target target) {
  const AtlasMeta& meta = atlas.meta();
  const std::string runtime = target_runtime_name(target);
  for (size_t p = 0; p < atlas.prompt_count(); ++p) {
    const std::string dense = target_runs_dense(target, meta.arch, static_cast<int64_t>(atlas.prompt(p).tokens.size()));
    if (!dense.empty())
      throw InputError("--target", std::string(target_name(target)) + ": " + atlas.path() +
                                       (atlas.prompt_count() > 1 ? " prompt " + atlas.prompt(p).name : "") + ": " +
                                       dense + "; record prompts longer than " +
                                       std::to_string(kDualChunkSparseThreshold) + " tokens of a model type with " +
                                       "the backend, or search with another --target");
  }
  if (!runs_exactly(target, GridCandidate{}, atlas) &&
      static_cast<int64_t>(atlas.recorded_layers().size()) < meta.layers)
    throw InputError("--target", std::string(target_name(target)) + ": " + atlas.path() + " records " +
                                     std::to_string(atlas.recorded_layers().size()) + " of " +
                                     std::to_string(meta.layers) + " layers; the others would be dense, which " +
                                     runtime + " does not run as it is: record every layer");
  if (target == Target::headcal || atlas.recorded_layers().empty()) return "";
  // Every head shares the grid: count on the first recorded head.
  std::map<std::string, int> dropped;
  int total = 1, kept = 0;  // dense counts, though the atlas may not store its row
  const RuntimeHead dense = runtime_head(target, GridCandidate{}, meta.defaults(), meta.tokens);
  if (dense.exact()) ++kept;
  else ++dropped[dense.kind];
  for (const CandidateRow& r : atlas.candidates(atlas.recorded_layers().front())) {
    if (r.head != 0 || r.pattern == Pattern::dense) continue;
    ++total;
    const RuntimeHead h = runtime_head(target, r.candidate(), meta.defaults(), meta.tokens);
    if (h.exact()) ++kept;
    else ++dropped[h.kind];
  }
  std::string note = std::string("--target ") + target_name(target) + ": " + std::to_string(kept) + " of " +
                     std::to_string(total) + " candidates (dense included) run exactly in " + runtime;
  std::string left;
  for (const auto& [kind, count] : dropped) left += (left.empty() ? "" : ", ") + std::to_string(count) + " " + kind;
  if (!left.empty()) note += "; left out: " + left;
  return note;
}

}  // namespace

Profile run(const Atlas& atlas, const SearchOptions& given, std::vector<std::string>* notes) {
  SearchOptions options = given;
  const bool minference = options.rule == SearchRule::minference;
  if (!minference) validate_options(options);
  const AtlasMeta& meta = atlas.meta();
  if (!options.layer_weights.layers.empty()) {
    const LayerWeights& lw = options.layer_weights;
    const std::string diff = layer_weights_mismatch(lw, meta.model_fingerprint, meta.layers);
    if (!diff.empty()) throw InputError(options.layer_weights_source, "layer weights " + diff);
    options.objective.layer_weight.assign(static_cast<size_t>(meta.layers), 1.0);
    for (int64_t l = 0; l < meta.layers; ++l) options.objective.layer_weight[static_cast<size_t>(l)] = lw.weight_of(l);
  }
  const std::string target_note = check_target(atlas, options.target);
  Allocation alloc;
  std::vector<HeadTable> tables;
  if (minference) {
    // MInference's rule needs its eight candidates; what it chooses must then run exactly.
    tables = build_tables(atlas, options.patterns, options.objective);
    alloc.choice = minference_choice(tables, atlas.path());
    std::vector<std::pair<int64_t, int64_t>> inexact;
    for (size_t t = 0; t < tables.size(); ++t)
      if (!runs_exactly(options.target, tables[t].options[alloc.choice[t]].candidate, atlas))
        inexact.push_back({tables[t].layer, tables[t].head});
    if (!inexact.empty())
      throw InputError("--target", std::string(target_name(options.target)) + ": MInference's rule chose, for " +
                                       heads_named(inexact) + ", candidates " + target_runtime_name(options.target) +
                                       " does not run as recorded (export lists them)");
  } else {
    tables = build_tables(atlas, options.patterns, options.objective, options.target);
    std::vector<std::pair<int64_t, int64_t>> empty;
    for (const HeadTable& t : tables)
      if (t.options.empty()) empty.push_back({t.layer, t.head});
    if (!empty.empty())
      throw InputError("--target", std::string(target_name(options.target)) + ": no candidate of " + atlas.path() +
                                       " that " + target_runtime_name(options.target) + " runs exactly" +
                                       " (among the patterns allowed) for " + heads_named(empty) +
                                       ": record with a grid that has some, or allow more --patterns");
    alloc = allocate(tables, options);
  }

  Profile p;
  p.model = {meta.model_name, meta.arch, meta.layers, meta.heads, meta.kv_heads, meta.head_dim, meta.model_fingerprint};
  p.calibration.prompt = meta.prompt_description;
  p.calibration.tokens = meta.tokens;
  p.calibration.sha256 = meta.prompt_sha256;
  p.calibration.budget_mode = minference ? "minference-rule" : budget_mode_name(options.mode);
  p.calibration.budget_value = minference ? 0.0 : options.value;
  p.calibration.tool_version = meta.tool_version;
  p.calibration.prompts = static_cast<int64_t>(atlas.prompt_count());
  p.calibration.objective = objective_name(options.objective);
  if (!options.objective.layer_weight.empty())
    p.calibration.objective += " with layer weights " + options.layer_weights_source;
  p.calibration.target = options.target;
  p.defaults = meta.defaults();

  // Dense everywhere first; recorded heads then take their chosen option.
  p.heads.resize(static_cast<size_t>(meta.layers * meta.heads));
  for (int64_t l = 0; l < meta.layers; ++l)
    for (int64_t h = 0; h < meta.heads; ++h) {
      ProfileHead& e = p.heads[static_cast<size_t>(l * meta.heads + h)];
      e.layer = l;
      e.head = h;
    }
  for (size_t t = 0; t < tables.size(); ++t) {
    const Option& o = tables[t].options[alloc.choice[t]];
    ProfileHead& e = p.heads[static_cast<size_t>(tables[t].layer * meta.heads + tables[t].head)];
    e.pattern = o.candidate.pattern;
    e.p1 = o.candidate.p1;
    e.p2 = o.candidate.p2;
    e.recall = o.recall;
    e.density = o.density;
    e.out_err = o.out_err;
  }
  // Heads share N and d, so their dense costs are equal and the mean density is the ratio of
  // total chosen cost to total dense cost (estimator FLOPs aside).
  double sum_recall = 0, sum_density = 0;
  for (const ProfileHead& e : p.heads) {
    sum_recall += e.recall;
    sum_density += e.density;
  }
  p.calibration.mean_recall = sum_recall / static_cast<double>(p.heads.size());
  p.calibration.achieved_density = sum_density / static_cast<double>(p.heads.size());

  if (notes) {
    *notes = alloc.notes;
    if (!target_note.empty()) notes->insert(notes->begin(), target_note);
    int64_t missing = meta.layers - static_cast<int64_t>(atlas.recorded_layers().size());
    if (missing > 0)
      notes->push_back(std::to_string(missing) + " layer(s) not recorded in the atlas: their heads are dense");
    if (!minference && options.mode == BudgetMode::global_density) {
      std::ostringstream s;
      s << "global density: budget " << options.value << " of dense attention's cost, used "
        << alloc.achieved_density() << " over the recorded heads";
      notes->push_back(s.str());
    }
  }
  validate_profile(p, atlas.path());
  return p;
}

void print_summary(const Profile& p, std::ostream& out) {
  char line[160];
  out << "heads per pattern, mean recall and density (share of dense attention's cost) per layer:\n"
         "layer  dense  a_shape  vertical_slash  block_sparse  mean recall  mean density\n";
  int total[kNumPatterns] = {0, 0, 0, 0};
  double all_recall = 0, all_density = 0;
  for (int64_t l = 0; l < p.model.layers; ++l) {
    int count[kNumPatterns] = {0, 0, 0, 0};
    double recall = 0, density = 0;
    for (int64_t h = 0; h < p.model.heads; ++h) {
      const ProfileHead& e = p.at(l, h);
      ++count[static_cast<int>(e.pattern)];
      recall += e.recall;
      density += e.density;
    }
    for (int k = 0; k < kNumPatterns; ++k) total[k] += count[k];
    all_recall += recall;
    all_density += density;
    const double H = static_cast<double>(p.model.heads);
    std::snprintf(line, sizeof line, "%5lld  %5d  %7d  %14d  %12d  %11.4f  %12.4f\n", static_cast<long long>(l), count[0],
                  count[1], count[2], count[3], recall / H, density / H);
    out << line;
  }
  const double n = static_cast<double>(p.model.layers * p.model.heads);
  std::snprintf(line, sizeof line, "  all  %5d  %7d  %14d  %12d  %11.4f  %12.4f\n", total[0], total[1], total[2], total[3],
                all_recall / n, all_density / n);
  out << line;
  out << "budget: " << p.calibration.budget_mode << " " << p.calibration.budget_value << "  (" << p.model.layers
      << " layers x " << p.model.heads << " heads, N = " << p.calibration.tokens << ")";
  if (p.calibration.target != Target::headcal) out << ", target " << target_name(p.calibration.target);
  out << "\n";
}

PatternFilter parse_pattern_filter(const std::string& list) {
  if (list.empty() || list == "all") return {};
  PatternFilter f{false, false, false};
  std::stringstream in(list);
  std::string name;
  while (std::getline(in, name, ',')) {
    Pattern kind;
    if (!find_pattern(name, &kind))
      throw InputError("--patterns", "unknown pattern '" + name + "' (known: a_shape, vertical_slash, block_sparse, dense)");
    if (kind == Pattern::a_shape) f.a_shape = true;
    if (kind == Pattern::vertical_slash) f.vertical_slash = true;
    if (kind == Pattern::block_sparse) f.block_sparse = true;
  }
  return f;
}

}  // namespace hc::search

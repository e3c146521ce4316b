#include "search/search.h"

#include <cstdio>
#include <sstream>

#include "common/error.h"
#include "search/minference_rule.h"

namespace hc::search {

Profile run(const Atlas& atlas, const SearchOptions& options, std::vector<std::string>* notes) {
  const bool minference = options.rule == SearchRule::minference;
  if (!minference) validate_options(options);
  const AtlasMeta& meta = atlas.meta();
  std::vector<HeadTable> tables = build_tables(atlas, options.patterns, options.objective);
  Allocation alloc;
  if (minference) {
    alloc.choice = minference_choice(tables, atlas.path());
  } else {
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
  int total[kNumPatternKinds] = {0, 0, 0, 0};
  double all_recall = 0, all_density = 0;
  for (int64_t l = 0; l < p.model.layers; ++l) {
    int count[kNumPatternKinds] = {0, 0, 0, 0};
    double recall = 0, density = 0;
    for (int64_t h = 0; h < p.model.heads; ++h) {
      const ProfileHead& e = p.at(l, h);
      ++count[static_cast<int>(e.pattern)];
      recall += e.recall;
      density += e.density;
    }
    for (int k = 0; k < kNumPatternKinds; ++k) total[k] += count[k];
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
      << " layers x " << p.model.heads << " heads, N = " << p.calibration.tokens << ")\n";
}

PatternFilter parse_pattern_filter(const std::string& list) {
  if (list.empty() || list == "all") return {};
  PatternFilter f{false, false, false};
  std::stringstream in(list);
  std::string name;
  while (std::getline(in, name, ',')) {
    PatternKind kind;
    if (!parse_pattern_kind(name, &kind))
      throw InputError("--patterns", "unknown pattern '" + name + "' (known: a_shape, vertical_slash, block_sparse, dense)");
    if (kind == PatternKind::a_shape) f.a_shape = true;
    if (kind == PatternKind::vertical_slash) f.vertical_slash = true;
    if (kind == PatternKind::block_sparse) f.block_sparse = true;
  }
  return f;
}

}  // namespace hc::search

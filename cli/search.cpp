// headcal search: atlas -> profile under a budget, on the CPU from the atlas alone (seconds).
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "cli/command.h"
#include "common/error.h"
#include "io/atlas.h"
#include "io/profile.h"
#include "search/search.h"

namespace hc::cli {

namespace {

struct SearchCliOptions {
  std::string atlas;
  std::string out;
  double density = 0, global_density = 0, min_recall = 0;
  std::string patterns = "all";
  bool quiet = false;
};

Runner setup(CLI::App& sub) {
  auto o = std::make_shared<SearchCliOptions>();
  sub.add_option("--atlas", o->atlas, "atlas written by record or calibrate (HDF5)")->required();
  sub.add_option("--out", o->out, "profile to write (YAML)")->required();
  auto* d = sub.add_option("--density", o->density, "per head: best recall with density <= D, D in (0, 1]");
  auto* g = sub.add_option("--global-density", o->global_density,
                           "all heads: maximum total recall with total cost <= D x dense cost, D in (0, 1]");
  auto* r = sub.add_option("--min-recall", o->min_recall, "per head: cheapest candidate with recall >= R, R in (0, 1]");
  d->excludes(g)->excludes(r);
  g->excludes(r);
  sub.add_option("--patterns", o->patterns, "patterns search may choose: all, or a list like a_shape,vertical_slash");
  sub.add_flag("--quiet", o->quiet, "no per-layer summary");

  return [o, d, g, r]() {
    search::SearchOptions opts;
    if (d->count()) opts.mode = search::BudgetMode::density, opts.value = o->density;
    else if (g->count()) opts.mode = search::BudgetMode::global_density, opts.value = o->global_density;
    else if (r->count()) opts.mode = search::BudgetMode::min_recall, opts.value = o->min_recall;
    else throw InputError("search", "give one budget: --density D, --global-density D or --min-recall R");
    opts.patterns = search::parse_pattern_filter(o->patterns);
    search::validate_options(opts);

    Atlas atlas = Atlas::open(o->atlas);
    std::vector<std::string> notes;
    Profile profile = search::run(atlas, opts, &notes);
    for (const std::string& n : notes) std::fprintf(stderr, "headcal: note: %s\n", n.c_str());
    if (!o->quiet) search::print_summary(profile, std::cout);
    write_profile(profile, o->out);
    std::cout << "wrote " << o->out << "\n";
    return 0;
  };
}

}  // namespace

HC_REGISTER_COMMAND("search", "choose a pattern per head from an atlas under a budget (CPU, seconds)", setup);

}  // namespace hc::cli

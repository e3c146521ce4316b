// headcal search: atlas -> profile under a budget, on the CPU from the atlas alone (seconds).
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "cli/budget_options.h"
#include "cli/command.h"
#include "cli/option_checks.h"
#include "io/calibration/atlas.h"
#include "io/calibration/profile.h"
#include "search/search.h"

namespace hc::cli {

namespace {

struct SearchCliOptions {
  std::string atlas;
  std::string out;
  bool quiet = false;
};

Runner setup(CLI::App& sub) {
  auto o = std::make_shared<SearchCliOptions>();
  sub.add_option("--atlas", o->atlas, "atlas written by record or calibrate (HDF5)")->required();
  sub.add_option("-o,--out", o->out, "profile to write (YAML)")->required()->check(output_file());
  auto budget = std::make_shared<BudgetOptions>(sub);
  sub.add_flag("--quiet", o->quiet, "no per-layer summary");

  return [o, budget]() {
    const search::SearchOptions opts = budget->resolve();

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

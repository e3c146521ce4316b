// headcal calibrate: record (prefill + statistics + candidate probes -> atlas) then search
// (atlas -> profile) in one command, the main job. Prints the per-layer summary.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "calib/device_select.h"
#include "cli/budget_options.h"
#include "cli/command.h"
#include "cli/option_checks.h"
#include "cli/record_options.h"
#include "common/error.h"
#include "io/profile.h"
#include "search/search.h"

namespace hc::cli {

namespace {

struct CalibrateCliOptions {
  std::string out;
  std::string atlas;
};

Runner setup(CLI::App& sub) {
  std::shared_ptr<RecordCliOptions> rec = add_record_options(sub);
  auto o = std::make_shared<CalibrateCliOptions>();
  sub.add_option("--out", o->out, "profile to write (YAML)")->required()->check(output_file());
  sub.add_option("--atlas", o->atlas, "atlas to write (default: the profile's name with .atlas.h5)")
      ->check(output_file());
  auto budget = std::make_shared<BudgetOptions>(sub);  // default: --global-density 0.2

  return [rec, o, budget]() {
    const auto t0 = std::chrono::steady_clock::now();
    if (rec->no_probes) throw InputError("--no-probes", "calibrate needs the candidate probes to search");
    search::SearchOptions default_budget;
    default_budget.mode = search::BudgetMode::global_density;
    default_budget.value = 0.2;
    const search::SearchOptions search_opts = budget->resolve(default_budget);  // before an expensive record

    std::string atlas_path = o->atlas;
    if (atlas_path.empty()) {
      const std::filesystem::path p(o->out);
      atlas_path = (p.parent_path() / (p.stem().string() + ".atlas.h5")).string();
    }
    PreparedRecord prepared = prepare_record(*rec);
    std::fprintf(stderr, "calibrating %s: %zu tokens, %zu candidates per head (+ dense), %s backend\n",
                 rec->model.c_str(), prepared.prompt.tokens.size(), prepared.grid_candidates,
                 device_name(prepared.options.device));
    const RecordSummary summary = record_atlas(*prepared.model, prepared.prompt.tokens, atlas_path, prepared.options);

    const auto t_search = std::chrono::steady_clock::now();
    std::vector<std::string> notes;
    const Profile profile = search::run(Atlas::open(atlas_path), search_opts, &notes);
    write_profile(profile, o->out);
    const auto t_end = std::chrono::steady_clock::now();

    for (const auto& note : notes) std::fprintf(stderr, "headcal: note: %s\n", note.c_str());
    search::print_summary(profile, std::cout);
    std::cout << "\n" << std::flush;
    print_record_summary(summary);
    std::printf("search %.2f s, total %.2f s\nwrote %s and %s\n",
                std::chrono::duration<double>(t_end - t_search).count(),
                std::chrono::duration<double>(t_end - t0).count(), o->out.c_str(), atlas_path.c_str());
    return 0;
  };
}

}  // namespace

HC_REGISTER_COMMAND("calibrate", "record a prompt's attention and search a per-head profile (the main job)", setup);

}  // namespace hc::cli

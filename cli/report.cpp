// headcal report: CSV tables and one self-contained HTML page from an atlas (and a profile).
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/option_checks.h"
#include "io/calibration/atlas.h"
#include "io/calibration/layer_weights.h"
#include "io/calibration/profile.h"
#include "report/report.h"

namespace hc::cli {

namespace {

struct ReportCliOptions {
  std::string atlas;
  std::string profile;
  std::string out;
  std::vector<std::string> validations;
  std::string layer_weights;
};

Runner setup(CLI::App& sub) {
  auto o = std::make_shared<ReportCliOptions>();
  sub.add_option("--atlas", o->atlas, "atlas (HDF5)")->required();
  sub.add_option("--profile", o->profile, "profile of the same model to show (default: per-head choice at density 0.25)");
  sub.add_option("-o,--out", o->out, "folder for candidates.csv, heads.csv and report.html")
      ->required()
      ->check(output_folder());
  sub.add_option("--validation", o->validations,
                 "validation records (headcal validate --json); with several, the page plots quality against density");
  sub.add_option("--layer-weights", o->layer_weights, "layer weights (headcal sensitivity) to chart beside each layer's density");
  return [o]() {
    Atlas atlas = Atlas::open(o->atlas);
    std::unique_ptr<Profile> profile;
    if (!o->profile.empty()) profile = std::make_unique<Profile>(read_profile(o->profile));
    const std::vector<report::ValidationRecord> validations = report::read_validation_records(o->validations);
    std::unique_ptr<LayerWeights> weights;
    if (!o->layer_weights.empty()) weights = std::make_unique<LayerWeights>(read_layer_weights(o->layer_weights));
    report::ReportFiles files =
        report::write_report(atlas, profile.get(), o->out, validations, weights.get(), o->layer_weights);
    std::cout << "wrote " << files.html << "\nwrote " << files.candidates_csv << "\nwrote " << files.heads_csv << "\n";
    return 0;
  };
}

}  // namespace

HC_REGISTER_COMMAND("report", "CSV tables and a self-contained HTML page from an atlas (and profile)", setup);

}  // namespace hc::cli

// headcal check: a profile against its schema (format, version, one entry per (layer, head),
// parameters in range) and, given a model or an atlas, against its shapes. No GPU.
#include <iostream>
#include <memory>
#include <string>

#include "calib/record.h"
#include "cli/command.h"
#include "common/error.h"
#include "io/calibration/atlas.h"
#include "io/model/model_file.h"
#include "io/calibration/profile.h"

namespace hc::cli {

namespace {

struct CheckCliOptions {
  std::string profile;
  std::string model;
  std::string atlas;
};

Runner setup(CLI::App& sub) {
  auto o = std::make_shared<CheckCliOptions>();
  sub.add_option("profile", o->profile, "profile to check (YAML)")->required();
  sub.add_option("--model", o->model,
                 "model (GGUF, Hugging Face directory or random:<shape>) whose shapes the profile must fit");
  sub.add_option("--atlas", o->atlas, "atlas the profile must come from (same model fingerprint and shapes)");

  return [o]() {
    Profile p = read_profile(o->profile);  // schema, version, entries, ranges
    if (!o->model.empty()) {
      std::unique_ptr<ModelFile> model = open_model_spec(o->model);
      std::string diff = profile_shape_mismatch(p.model, model->config());
      if (!diff.empty()) throw InputError(o->profile, "does not fit model " + o->model + ": " + diff);
      if (!p.model.fingerprint.empty() && p.model.fingerprint != model->fingerprint())
        std::cerr << "headcal: note: " << o->profile << " was calibrated on other weights (fingerprint "
                  << p.model.fingerprint << ", model " << model->fingerprint() << "); shapes match\n";
    }
    if (!o->atlas.empty()) {
      Atlas atlas = Atlas::open(o->atlas);
      const AtlasMeta& m = atlas.meta();
      ProfileModel from_atlas{m.model_name, m.arch, m.layers, m.heads, m.kv_heads, m.head_dim, m.model_fingerprint};
      std::string diff = profile_model_mismatch(p.model, from_atlas, "profile", "atlas");
      if (!diff.empty()) throw InputError(o->profile, "is not from atlas " + o->atlas + ": " + diff);
    }
    int counts[kNumPatterns] = {0, 0, 0, 0};
    for (const ProfileHead& h : p.heads) ++counts[static_cast<int>(h.pattern)];
    std::cout << o->profile << ": ok (" << kProfileFormat << " v" << kProfileVersion << ", " << p.model.layers
              << " layers x " << p.model.heads << " heads; dense " << counts[0] << ", a_shape " << counts[1]
              << ", vertical_slash " << counts[2] << ", block_sparse " << counts[3] << ")\n";
    return 0;
  };
}

}  // namespace

HC_REGISTER_COMMAND("check", "check a profile's schema and, with --model/--atlas, its shapes (no GPU)", setup);

}  // namespace hc::cli

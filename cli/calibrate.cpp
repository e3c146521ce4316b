// headcal calibrate: record (prefill + statistics + candidate probes -> atlas) then search
// (atlas -> profile) in one command, the main job. Prints the per-layer summary. --target (with the
// budget options) makes search choose only what that runtime runs exactly. --weigh-layers adds the
// layer weights (calib/layer_sensitivity.h) measured on the calibration prompts between the two.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "calib/device_select.h"
#include "calib/layer_sensitivity.h"
#include "calib/validate.h"
#include "cli/budget_options.h"
#include "cli/command.h"
#include "cli/option_checks.h"
#include "cli/record_options.h"
#include "cli/validation_setup.h"
#include "common/error.h"
#include "io/calibration/export_changes.h"
#include "io/calibration/profile.h"
#include "search/search.h"

namespace hc::cli {

namespace {

struct CalibrateCliOptions {
  std::string out;
  std::string atlas;
  double weigh_layers = -1;  // density of the profile whose layer weights are measured; < 0: none
};

// The layer weights of the profile `search_opts` gives at `density` (weights of another file
// dropped), measured on the calibration prompts with a validating engine; written to `path`.
LayerWeights measure_calibration_weights(const PreparedRecord& prepared, const Atlas& atlas,
                                         search::SearchOptions search_opts, double density, const std::string& path) {
  search_opts.value = density;
  search_opts.layer_weights = {};
  search_opts.layer_weights_source.clear();
  const Profile unweighted = search::run(atlas, search_opts);
  const std::vector<ValidationPrompt> prompts = validation_prompts(prepared.prompts);
  std::unique_ptr<Engine> engine =
      make_validation_engine(*prepared.model, prepared.options.device, prepared.options, unweighted, prompts);
  ValidateOptions vopts;
  vopts.n_threads = prepared.options.n_threads;
  std::fprintf(stderr, "layer weights: each of %lld layers sparse alone (the profile at density %g), %zu prompt(s)\n",
               static_cast<long long>(unweighted.model.layers), density, prompts.size());
  LayerWeights weights = measure_layer_sensitivity(*engine, prepared.model->fingerprint(), unweighted, prompts, vopts);
  weights.profile = "search at --global-density " + std::to_string(density) + " of " + atlas.path();
  weights.prompts = prepared.prompts.description;
  write_layer_weights(weights, path);
  return weights;
}

// The commands that naturally follow, with this run's files filled in, ready to paste.
void print_next_steps(const RecordCliOptions& rec, const PreparedRecord& prepared, const std::string& profile,
                      const std::string& atlas, Target target, const std::string& weights) {
  const std::filesystem::path p(profile);
  const std::string stem = (p.parent_path() / p.stem()).string();
  const std::string device = prepared.options.device == DeviceKind::Cpu ? " --device cpu" : "";
  // Validation on other prompts than calibration's (the shipped held-out set after a set); random-weight
  // models have no text to build one.
  const bool random_weights = rec.model.rfind("random:", 0) == 0;
  const std::string prompt = random_weights             ? " --seed 2"
                             : !rec.prompt_set.empty() ? " --prompt-set prompts/held-out.yaml"
                                                       : " --generate passkey";
  size_t length = 0;
  for (const RecordPrompt& r : prepared.records) length = std::max(length, r.tokens.size());
  // The export for the profile's runtime (MInference for a headcal profile).
  const Target runtime = target == Target::headcal ? Target::minference : target;
  const std::string model_dir = std::filesystem::is_directory(rec.model) ? rec.model : "MODEL_DIR";
  const std::string export_cmd = runtime == Target::dual_chunk
                                     ? "headcal export " + profile + " --format dual-chunk " + model_dir
                                     : "headcal export " + profile + " --format minference -o " + stem +
                                           ".minference.json";
  const std::string weights_arg = weights.empty() ? "" : " --layer-weights " + weights;
  std::printf("next:\n"
              "  headcal validate --model %s --profile %s%s --length %zu%s --json %s.validation.json\n"
              "  headcal report --atlas %s --profile %s --validation %s.validation.json%s -o %s-report\n"
              "  %s\n",
              rec.model.c_str(), profile.c_str(), prompt.c_str(), length, device.c_str(), stem.c_str(),
              atlas.c_str(), profile.c_str(), stem.c_str(), weights_arg.c_str(), stem.c_str(), export_cmd.c_str());
  // The runtime may run some patterns differently (io/calibration/export_changes.h): say so before export refuses.
  size_t changed = 0;
  for (const ExportChange& c : export_changes(read_profile(profile), runtime)) changed += c.layer >= 0;
  if (changed)
    std::printf("    (%s would run %zu head(s) differently: export lists them and writes the file only "
                "with --force; search --target %s chooses only what it runs exactly)\n",
                target_runtime_name(runtime), changed, target_name(runtime));
}

// A target that would run every head dense, or could not run unrecorded (dense) layers: refused
// before the recording.
void check_target_before_record(Target target, const RecordCliOptions& rec, const PreparedRecord& prepared) {
  if (target == Target::headcal) return;
  const ModelConfig& config = prepared.model->config();
  for (const RecordPrompt& r : prepared.records) {
    const std::string dense = target_runs_dense(target, config.arch, static_cast<int64_t>(r.tokens.size()));
    if (!dense.empty())
      throw InputError("--target", std::string(target_name(target)) + ": " + dense + "; calibrate prompts longer than " +
                                       std::to_string(kDualChunkSparseThreshold) +
                                       " tokens of a model type with the backend, or use another --target");
  }
  const int last = prepared.options.last_layer < 0 ? static_cast<int>(config.n_layers) - 1 : prepared.options.last_layer;
  if (prepared.options.first_layer != 0 || last != config.n_layers - 1)
    throw InputError("--layers", "'" + rec.layers + "' leaves layers dense, which " + target_runtime_name(target) +
                                     " does not run as it is (--target " + target_name(target) +
                                     "): record every layer");
}

Runner setup(CLI::App& sub) {
  std::shared_ptr<RecordCliOptions> rec = add_record_options(sub);
  auto o = std::make_shared<CalibrateCliOptions>();
  sub.add_option("-o,--out", o->out, "profile to write (YAML)")->required()->check(output_file());
  sub.add_option("--atlas", o->atlas, "atlas to write (default: the profile's name with .atlas.h5)")
      ->check(output_file());
  auto budget = std::make_shared<BudgetOptions>(sub);  // default: --global-density 0.2
  sub.add_option("--weigh-layers", o->weigh_layers,
                 "measure layer weights on the calibration prompts with the profile searched at density D "
                 "(written beside the profile as .layer-weights.yaml) and search with them; one sparse prefill "
                 "per layer and prompt")
      ->check(finite_in_range(1e-9, 1.0));

  return [rec, o, budget]() {
    const auto t0 = std::chrono::steady_clock::now();
    if (rec->no_probes) throw InputError("--no-probes", "calibrate needs the candidate probes to search");
    search::SearchOptions default_budget;
    default_budget.mode = search::BudgetMode::global_density;
    default_budget.value = 0.2;
    search::SearchOptions search_opts = budget->resolve(default_budget);  // before an expensive record
    if (o->weigh_layers > 0) {
      if (search_opts.rule == search::SearchRule::minference)
        throw InputError("--weigh-layers", "MInference's rule has no output-error term to weigh: drop one of them");
      if (search_opts.mode != search::BudgetMode::global_density)
        throw InputError("--weigh-layers", "layer weights trade error between layers: use --global-density");
      if (!search_opts.layer_weights.layers.empty())
        throw InputError("--weigh-layers", "measures the layer weights that --layer-weights would give: drop one of them");
    }

    std::string atlas_path = o->atlas;
    if (atlas_path.empty()) {
      const std::filesystem::path p(o->out);
      atlas_path = (p.parent_path() / (p.stem().string() + ".atlas.h5")).string();
    }
    PreparedRecord prepared = prepare_record(*rec);
    check_target_before_record(search_opts.target, *rec, prepared);
    std::fprintf(stderr, "calibrating %s on the %s: %s, %zu candidate patterns per head (and dense)\n",
                 rec->model.c_str(), prepared.options.device == DeviceKind::Cuda ? "GPU" : "CPU",
                 prepared.prompts.description.c_str(), prepared.grid_candidates);
    const RecordSummary summary = record_atlas_set(*prepared.model, prepared.records, atlas_path, prepared.options);

    const Atlas atlas = Atlas::open(atlas_path);
    std::string weights_path;
    double weights_s = 0;
    if (o->weigh_layers > 0) {
      const auto t_weights = std::chrono::steady_clock::now();
      const std::filesystem::path p(o->out);
      weights_path = (p.parent_path() / (p.stem().string() + ".layer-weights.yaml")).string();
      search_opts.layer_weights = measure_calibration_weights(prepared, atlas, search_opts, o->weigh_layers, weights_path);
      search_opts.layer_weights_source = weights_path;
      weights_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_weights).count();
    }
    const auto t_search = std::chrono::steady_clock::now();
    std::vector<std::string> notes;
    const Profile profile = search::run(atlas, search_opts, &notes);
    write_profile(profile, o->out);
    const auto t_end = std::chrono::steady_clock::now();

    for (const auto& note : notes) std::fprintf(stderr, "headcal: note: %s\n", note.c_str());
    search::print_summary(profile, std::cout);
    std::cout << "\n" << std::flush;
    print_record_summary(summary);
    if (!weights_path.empty()) std::printf("layer weights %.2f s (%s)\n", weights_s, weights_path.c_str());
    std::printf("search %.2f s, total %.2f s\nwrote %s and %s\n",
                std::chrono::duration<double>(t_end - t_search).count(),
                std::chrono::duration<double>(t_end - t0).count(), o->out.c_str(), atlas_path.c_str());
    print_next_steps(*rec, prepared, o->out, atlas_path, search_opts.target, weights_path);
    return 0;
  };
}

}  // namespace

HC_REGISTER_COMMAND("calibrate", "record a prompt's attention and search a per-head profile (the main job)", setup);

}  // namespace hc::cli

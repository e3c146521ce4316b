// headcal sensitivity: per layer, the next-token KL when only that layer runs its profiled sparse
// heads, over a prompt set (the calibration set, never the held-out one), and the layer weights
// search --layer-weights reads (calib/layer_sensitivity.h, io/calibration/layer_weights.h).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "calib/device_select.h"
#include "calib/layer_sensitivity.h"
#include "calib/record.h"
#include "calib/validate.h"
#include "cli/command.h"
#include "cli/option_checks.h"
#include "cli/prompt_options.h"
#include "cli/validation_setup.h"
#include "common/error.h"
#include "io/calibration/layer_weights.h"
#include "io/calibration/profile.h"

namespace hc::cli {

namespace {

struct SensitivityCliOptions {
  std::string model;
  std::string profile;
  std::string prompt_set;
  std::string out;
  std::string device = "auto";
  int threads = 0;
};

Runner setup(CLI::App& sub) {
  auto o = std::make_shared<SensitivityCliOptions>();
  sub.add_option("--model", o->model, "GGUF file, Hugging Face directory, or random:<shape>[:SEED]")->required();
  sub.add_option("--profile", o->profile, "profile whose per-layer choices are measured (YAML)")->required();
  auto spec = add_prompt_options(sub);
  sub.add_option("--prompt-set", o->prompt_set, "prompt set (YAML) to measure on: the calibration set");
  sub.add_option("-o,--out", o->out, "layer weights to write (YAML)")->required()->check(output_file());
  sub.add_option("--device", o->device, "cuda, cpu or auto (CUDA when a GPU is present)");
  sub.add_option("--threads", o->threads, "CPU threads; 0: all")->check(CLI::Range(0, 4096));
  return [o, spec]() {
    std::string notice;
    const DeviceKind device = resolve_device(o->device, &notice);
    std::unique_ptr<ModelFile> model = open_model_spec(o->model);
    const Profile profile = read_profile(o->profile);
    check_profile_for_model(profile, model->config(), model->fingerprint(), false, o->profile, nullptr);
    const RunPrompts run = run_prompts_for_model(*spec, o->prompt_set, o->model, *model, device);
    if (!notice.empty()) std::fprintf(stderr, "headcal: notice: %s\n", notice.c_str());

    const std::vector<ValidationPrompt> prompts = validation_prompts(run);
    ValidateOptions vopts;
    vopts.n_threads = o->threads;
    vopts.profile_source = o->profile;
    RecordOptions engine_opts;
    engine_opts.n_threads = o->threads;
    std::unique_ptr<Engine> engine = make_validation_engine(*model, device, engine_opts, profile, prompts);

    std::printf("model %s, profile %s, %s: one layer sparse at a time\n", o->model.c_str(), o->profile.c_str(),
                run.description.c_str());
    std::printf("%6s %12s %12s\n", "layer", "KL (nats)", "sum out_err");
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t layers = profile.model.layers;
    LayerWeights weights = measure_layer_sensitivity(
        *engine, model->fingerprint(), profile, prompts, vopts, [&](const LayerWeight& l) {
          if (l.kl == 0 && l.out_err == 0) std::printf("%6lld %12s %12s\n", static_cast<long long>(l.layer), "dense", "-");
          else std::printf("%6lld %12.4e %12.4f\n", static_cast<long long>(l.layer), l.kl, l.out_err);
          std::fflush(stdout);
          // Progress with an ETA on stderr: the first layer also pays each prompt's dense prefill.
          const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
          const int64_t done = l.layer + 1;
          std::fprintf(stderr, "sensitivity: layer %lld/%lld, %.1f s, about %.0f s left\n", static_cast<long long>(done),
                       static_cast<long long>(layers), elapsed,
                       elapsed / static_cast<double>(done) * static_cast<double>(layers - done));
        });
    weights.profile = o->profile;
    weights.prompts = run.description;
    std::printf("weights (KL per unit of output error, mean 1):");
    for (const LayerWeight& l : weights.layers) std::printf(" %.2f", l.weight);
    std::printf("\n");
    write_layer_weights(weights, o->out);
    std::printf("wrote %s\n", o->out.c_str());
    return 0;
  };
}

}  // namespace

HC_REGISTER_COMMAND("sensitivity", "per-layer next-token KL of a profile, as layer weights for search", setup);

}  // namespace hc::cli

// headcal validate: prefill with every head on its profiled sparse kernel next to the dense
// prefill; report recall, next-token KL and top-1 agreement, hidden-state error and attention
// time, on one prompt or on every prompt of a set; exit 1 when --min-recall / --max-kl / --min-top1
// are not met on some prompt (CI). --target (default: the profile's) runs every head as that runtime
// would (io/calibration/export_changes.h, profile_as_run) before validation.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "calib/device_select.h"
#include "calib/random_model.h"
#include "calib/record.h"
#include "calib/validate.h"
#include "cli/command.h"
#include "cli/option_checks.h"
#include "cli/prompt_options.h"
#include "cli/validation_setup.h"
#include "common/error.h"
#include "io/calibration/export_changes.h"
#include "io/calibration/profile.h"
#include "io/prompt/prompt.h"
#include "io/tokenizer/tokenizer.h"
#include "kernels/sparse/pattern.h"

namespace hc::cli {

namespace {

struct ValidateCliOptions {
  std::string model;
  std::string profile;
  std::string device = "auto";
  int threads = 0;
  double min_recall = -1;
  double max_kl = -1;
  double min_top1 = -1;
  std::string prompt_set;
  std::string method;
  std::string json_out;
  std::string target;  // empty: the profile's
  bool strict = false;
  bool per_head = false;
};

void print_heads(const ValidationReport& r) {
  std::printf("%-6s %-5s %-28s %8s %8s %8s %8s\n", "layer", "head", "pattern", "recall", "profile", "out_err",
              "density");
  for (const HeadValidation& h : r.heads)
    std::printf("%-6d %-5d %-28s %8.4f %8.4f %8.4f %8.4f\n", h.layer, h.head, kernels::describe(h.config).c_str(),
                h.recall, h.profile_recall, h.out_err, h.density);
}

Runner setup(CLI::App& sub) {
  auto o = std::make_shared<ValidateCliOptions>();
  sub.add_option("--model", o->model, "GGUF file, Hugging Face directory, or random:<shape>[:SEED]")->required();
  sub.add_option("--profile", o->profile, "profile to validate (YAML)")->required();
  auto spec = add_prompt_options(sub);
  sub.add_option("--prompt-set", o->prompt_set,
                 "prompt set (YAML): validate on every prompt; thresholds apply to each (so to the worst)");
  sub.add_option("--device", o->device, "cuda, cpu or auto (CUDA when a GPU is present)");
  sub.add_option("--threads", o->threads, "CPU threads (engine, attention, comparisons); 0: all")
      ->check(CLI::Range(0, 4096));
  sub.add_option("--min-recall", o->min_recall, "fail (exit 1) when the mean recall over heads is below R")
      ->check(finite_in_range(0.0, 1.0));
  sub.add_option("--max-kl", o->max_kl, "fail (exit 1) when the mean next-token KL (nats) is above K")
      ->check(finite_in_range(0.0, 1e30));
  sub.add_option("--min-top1", o->min_top1, "fail (exit 1) when the next-token top-1 agreement is below T")
      ->check(finite_in_range(0.0, 1.0));
  sub.add_option("--json", o->json_out, "also write the validation record as JSON to this file")
      ->check(output_file());
  sub.add_option("--method", o->method,
                 "label of how the profile was made, stored in the JSON record for frontier plots "
                 "(default: the profile's file name)");
  sub.add_option("--target", o->target,
                 "run each head as this runtime runs it: headcal, minference or dual-chunk (default: the "
                 "profile's calibration.target, else headcal)");
  sub.add_flag("--strict", o->strict, "a model fingerprint mismatch is an error, not a warning");
  sub.add_flag("--per-head", o->per_head, "print every head's recall, output error and density");
  return [o, spec]() {
    std::string notice;
    const DeviceKind device = resolve_device(o->device, &notice);

    Target target = Target::headcal;
    if (!o->target.empty() && !parse_target(o->target, &target))
      throw InputError("--target", "unknown target '" + o->target + "' (headcal, minference, dual-chunk)");

    // Cheap checks first: the profile must fit the model before any weight is loaded.
    std::unique_ptr<ModelFile> model = open_model_spec(o->model);
    const Profile written = read_profile(o->profile);
    if (o->target.empty()) target = written.calibration.target;
    check_profile_for_model(written, model->config(), model->fingerprint(), o->strict, o->profile, nullptr);
    const RunPrompts run = run_prompts_for_model(*spec, o->prompt_set, o->model, *model, device);

    // The heads as the target runs them, at the prompts' length (dual-chunk: sparse only above its threshold).
    int64_t shortest = 0;
    for (const SetPrompt& p : run.prompts) {
      const int64_t n = static_cast<int64_t>(p.prompt.tokens.size());
      shortest = shortest == 0 ? n : std::min(shortest, n);
      const std::string dense = target_runs_dense(target, model->config().arch, n);
      if (!dense.empty())
        throw InputError("--target", std::string(target_name(target)) + (run.is_set ? ": prompt " + p.name : "") +
                                         ": " + dense + "; nothing sparse to validate");
    }
    std::vector<ExportChange> changes;
    const Profile profile = profile_as_run(written, target, shortest, o->profile, &changes);
    if (!notice.empty()) std::fprintf(stderr, "headcal: notice: %s\n", notice.c_str());  // after input errors
    if (!changes.empty())
      std::fprintf(stderr, "headcal: note: --target %s: %zu head(s) run differently from the profile; validated as %s "
                           "runs them:\n%s",
                   target_name(target), changes.size(), target_runtime_name(target),
                   format_export_changes(changes, target).c_str());

    ValidateOptions vopts;
    vopts.n_threads = o->threads;
    vopts.strict = o->strict;
    vopts.min_recall = o->min_recall;
    vopts.max_kl = o->max_kl;
    vopts.min_top1 = o->min_top1;
    vopts.profile_source = o->profile;
    const bool tty = stderr_is_tty();
    vopts.on_progress = [tty](const ValidateProgress& p) {
      char text[160];
      std::snprintf(text, sizeof text, "%s prefill: layer %d/%d  %.0f s  ETA %.0f s", p.phase, p.layers_done,
                    p.layers_total, p.elapsed_s, p.eta_s());
      print_progress_line(text, p.layers_done, p.layers_total, tty);
    };
    const std::vector<ValidationPrompt> prompts = validation_prompts(run);
    RecordOptions engine_opts;
    engine_opts.n_threads = o->threads;
    std::unique_ptr<Engine> engine = make_validation_engine(*model, device, engine_opts, profile, prompts);

    std::printf("model %s, profile %s, %s%s\n", o->model.c_str(), o->profile.c_str(), run.description.c_str(),
                target == Target::headcal ? "" : (std::string(", target ") + target_name(target)).c_str());
    std::fflush(stdout);  // before the progress lines on stderr
    bool warned = false;
    auto print_prompt = [&](const PromptValidation& pv) {
      if (!warned)
        for (const std::string& w : pv.report.warnings) std::fprintf(stderr, "headcal: warning: %s\n", w.c_str());
      warned = true;
      if (run.is_set) std::printf("prompt %s: %s\n", pv.name.c_str(), pv.description.c_str());
      std::fputs(validation_summary(pv.report).c_str(), stdout);
      if (o->per_head) print_heads(pv.report);
      std::fflush(stdout);
    };
    const SetValidation result = validate_prompt_set(*engine, model->fingerprint(), profile, prompts, run.description,
                                                     run.sha256, vopts, print_prompt);
    if (run.is_set) std::fputs(set_validation_summary(result).c_str(), stdout);
    if (!o->json_out.empty()) {
      // A profile validated for another runtime than it was made for is labelled with that target.
      std::string method = o->method.empty() ? std::filesystem::path(o->profile).stem().string() : o->method;
      if (o->method.empty() && target != written.calibration.target) method += std::string("@") + target_name(target);
      const ValidationReport& first = result.prompts.front().report;
      write_file_atomic(o->json_out, run.is_set ? set_validation_json(result, o->model, o->profile, method)
                                                : validation_json(first, o->model, o->profile, run.description,
                                                                  run.sha256));
      std::printf("wrote %s\n", o->json_out.c_str());
    }
    std::fflush(stdout);
    if (!result.failures.empty()) {
      std::string what = "the profile falls short";
      for (size_t i = 0; i < result.failures.size(); ++i) what += (i ? "; " : ": ") + result.failures[i];
      throw ValidationError(what);
    }
    return 0;
  };
}

}  // namespace

HC_REGISTER_COMMAND("validate", "prefill with each head on its profiled sparse kernel and compare with dense", setup);

}  // namespace hc::cli

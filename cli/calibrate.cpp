// headcal calibrate: record (prefill + statistics + candidate probes -> atlas) then search
// (atlas -> profile) in one command, the main job. Prints the per-layer summary.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "calib/device_select.h"
#include "calib/prober.h"
#include "calib/record.h"
#include "cli/command.h"
#include "cli/prompt_options.h"
#include "common/error.h"
#include "io/grid.h"
#include "io/profile.h"
#include "search/search.h"

namespace hc::cli {

namespace {

struct CalibrateCliOptions {
  std::string model;
  std::string out;
  std::string atlas;
  std::string grid;
  std::string device = "auto";
  double density = 0, global_density = 0, min_recall = 0;
  std::string patterns = "all";
  int threads = 0;
  bool keep_atlas = true;
};

void print_progress(const RecordProgress& p, bool tty) {
  if (!tty && p.layers_done != p.layers_total &&
      (p.layers_done * 10) / p.layers_total == ((p.layers_done - 1) * 10) / p.layers_total)
    return;
  std::fprintf(stderr, "%slayer %d/%d  %.0f tokens/s  ETA %.0f s%s", tty ? "\r" : "", p.layers_done,
               p.layers_total, p.tokens_per_s(), p.eta_s(), tty && p.layers_done != p.layers_total ? "" : "\n");
  std::fflush(stderr);
}

Runner setup(CLI::App& sub) {
  auto o = std::make_shared<CalibrateCliOptions>();
  sub.add_option("--model", o->model, "GGUF file, Hugging Face directory, or random:<shape> (random weights)")
      ->required();
  std::shared_ptr<PromptSpec> prompt = add_prompt_options(sub);
  sub.add_option("--out", o->out, "profile to write (YAML)")->required();
  sub.add_option("--atlas", o->atlas, "atlas to write (default: the profile's name with .atlas.h5)");
  sub.add_option("--grid", o->grid, "candidate grid (YAML); default: the built-in grid scaled to N");
  sub.add_option("--device", o->device, "cuda, cpu or auto (CUDA when a GPU is present)");
  auto* d = sub.add_option("--density", o->density, "per head: best recall with density <= D");
  auto* g = sub.add_option("--global-density", o->global_density,
                           "all heads: maximum total recall with total cost <= D x dense (default 0.2)");
  auto* r = sub.add_option("--min-recall", o->min_recall, "per head: cheapest candidate with recall >= R");
  d->excludes(g)->excludes(r);
  g->excludes(r);
  sub.add_option("--patterns", o->patterns, "patterns search may choose: all, or a list like a_shape,vertical_slash");
  sub.add_option("--threads", o->threads, "CPU threads; 0: all");

  return [o, prompt, d, g, r]() {
    const auto t0 = std::chrono::steady_clock::now();
    search::SearchOptions search_opts;
    if (d->count()) search_opts.mode = search::BudgetMode::density, search_opts.value = o->density;
    else if (r->count()) search_opts.mode = search::BudgetMode::min_recall, search_opts.value = o->min_recall;
    else search_opts.mode = search::BudgetMode::global_density, search_opts.value = g->count() ? o->global_density : 0.2;
    search_opts.patterns = search::parse_pattern_filter(o->patterns);
    search::validate_options(search_opts);  // before an expensive record

    std::string notice;
    RecordOptions opts;
    opts.device = resolve_device(o->device, &notice);
    if (!notice.empty()) std::fprintf(stderr, "headcal: notice: %s\n", notice.c_str());
    opts.n_threads = o->threads;

    std::unique_ptr<ModelFile> model = open_model_spec(o->model);
    Prompt p = prompt_for_model(*prompt, o->model, *model);
    std::vector<int32_t> tokens = std::move(p.tokens);
    opts.prompt_description = p.description;
    const int64_t n = static_cast<int64_t>(tokens.size());

    PatternDefaults defaults;
    Grid grid = o->grid.empty() ? default_grid(n, defaults) : read_grid_file(o->grid, n, defaults);
    std::unique_ptr<CandidateProber> prober =
        opts.device == DeviceKind::Cuda ? make_cuda_prober(grid, defaults) : make_cpu_prober(grid, defaults, o->threads);
    opts.prober = prober.get();
    const bool tty = stderr_is_tty();
    opts.on_progress = [tty](const RecordProgress& p) { print_progress(p, tty); };

    std::string atlas_path = o->atlas;
    if (atlas_path.empty()) {
      std::filesystem::path p(o->out);
      atlas_path = (p.parent_path() / (p.stem().string() + ".atlas.h5")).string();
    }
    std::fprintf(stderr, "calibrating %s: %lld tokens, %zu candidates per head, %s backend\n", o->model.c_str(),
                 static_cast<long long>(n), grid.candidates.size() + 1, device_name(opts.device));
    const RecordSummary rec = record_atlas(*model, tokens, atlas_path, opts);

    const auto t_search = std::chrono::steady_clock::now();
    const Atlas atlas = Atlas::open(atlas_path);
    std::vector<std::string> notes;
    Profile profile = search::run(atlas, search_opts, &notes);
    write_profile(profile, o->out);
    const auto t_end = std::chrono::steady_clock::now();

    for (const auto& note : notes) std::fprintf(stderr, "headcal: note: %s\n", note.c_str());
    search::print_summary(profile, std::cout);
    const double total_s = std::chrono::duration<double>(t_end - t0).count();
    const double search_s = std::chrono::duration<double>(t_end - t_search).count();
    std::printf("\n%s on %s: load %.2f s, record %.2f s, search %.2f s, total %.2f s", rec.backend.c_str(),
                rec.device.c_str(), rec.load_s, rec.prefill_s, search_s, total_s);
    if (rec.backend == "cuda")
      std::printf(", peak GPU memory %.2f GiB", static_cast<double>(rec.peak_device_bytes) / double(size_t(1) << 30));
    std::printf("\nwrote %s and %s\n", o->out.c_str(), atlas_path.c_str());
    return 0;
  };
}

}  // namespace

HC_REGISTER_COMMAND("calibrate", "record a prompt's attention and search a per-head profile (the main job)", setup);

}  // namespace hc::cli

#include "cli/record_options.h"

#include <algorithm>
#include <cstdio>
#include <string>

#include "calib/random_model.h"
#include "calib/device_select.h"
#include "calib/prober.h"
#include "cli/command.h"
#include "cli/option_checks.h"
#include "cli/prompt_options.h"
#include "common/error.h"
#include "io/calibration/atlas.h"
#include "io/calibration/grid.h"

namespace hc::cli {

namespace {

// "a-b" or "a" -> [a, b]; InputError otherwise.
void parse_layers(const std::string& text, int* first, int* last) {
  const auto dash = text.find('-');
  try {
    size_t used = 0;
    if (dash == std::string::npos) {
      *first = *last = std::stoi(text, &used);
      if (used != text.size()) throw std::invalid_argument("trailing");
    } else {
      *first = std::stoi(text.substr(0, dash), &used);
      if (used != dash) throw std::invalid_argument("trailing");
      const std::string rest = text.substr(dash + 1);
      *last = std::stoi(rest, &used);
      if (used != rest.size()) throw std::invalid_argument("trailing");
    }
  } catch (const std::exception&) {
    throw InputError("--layers", "'" + text + "' is not a layer range like 0-29 or 5");
  }
  if (*first < 0 || *last < *first) throw InputError("--layers", "'" + text + "' is not an ascending range");
}

void print_progress(const RecordProgress& p, bool tty) {
  char text[160];
  std::snprintf(text, sizeof text, "layer %d/%d (model layer %d)  %.0f tokens/s  ETA %.0f s", p.layers_done,
                p.layers_total, p.layer, p.tokens_per_s(), p.eta_s());
  print_progress_line(text, p.layers_done, p.layers_total, tty);
}

}  // namespace

std::shared_ptr<RecordCliOptions> add_record_options(CLI::App& sub) {
  auto o = std::make_shared<RecordCliOptions>();
  sub.add_option("--model", o->model,
                 "GGUF file, Hugging Face directory, or random:SHAPE[:SEED] (random weights; SHAPE: " +
                     hc::random_shape_names(", ") + "; prompt: --tokens FILE or --length N random ids)")
      ->required();
  o->prompt = add_prompt_options(sub);
  sub.add_option("--prompt-set", o->prompt_set,
                 "prompt set (YAML): record every prompt into one atlas, for search over all of them");
  sub.add_option("--device", o->device, "cuda, cpu or auto (CUDA when a GPU is present)");
  sub.add_option("--layers", o->layers, "record only layers a-b (the prefill runs the layers before a and stops after b)");
  sub.add_option("--grid", o->grid, "candidate grid (YAML); default: the built-in grid scaled to N")
      ->check(CLI::ExistingFile);
  sub.add_flag("--no-probes", o->no_probes, "record the statistics only, no candidate probes");
  sub.add_flag("--no-statistics", o->no_statistics,
               "record the candidate probes only, no column/diagonal mass or pooled map (a QK^T pass per layer "
               "and 8 bytes per token and head in the atlas saved; report then shows no maps)");
  sub.add_option("--map-size", o->map_size, "pooled attention map cells per side (default 128)")
      ->check(positive_integer(4096));
  sub.add_option("--threads", o->threads, "CPU threads (CPU backend, recorder, CPU probes); 0: all")
      ->check(CLI::Range(0, 4096));
  return o;
}

PreparedRecord prepare_record(const RecordCliOptions& cli) {
  return std::move(prepare_records(cli, {cli.prompt->length}, "--length").front());
}

std::vector<PreparedRecord> prepare_records(const RecordCliOptions& cli, const std::vector<int64_t>& lengths,
                                            const std::string& length_option) {
  RecordOptions base;
  std::string notice;
  base.device = resolve_device(cli.device, &notice);
  if (!cli.layers.empty()) parse_layers(cli.layers, &base.first_layer, &base.last_layer);
  base.map_size = cli.map_size;
  base.n_threads = cli.threads;
  if (cli.no_probes && !cli.grid.empty()) throw InputError("--grid", "--grid and --no-probes exclude each other");
  if (cli.no_probes && cli.no_statistics)
    throw InputError("--no-statistics", "--no-statistics and --no-probes exclude each other (nothing would be recorded)");
  base.statistics = !cli.no_statistics;

  const std::shared_ptr<const ModelFile> model = open_model_spec(cli.model);
  const ModelConfig& config = model->config();
  const int64_t layers = config.n_layers;
  if (!cli.layers.empty() && base.last_layer >= layers)
    throw InputError("--layers", "'" + cli.layers + "' is beyond the model's " + std::to_string(layers) +
                                     " layers (0-" + std::to_string(layers - 1) + ")");
  for (int64_t length : lengths) {
    if (config.max_context <= 0 || length <= config.max_context) continue;
    if (!cli.prompt->allow_longer)
      throw InputError(length_option, std::to_string(length) + " tokens are more than the model's context of " +
                                          std::to_string(config.max_context) + " (pass --allow-longer to run anyway)");
    check_prefill_fits_memory(length, config, base.device, length_option);  // before any prompt is built
  }

  std::vector<std::string> notices;  // the device choice's, then any run's
  if (!notice.empty()) notices.push_back(notice);
  std::vector<PreparedRecord> runs;
  for (int64_t length : lengths) {
    PreparedRecord r;
    r.model = model;
    r.options = base;
    PromptSpec spec = *cli.prompt;
    spec.length = length;
    spec.length_option = length_option;
    r.prompts = run_prompts_for_model(spec, cli.prompt_set, cli.model, *model, base.device);
    r.options.prompt_description = r.prompts.description;
    r.options.prompt_sha256 = r.prompts.sha256;
    int64_t n = 0;
    for (const SetPrompt& p : r.prompts.prompts) {
      r.records.push_back({p.name, p.prompt.description, p.weight, p.prompt.tokens});
      n = std::max<int64_t>(n, static_cast<int64_t>(p.prompt.tokens.size()));
    }
    if (base.statistics && !cli.no_probes) {  // a notice where the statistics alone make the atlas large
      std::vector<int64_t> lengths_of_prompts;
      for (const RecordPrompt& p : r.records) lengths_of_prompts.push_back(static_cast<int64_t>(p.tokens.size()));
      const int64_t recorded = (base.last_layer < 0 ? layers - 1 : base.last_layer) - base.first_layer + 1;
      const std::string large = statistics_size_notice(
          atlas_statistics_bytes(recorded, config.n_heads, lengths_of_prompts, cli.map_size));
      if (!large.empty()) notices.push_back(large);
    }
    if (!cli.no_probes) {
      // One grid for every prompt (scaled to the longest), so search can compare them candidate by candidate.
      const PatternDefaults defaults;
      const Grid grid = cli.grid.empty() ? default_grid(n, defaults) : read_grid_file(cli.grid, n, defaults);
      r.grid_candidates = grid.candidates.size();
      r.prober = r.options.device == DeviceKind::Cuda ? make_cuda_prober(grid, defaults)
                                                      : make_cpu_prober(grid, defaults, cli.threads);
      r.options.prober = r.prober.get();
    }
    runs.push_back(std::move(r));
  }
  // Printed once the model, prompts and grids are known good, so an input error comes first.
  for (const std::string& n : notices) std::fprintf(stderr, "headcal: notice: %s\n", n.c_str());
  const bool tty = stderr_is_tty();
  for (PreparedRecord& r : runs) r.options.on_progress = [tty](const RecordProgress& p) { print_progress(p, tty); };
  return runs;
}

void print_record_summary(const RecordSummary& s) {
  const std::string where = s.backend == "cuda" ? "the GPU (" + s.device + ")" : std::string("the CPU");
  if (s.prompts > 1)
    std::printf("recorded %d prompts (up to %lld tokens) x %d layers on %s: model load %.2f s, prefill and "
                "measurements %.2f s",
                s.prompts, static_cast<long long>(s.n_tokens), s.layers_recorded, where.c_str(), s.load_s, s.prefill_s);
  else
    std::printf("recorded %d layers x %lld tokens on %s: model load %.2f s, prefill and measurements %.2f s",
                s.layers_recorded, static_cast<long long>(s.n_tokens), where.c_str(), s.load_s, s.prefill_s);
  if (s.backend == "cuda")
    std::printf(", peak GPU memory %.2f GiB", static_cast<double>(s.peak_device_bytes) / double(size_t(1) << 30));
  std::printf("\n");
}

}  // namespace hc::cli

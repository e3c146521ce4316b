// headcal record: prefill a prompt, record every head's attention statistics, write the atlas.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "calib/device_select.h"
#include "calib/record.h"
#include "cli/command.h"
#include "cli/prompt_options.h"
#include "common/error.h"
#include "io/prompt.h"
#include "io/tokenizer.h"

namespace hc::cli {

namespace {

struct RecordCliOptions {
  std::string model;
  std::string out;
  std::string device = "auto";
  std::string layers;
  int map_size = kDefaultMapSize;
  int threads = 0;
};

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
  // On a terminal one line redrawn per layer; in a log about ten lines in all.
  if (!tty && p.layers_done != p.layers_total && (p.layers_done * 10) / p.layers_total ==
                                                      ((p.layers_done - 1) * 10) / p.layers_total)
    return;
  std::fprintf(stderr, "%slayer %d/%d (model layer %d)  %.0f tokens/s  ETA %.0f s%s", tty ? "\r" : "",
               p.layers_done, p.layers_total, p.layer, p.tokens_per_s(), p.eta_s(),
               tty && p.layers_done != p.layers_total ? "" : "\n");
  std::fflush(stderr);
}

Runner setup(CLI::App& sub) {
  auto o = std::make_shared<RecordCliOptions>();
  sub.add_option("--model", o->model,
                 "GGUF file, Hugging Face directory, or random:llama3-8b / random:smollm2 / random:tiny[:SEED] "
                 "(random weights; prompt: --tokens FILE or --length N random ids)")
      ->required();
  std::shared_ptr<PromptSpec> prompt = add_prompt_options(sub);
  sub.add_option("--out", o->out, "atlas file to write (HDF5)")->required();
  sub.add_option("--device", o->device, "cuda, cpu or auto (CUDA when a GPU is present)");
  sub.add_option("--layers", o->layers, "record only layers a-b (all layers still run)");
  sub.add_option("--map-size", o->map_size, "pooled attention map cells per side (default 128)");
  sub.add_option("--threads", o->threads, "CPU threads (CPU backend and recorder); 0: all");
  return [o, prompt]() {
    std::string notice;
    RecordOptions opts;
    opts.device = resolve_device(o->device, &notice);
    if (!notice.empty()) std::fprintf(stderr, "headcal: notice: %s\n", notice.c_str());
    if (!o->layers.empty()) parse_layers(o->layers, &opts.first_layer, &opts.last_layer);
    opts.map_size = o->map_size;
    opts.n_threads = o->threads;

    std::unique_ptr<ModelFile> model = open_model_spec(o->model);
    const Prompt built = prompt_for_model(*prompt, o->model, *model);
    opts.prompt_description = built.description;

    const bool tty = stderr_is_tty();
    opts.on_progress = [tty](const RecordProgress& p) { print_progress(p, tty); };
    const RecordSummary s = record_atlas(*model, built.tokens, o->out, opts);
    std::printf("recorded %d layers x %lld tokens on %s (%s): prefill+record %.2f s, load %.2f s", s.layers_recorded,
                static_cast<long long>(s.n_tokens), s.backend.c_str(), s.device.c_str(), s.prefill_s, s.load_s);
    if (s.backend == "cuda")
      std::printf(", peak GPU memory %.2f GiB", static_cast<double>(s.peak_device_bytes) / double(size_t(1) << 30));
    std::printf("\nwrote %s\n", o->out.c_str());
    return 0;
  };
}

}  // namespace

HC_REGISTER_COMMAND("record", "prefill a prompt and record per-head attention statistics into an atlas", setup);

}  // namespace hc::cli

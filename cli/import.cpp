// headcal import: MInference JSON -> headcal profile, so other people's configs can be checked
// and validated. The model's shapes come from --model or from an atlas of that model.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "calib/record.h"
#include "cli/command.h"
#include "cli/option_checks.h"
#include "common/error.h"
#include "headcal/version.h"
#include "io/calibration/atlas.h"
#include "io/util/mapped_file.h"
#include "io/calibration/minference_json.h"
#include "io/model/model_file.h"
#include "io/calibration/profile.h"

namespace hc::cli {

namespace {

struct ImportCliOptions {
  std::string json;
  std::string out;
  std::string model;
  std::string atlas;
  int64_t tokens = 0;
};

Runner setup(CLI::App& sub) {
  auto o = std::make_shared<ImportCliOptions>();
  sub.add_option("json", o->json, "MInference pattern config (JSON)")->required();
  sub.add_option("-o,--out", o->out, "profile to write (YAML)")->required()->check(output_file());
  auto* m = sub.add_option("--model", o->model, "the model the config is for (GGUF file, Hugging Face directory, or random:<shape>[:SEED])");
  auto* a = sub.add_option("--atlas", o->atlas, "an atlas of the model (gives its shapes and the length N)");
  m->excludes(a);
  sub.add_option("--tokens", o->tokens,
                 "reference length N: vertical_and_slash covering N columns and diagonals is dense "
                 "(default: the atlas's N, else the model's context length)")
      ->check(CLI::PositiveNumber);

  return [o, m, a]() {
    if (!m->count() && !a->count()) throw InputError("import", "give the model: --model M or --atlas A");
    MInferenceImportOptions opts;
    opts.tool_version = HEADCAL_VERSION;
    opts.prompt = "imported from " + o->json;
    if (a->count()) {
      Atlas atlas = Atlas::open(o->atlas);
      const AtlasMeta& meta = atlas.meta();
      opts.model = {meta.model_name, meta.arch, meta.layers, meta.heads, meta.kv_heads, meta.head_dim,
                    meta.model_fingerprint};
      opts.defaults = meta.defaults();
      opts.tokens = meta.tokens;
    } else {
      std::unique_ptr<ModelFile> model = open_model_spec(o->model);
      const ModelConfig& c = model->config();
      opts.model = {c.name, c.arch, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, model->fingerprint()};
      opts.tokens = c.max_context;
    }
    if (o->tokens > 0) opts.tokens = o->tokens;
    if (opts.tokens < 1) throw InputError("import", "the model has no context length: give --tokens N");

    MInferenceImport im = import_minference(hc::read_whole_file(o->json), o->json, opts);
    for (const std::string& n : im.notes) std::fprintf(stderr, "headcal: note: %s\n", n.c_str());
    write_profile(im.profile, o->out);
    std::cout << "wrote " << o->out << " (" << opts.model.layers << " layers x " << opts.model.heads
              << " heads, reference length " << opts.tokens << ")\n";
    return 0;
  };
}

}  // namespace

HC_REGISTER_COMMAND("import", "read an MInference JSON pattern config into a headcal profile", setup);

}  // namespace hc::cli

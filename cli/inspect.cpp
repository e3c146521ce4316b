// headcal inspect FILE: what is in a model file (GGUF or Hugging Face directory), an atlas or a
// profile.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/inspect_summaries.h"
#include "io/model/model_describe.h"
#include "calib/record.h"
#include "io/model/model_file.h"

namespace hc::cli {

namespace {

struct InspectOptions {
  std::string path;
  bool tensors = false;
  bool metadata = false;
};

// One kind of file `inspect` understands. Kinds are tried in order and the first whose
// `accepts` returns true describes the file; atlas (.h5) and profile (.yaml) kinds go before the
// model kind, which accepts anything and lets open_model report what is wrong with it.
struct InspectKind {
  const char* name;
  bool (*accepts)(const std::string& path);
  std::string (*describe)(const InspectOptions& options);
};

std::string describe_model_file(const InspectOptions& o) {
  auto model = open_model_spec(o.path);  // random:<shape> too
  DescribeOptions d;
  d.tensors = o.tensors;
  d.metadata = o.metadata;
  return describe_model(*model, d);
}

const std::vector<InspectKind>& inspect_kinds() {
  static const std::vector<InspectKind> kinds = {
      {"atlas", looks_like_hdf5, [](const InspectOptions& o) { return describe_atlas(o.path); }},
      {"profile or layer weights", looks_like_yaml, [](const InspectOptions& o) { return describe_yaml(o.path); }},
      {"model", [](const std::string&) { return true; }, describe_model_file},
  };
  return kinds;
}

Runner setup(CLI::App& sub) {
  auto o = std::make_shared<InspectOptions>();
  sub.add_option("FILE", o->path,
                 "GGUF file, Hugging Face model directory, random:<shape>, atlas (HDF5), profile or layer weights "
                 "(YAML)")
      ->required();
  sub.add_flag("--tensors", o->tensors, "list every tensor: name, dtype, shape");
  sub.add_flag("--metadata", o->metadata, "print the file's metadata (GGUF key/values, config.json fields)");
  return [o]() {
    for (const InspectKind& kind : inspect_kinds()) {
      if (!kind.accepts(o->path)) continue;
      const std::string text = kind.describe(*o);
      std::fwrite(text.data(), 1, text.size(), stdout);
      return 0;
    }
    return 2;  // unreachable while the model kind accepts everything
  };
}

}  // namespace

HC_REGISTER_COMMAND("inspect", "show what is in a model file (GGUF or Hugging Face directory), an atlas or a profile", setup);

}  // namespace hc::cli

// headcal export: a profile to MInference's per-head JSON (as MInference and vLLM's dual-chunk
// backend read it). The parameter mapping is documented in io/minference_json.h.
#include <cstdio>
#include <iostream>
#include <memory>
#include <string>

#include "cli/command.h"
#include "cli/option_checks.h"
#include "io/minference_json.h"
#include "io/profile.h"

namespace hc::cli {

namespace {

struct ExportCliOptions {
  std::string profile;
  std::string format = "minference";
  std::string out;
  bool vllm = false;
};

Runner setup(CLI::App& sub) {
  auto o = std::make_shared<ExportCliOptions>();
  sub.add_option("profile", o->profile, "profile to export (YAML)")->required();
  sub.add_option("--format", o->format, "output format: minference")->check(CLI::IsMember({"minference"}));
  sub.add_option("-o,--out", o->out, "JSON file to write")->required()->check(output_file());
  sub.add_flag("--vllm", o->vllm,
               "for vLLM's dual-chunk backend: refuse heads that are not vertical_and_slash "
               "(search with --patterns vertical_slash to get such a profile)");
  return [o]() {
    Profile p = read_profile(o->profile);
    MInferenceExport ex = export_minference(p, {o->vllm});
    for (const std::string& n : ex.notes) std::fprintf(stderr, "headcal: note: %s\n", n.c_str());
    write_file_atomic(o->out, ex.json);
    std::cout << "wrote " << o->out << " (" << p.model.layers << " layers x " << p.model.heads << " heads)\n";
    return 0;
  };
}

}  // namespace

HC_REGISTER_COMMAND("export", "write a profile as MInference JSON (--format minference)", setup);

}  // namespace hc::cli

// headcal export: a profile to MInference's per-head JSON, for MInference (`--format minference
// -o FILE`) or for vLLM/SGLang's dual-chunk attention backend (`--format dual-chunk MODEL_DIR`,
// writing MODEL_DIR/sparse_attention_config.json). A profile some of whose heads the runtime would
// run differently is refused (exit 2) with the table of those heads; --force writes it anyway,
// with the same table. A profile searched with --target for that runtime passes the check by
// construction. The mapping is io/calibration/minference_json.h, the checks io/calibration/export_changes.h.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "cli/command.h"
#include "cli/option_checks.h"
#include "common/error.h"
#include "io/calibration/export_changes.h"
#include "io/calibration/minference_json.h"
#include "io/calibration/profile.h"

namespace hc::cli {

namespace {

namespace fs = std::filesystem;

struct ExportCliOptions {
  std::string profile;
  std::string format = "minference";
  std::string out;
  std::string model_dir;
  bool force = false;
};

std::string list(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

// The block to add to the model's config.json for the dual-chunk backend to load the file.
std::string dual_chunk_block(const Profile& p) {
  return "  \"dual_chunk_attention_config\": {\n"
         "    \"chunk_size\": 262144,\n"
         "    \"local_size\": 8192,\n"
         "    \"original_max_position_embeddings\": 262144,\n"
         "    \"sparse_attention_threshold\": " +
         std::to_string(kDualChunkSparseThreshold) +
         ",\n"
         "    \"sparse_attention_last_q\": " +
         std::to_string(p.defaults.last_q) +
         "\n"
         "  }\n";
}

Runner setup(CLI::App& sub) {
  auto o = std::make_shared<ExportCliOptions>();
  sub.add_option("profile", o->profile, "profile to export (YAML)")->required();
  sub.add_option("model_dir", o->model_dir,
                 "--format dual-chunk: the model's folder (sparse_attention_config.json is written there)");
  sub.add_option("--format", o->format,
                 "minference (MInference's config_path JSON, -o FILE) or dual-chunk (vLLM <= 0.10.2 / "
                 "SGLang <= 0.5.19 sparse_attention_config.json in MODEL_DIR)")
      ->check(CLI::IsMember({"minference", "dual-chunk"}));
  sub.add_option("-o,--out", o->out, "--format minference: the JSON file to write")->check(output_file());
  sub.add_flag("--force", o->force,
               "write the file even when the runtime would run some heads differently (the table of those "
               "heads is printed)");
  return [o]() {
    const bool dual = o->format == "dual-chunk";
    const Target target = dual ? Target::dual_chunk : Target::minference;
    std::string out = o->out;
    if (dual) {
      if (o->model_dir.empty()) throw InputError("export", "--format dual-chunk needs the model's folder: MODEL_DIR");
      if (!o->out.empty())
        throw InputError("export", "--format dual-chunk writes MODEL_DIR/sparse_attention_config.json: drop -o");
      if (!fs::is_directory(o->model_dir)) throw InputError(o->model_dir, "is not a folder (the model's folder)");
      out = (fs::path(o->model_dir) / "sparse_attention_config.json").string();
    } else {
      if (!o->model_dir.empty())
        throw InputError("export", "unexpected argument '" + o->model_dir + "' (--format minference writes -o FILE)");
      if (out.empty()) throw InputError("export", "--format minference needs -o FILE");
    }

    Profile p = read_profile(o->profile);
    const std::vector<ExportChange> changes = export_changes(p, target);
    size_t impossible = 0, heads = 0;
    for (const ExportChange& c : changes) {
      impossible += c.impossible;
      heads += c.layer >= 0;
    }
    if (!changes.empty()) {
      std::fprintf(stderr, "headcal: %s would not run this profile as calibrated:\n%s", target_runtime_name(target),
                   format_export_changes(changes, target).c_str());
      // A profile searched for this runtime has no changes; others are told how to get one.
      const std::string search_for = p.calibration.target == target
                                         ? std::string()
                                         : std::string("; search --target ") + target_name(target) +
                                               " chooses only what it runs exactly";
      if (impossible)
        throw InputError(o->profile, std::to_string(impossible) + " head(s) are not vertical_slash, which " +
                                         target_runtime_name(target) + " cannot run (--force cannot write them)" +
                                         search_for);
      if (!o->force)
        throw InputError(o->profile, std::to_string(heads) + " head(s)" +
                                         (heads < changes.size() ? " and the whole profile" : "") + " would change in " +
                                         target_runtime_name(target) +
                                         " (table above): not written; --force writes it anyway" + search_for);
      std::fprintf(stderr, "headcal: warning: --force: writing %s although %s runs the heads above differently\n",
                   out.c_str(), target_runtime_name(target));
    }
    MInferenceExport ex = export_minference(p, {target});
    write_file_atomic(out, ex.json);
    std::cout << "wrote " << out << " (" << p.model.layers << " layers x " << p.model.heads << " heads)\n";
    if (dual) {
      std::cout << "add to " << (fs::path(o->model_dir) / "config.json").string()
                << " (vLLM <= 0.10.2 and SGLang <= 0.5.19 have the dual-chunk backend; removed in vLLM 0.11.0 and "
                   "SGLang 0.5.20; chunk_size, local_size and original_max_position_embeddings are those of "
                   "Qwen2.5-1M: use your model's):\n"
                << dual_chunk_block(p) << "model types that read it: " << list(dual_chunk_vllm_model_types())
                << " (vLLM); " << list(dual_chunk_sglang_model_types()) << " (SGLang)\n"
                << "prompts longer than chunk_size - local_size run dual-chunk attention's own position remapping "
                   "across chunks, which headcal does not model\n";
    }
    return 0;
  };
}

}  // namespace

HC_REGISTER_COMMAND("export",
                    "write a profile for MInference (--format minference -o FILE) or vLLM/SGLang dual-chunk "
                    "attention (--format dual-chunk MODEL_DIR)",
                    setup);

}  // namespace hc::cli

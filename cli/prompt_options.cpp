#include "cli/prompt_options.h"

#include "cli/option_checks.h"
#include "common/error.h"
#include "io/model/model_file.h"
#include "io/tokenizer/tokenizer.h"
#include "common/error.h"

#include <unistd.h>

#include <cstdio>

namespace hc::cli {

std::shared_ptr<PromptSpec> add_prompt_options(CLI::App& sub) {
  auto spec = std::make_shared<PromptSpec>();
  sub.add_option("--prompt", spec->prompt_file, "Prompt text file (UTF-8); with --generate text, the text to repeat")
      ->check(CLI::ExistingFile);
  sub.add_option("--tokens", spec->tokens_file,
                 "Prompt token ids: .txt (whitespace/comma separated), .npy, or HDF5 (FILE.h5 or FILE.h5:/dataset)");
  sub.add_option("--generate", spec->generator,
                 "Built-in prompt generator: kv_retrieval (UUID key/value JSON, one key asked), passkey (one key in "
                 "filler), multi_needle (several 7-digit numbers spread over plain prose, all asked), text (--prompt "
                 "or a filler sentence repeated), random (uniform ids, for timing)")
      ->check(CLI::IsMember({"kv_retrieval", "passkey", "multi_needle", "text", "random"}));
  sub.add_option("--length", spec->length,
                 "Exactly N tokens (files longer than N are cut in the middle, keeping head and question)")
      ->check(positive_integer(kMaxPromptTokens));
  sub.add_option("--seed", spec->seed, "Seed of generated prompts (same seed, same ids)")->check(non_negative_integer());
  sub.add_option("--depth", spec->depth,
                 "Where the pass key / asked key sits, 0 = start .. 1 = end (default: passkey 0.5, kv_retrieval "
                 "random; multi_needle spreads its needles itself and rejects --depth)")
      ->check(finite_in_range(0.0, 1.0));
  sub.add_option("--needles", spec->needles, "Number of needles of --generate multi_needle (default 4)")
      ->check(CLI::Range(1, 48));
  sub.add_flag("--allow-longer", spec->allow_longer, "Allow prompts longer than the model's context (a warning)");
  return spec;
}

bool prompt_given(const PromptSpec& spec) {
  return !spec.prompt_file.empty() || !spec.tokens_file.empty() || !spec.generator.empty();
}

Prompt make_prompt(const PromptSpec& spec, const Tokenizer& tokenizer, int64_t max_context) {
  Prompt p = build_prompt(spec, tokenizer, max_context);
  for (const std::string& w : p.warnings) std::fprintf(stderr, "headcal: warning: %s\n", w.c_str());
  return p;
}

void check_prefill_fits_memory(int64_t n_tokens, const ModelConfig& config, DeviceKind device,
                               const std::string& option) {
  const double need = static_cast<double>(prefill_host_floor_bytes(config, n_tokens, device));
  const double have = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGE_SIZE));
  if (have > 0 && need > have)
    throw InputError(option, std::to_string(n_tokens) + " tokens need at least " +
                                     std::to_string(int64_t(need / double(1 << 30))) + " GiB for the prefill of this model, "
                                     "more than this machine's " + std::to_string(int64_t(have / double(1 << 30))) +
                                     " GiB of memory");
}

Prompt prompt_for_model(const PromptSpec& spec, const std::string& model_spec, const ModelFile& model,
                        DeviceKind device) {
  const bool random_weights = model.format() == "random";
  PromptSpec resolved = spec;
  if (random_weights && !prompt_given(spec) && spec.length > 0) resolved.generator = "random";
  const bool needs_text = !resolved.prompt_file.empty() ||
                          (!resolved.generator.empty() && resolved.generator != "random");
  std::unique_ptr<Tokenizer> tokenizer;
  if (needs_text && !random_weights) tokenizer = load_tokenizer(model_spec);
  const ModelConfig& config = model.config();
  // Beyond the context (--allow-longer) nothing else bounds the length: check it fits at all.
  if (resolved.length > config.max_context) check_prefill_fits_memory(resolved.length, config, device);
  Prompt p = build_prompt(resolved, tokenizer.get(), static_cast<int32_t>(config.vocab), config.max_context);
  for (const std::string& w : p.warnings) std::fprintf(stderr, "headcal: warning: %s\n", w.c_str());
  return p;
}

RunPrompts run_prompts_for_model(const PromptSpec& spec, const std::string& set_path, const std::string& model_spec,
                                 const ModelFile& model, DeviceKind device) {
  RunPrompts out;
  if (set_path.empty()) {
    Prompt p = prompt_for_model(spec, model_spec, model, device);
    out.description = p.description;
    out.sha256 = p.sha256;
    out.prompts.push_back({"prompt", 1.0, std::move(p)});
    return out;
  }
  if (prompt_given(spec))
    throw InputError("--prompt-set", "a prompt set excludes --prompt, --tokens and --generate (--length overrides "
                                     "the set's lengths)");
  PromptSet set = read_prompt_set(set_path);
  override_prompt_set_length(set, spec.length);
  std::unique_ptr<Tokenizer> tokenizer;
  if (prompt_set_needs_tokenizer(set)) {
    if (model.format() == "random")
      throw InputError(set_path, "a random-weight model has no tokenizer: use only token files and "
                                 "'generate: random' entries");
    tokenizer = load_tokenizer(model_spec);
  }
  const ModelConfig& config = model.config();
  out.prompts = build_prompt_set(set, tokenizer.get(), static_cast<int32_t>(config.vocab), config.max_context,
                                 spec.allow_longer);
  for (const SetPrompt& p : out.prompts)
    for (const std::string& w : p.prompt.warnings)
      std::fprintf(stderr, "headcal: warning: %s: %s: %s\n", set_path.c_str(), p.name.c_str(), w.c_str());
  out.description = describe_prompt_set(set, out.prompts);
  out.sha256 = prompt_set_sha256(out.prompts);
  out.is_set = true;
  return out;
}

}  // namespace hc::cli

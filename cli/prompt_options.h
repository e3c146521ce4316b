#pragma once
// The prompt options every prompt-taking subcommand shares (record, calibrate, validate,
// tokenize): --prompt, --tokens, --generate, --length, --seed, --depth, --allow-longer.
#include <CLI/CLI.hpp>

#include <memory>
#include <string>

#include "calib/device_select.h"
#include "io/prompt/prompt.h"
#include "io/prompt/prompt_set.h"

namespace hc {
class ModelFile;
struct ModelConfig;
class Tokenizer;
}

namespace hc::cli {

// Adds the options to `sub`; the returned spec is filled in when the command line is parsed.
std::shared_ptr<PromptSpec> add_prompt_options(CLI::App& sub);

// True when any prompt source option was given.
bool prompt_given(const PromptSpec& spec);

// build_prompt, with its warnings printed to stderr ("headcal: warning: ...").
Prompt make_prompt(const PromptSpec& spec, const Tokenizer& tokenizer, int64_t max_context);

// Throws InputError(option, ...) when a prefill of n_tokens on `device` cannot fit in host memory
// (prefill_host_floor_bytes), so that a huge --length with --allow-longer fails at once instead of
// after minutes of work.
void check_prefill_fits_memory(int64_t n_tokens, const ModelConfig& config, DeviceKind device,
                               const std::string& option = "--length");

// The prompt for `model` (opened from `model_spec`), warnings printed. The tokenizer is loaded only
// when the prompt is text; a random-weight model has none, and with no prompt option but
// --length N it gets uniform random ids (--seed).
Prompt prompt_for_model(const PromptSpec& spec, const std::string& model_spec, const ModelFile& model,
                        DeviceKind device);

// The prompts of a run: the set in `set_path` (--prompt-set; --length N overrides its lengths,
// --allow-longer applies to all) or the one prompt of `spec` (named "prompt", weight 1). A set
// together with --prompt/--tokens/--generate is an InputError. `description` / `sha256` describe
// the whole (for a single prompt: its own).
struct RunPrompts {
  std::vector<SetPrompt> prompts;
  std::string description;
  std::string sha256;
  bool is_set = false;
};
RunPrompts run_prompts_for_model(const PromptSpec& spec, const std::string& set_path, const std::string& model_spec,
                                 const ModelFile& model, DeviceKind device);

}  // namespace hc::cli

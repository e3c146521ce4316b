#pragma once
// Prompt sets: several prompts, each with a weight, that calibration measures together and
// validation checks one by one. A profile calibrated on one synthetic prompt fits that prompt;
// a set of kinds (prose, code, retrieval) is what makes it hold on prompts it never saw.
//
// File (YAML), paths relative to the file's folder:
//
//   format: headcal-prompt-set
//   version: 1
//   name: default-calibration        # optional; shown in profiles and records
//   length: 8192                     # optional default length of every entry
//   prompts:
//     - {name: prose-emma, text: texts/prose-calib-emma.txt, weight: 1}
//     - {name: code-json, text: texts/code-calib-json.txt, length: 8192}
//     - {name: kv, generate: kv_retrieval, seed: 11}
//     - {name: repeated, generate: text, text: texts/some.txt}
//     - {name: ids, tokens: ids.npy}
//
// Each entry has exactly one source: `text` (a UTF-8 file, cut to `length` tokens as --prompt is),
// `tokens` (a token file, as --tokens), or `generate` (a built-in generator, as --generate; the
// `text` generator takes its text from `text`). Optional: `name` (unique; default prompt_<i>),
// `length` (tokens; the set's `length` when absent), `weight` (> 0, default 1), `seed`, `depth`,
// `needles` (multi_needle).
// A length given on the command line overrides every entry's.
#include <cstdint>
#include <string>
#include <vector>

#include "io/prompt/prompt.h"

namespace hc {

constexpr const char* kPromptSetFormat = "headcal-prompt-set";
constexpr int64_t kPromptSetVersion = 1;

struct PromptSetEntry {
  std::string name;
  PromptSpec spec;  // exactly one source, file paths resolved against the set's folder
  double weight = 1;
};

struct PromptSet {
  std::string source;  // the file read, named in every error
  std::string name;    // the set's `name`, or the file's stem
  std::vector<PromptSetEntry> entries;
};

// Parses and checks a set (format, version, keys, one source per entry, names unique, weights
// > 0, lengths >= 1); `folder` resolves relative file paths. InputError(source, "prompts[i] (name):
// ...") for the first problem. Files are checked to exist here, read only by build_prompt_set.
PromptSet parse_prompt_set_yaml(const std::string& text, const std::string& source, const std::string& folder);
PromptSet read_prompt_set(const std::string& path);

// Sets every entry's length to `n` (the command line's --length); n <= 0 leaves them as they are.
void override_prompt_set_length(PromptSet& set, int64_t n);

struct SetPrompt {
  std::string name;
  double weight = 1;
  Prompt prompt;
};

// Builds every prompt (tokenizer may be null where no entry needs text); errors name the set file
// and the entry. `allow_longer` applies to every entry.
std::vector<SetPrompt> build_prompt_set(const PromptSet& set, const Tokenizer* tokenizer, int32_t vocab,
                                        int64_t max_context, bool allow_longer);

// True when some entry needs the tokenizer (text files, text generators).
bool prompt_set_needs_tokenizer(const PromptSet& set);

// sha256 over the prompts' names, weights and token sha256s: identifies the whole set's ids.
std::string prompt_set_sha256(const std::vector<SetPrompt>& prompts);

// "prompt set NAME (FILE): 5 prompts, 8192-8192 tokens".
std::string describe_prompt_set(const PromptSet& set, const std::vector<SetPrompt>& prompts);

}  // namespace hc

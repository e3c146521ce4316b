#pragma once
// Calibration prompts: from a text file, from a token file (.txt, .npy, HDF5), or from a built-in
// generator (kv_retrieval, passkey, multi_needle, text), always as token ids of the model's
// tokenizer, with an exact length on request and a sha256 that identifies the token sequence.
#include <cstdint>
#include <string>
#include <vector>

namespace hc {

class Tokenizer;

struct PromptSpec {
  std::string prompt_file;  // --prompt: UTF-8 text (also the `text` generator's source)
  std::string tokens_file;  // --tokens: ids as .txt, .npy, or HDF5 (FILE.h5 or FILE.h5:/dataset)
  std::string generator;    // --generate: kv_retrieval | passkey | multi_needle | text | random (uniform ids, for timing)
  int64_t length = 0;       // --length N: exactly N tokens; 0 = the source's own length
  uint64_t seed = 0;        // --seed: generated prompts are a function of (generator, N, seed, depth, needles)
  double depth = -1;        // --depth in [0, 1]: where the needle / asked key sits; < 0 = default
                            // (passkey, kv_retrieval; multi_needle places its needles itself and rejects it)
  int needles = 0;          // --needles: multi_needle's number of needles, in [1, 48]; 0 = 4
  bool allow_longer = false;  // --allow-longer: N beyond the model's context is a warning, not an error
  std::string length_option = "--length";  // the option that set `length`, as errors name it
};

struct Prompt {
  std::vector<int32_t> tokens;  // [N]
  std::string sha256;           // of the ids as int32 little-endian
  std::string description;      // one line: source, length, generator parameters
  std::string answer;           // generators: the expected answer (the value, the pass key; multi_needle:
                                // its values in the order asked, separated by ", ")
  std::vector<std::string> warnings;  // for the caller to print (e.g. longer than the context)
};

// Builds the prompt. `max_context` is the model's context length (0 = unknown: not checked).
// Bad input (no or several sources, empty or non-UTF-8 file, ids outside the vocabulary, N
// too short for a generator's fixed text or larger than the context without allow_longer)
// is an InputError with a message that says what to change.
Prompt build_prompt(const PromptSpec& spec, const Tokenizer& tokenizer, int64_t max_context);
// The same where the tokenizer may be absent (null): token files and `--generate random` need only
// the vocabulary size; a text prompt without a tokenizer is an InputError.
Prompt build_prompt(const PromptSpec& spec, const Tokenizer* tokenizer, int32_t vocab, int64_t max_context);

// Token ids of a token file, as stored (no vocabulary check): .npy (integer dtypes, 1-D or one
// row/column), .h5/.hdf5 (dataset "tokens", the only dataset, or the one named after ':'),
// anything else text: integers separated by whitespace or commas, '#' comments, optional [ ].
std::vector<int64_t> read_token_file(const std::string& path);

// n uniform random ids over [0, vocab) for `seed` (the `random` generator; timing runs with
// random weights, where content does not matter). InputError unless n > 0 and vocab > 0.
std::vector<int32_t> random_token_ids(int64_t n, int64_t vocab, uint64_t seed);

// sha256 of the ids as int32 little-endian, lowercase hex.
std::string tokens_sha256(const std::vector<int32_t>& tokens);

// The InfiniteBench cut: the first N - N/2 and the last N/2 tokens (n >= tokens.size() keeps all).
std::vector<int32_t> cut_middle(const std::vector<int32_t>& tokens, size_t n);

// `bytes` of the kv_retrieval context text (a JSON object of random UUID pairs) for `seed`:
// random, hard-to-cache text, used by the tokenizer benchmark when no text is given.
std::string kv_retrieval_text(size_t bytes, uint64_t seed);

}  // namespace hc

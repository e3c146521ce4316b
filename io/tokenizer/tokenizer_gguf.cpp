// tokenizer.ggml.* metadata -> TokenizerData.
#include <cmath>

#include "common/error.h"
#include "io/model/gguf.h"
#include "io/tokenizer/tokenizer.h"

namespace hc {

namespace {

// A boolean or integer metadata value, or `fallback` when the key is absent.
bool flag(const GgufFile& g, const std::string& key, bool fallback) {
  const GgufValue* v = g.find(key);
  if (!v) return fallback;
  if (const bool* b = std::get_if<bool>(&v->scalar)) return *b;
  if (const int64_t* i = std::get_if<int64_t>(&v->scalar)) return *i != 0;
  if (const uint64_t* u = std::get_if<uint64_t>(&v->scalar)) return *u != 0;
  throw InputError(g.path(), "metadata " + key + ": expected a boolean");
}

int32_t optional_id(const GgufFile& g, const std::string& key) {
  if (!g.find(key)) return -1;
  int64_t v = g.get_int(key);
  if (v < -1 || v > INT32_MAX) throw InputError(g.path(), "metadata " + key + ": id " + std::to_string(v) + " out of range");
  return static_cast<int32_t>(v);
}

}  // namespace

TokenizerData tokenizer_data_from_gguf(const GgufFile& g) {
  TokenizerData d;
  d.source = g.path();
  if (!g.find("tokenizer.ggml.model"))
    throw InputError(g.path(), "no tokenizer in this GGUF file (metadata tokenizer.ggml.model is absent)");
  d.model = g.get_string("tokenizer.ggml.model");
  if (d.model != "gpt2" && d.model != "llama")
    throw InputError(g.path(), "tokenizer.ggml.model '" + d.model +
                                   "' is not supported (supported: gpt2 byte-level BPE, llama SentencePiece BPE)");
  d.tokens = g.get_string_array("tokenizer.ggml.tokens");
  const size_t n = d.tokens.size();
  if (g.find("tokenizer.ggml.token_type")) {
    const auto& types = g.get_number_array("tokenizer.ggml.token_type");
    if (types.size() != n)
      throw InputError(g.path(), "metadata tokenizer.ggml.token_type has " + std::to_string(types.size()) +
                                     " entries for " + std::to_string(n) + " tokens");
    d.types.reserve(n);
    for (double t : types) d.types.push_back(static_cast<int32_t>(t));
  }
  if (g.find("tokenizer.ggml.scores")) {
    const auto& scores = g.get_number_array("tokenizer.ggml.scores");
    if (scores.size() != n)
      throw InputError(g.path(), "metadata tokenizer.ggml.scores has " + std::to_string(scores.size()) +
                                     " entries for " + std::to_string(n) + " tokens");
    d.scores.reserve(n);
    for (double s : scores) d.scores.push_back(static_cast<float>(s));
  }
  d.bos_id = optional_id(g, "tokenizer.ggml.bos_token_id");
  d.eos_id = optional_id(g, "tokenizer.ggml.eos_token_id");
  d.unk_id = optional_id(g, "tokenizer.ggml.unknown_token_id");
  if (d.model == "gpt2") {
    d.merges = g.get_string_array("tokenizer.ggml.merges");
    d.pre = g.find("tokenizer.ggml.pre") ? g.get_string("tokenizer.ggml.pre") : "default";
    // llama.cpp's defaults when the file does not say: byte-level BPE adds no BOS.
    d.add_bos = flag(g, "tokenizer.ggml.add_bos_token", false);
    d.add_space_prefix = false;
    // Llama 3's tokenizer.json sets ignore_merges; GGUF does not store it, llama.cpp infers it
    // from the pre-split name.
    d.ignore_merges = d.pre == "llama3" || d.pre == "llama-bpe" || d.pre == "llama-v3";
    // An unknown-token id in a byte-level GGUF is metadata only: the reference model has no
    // unk_token and drops bytes it cannot map (never happens with a full byte alphabet).
    d.unk_id = -1;
  } else {
    d.add_bos = flag(g, "tokenizer.ggml.add_bos_token", true);
    d.add_space_prefix = flag(g, "tokenizer.ggml.add_space_prefix", true);
  }
  if (d.add_bos && d.bos_id < 0) throw InputError(g.path(), "tokenizer adds a BOS token but tokenizer.ggml.bos_token_id is absent");
  return d;
}

}  // namespace hc

#pragma once
// Tokenizers for the Llama-family models headcal calibrates:
//  - byte-level BPE as in GPT-2-style vocabularies (SmolLM2, Llama 3, Qwen2), with the model
//    family's pre-split pattern (gpt2, smollm = digits then gpt2, llama3, qwen2), and
//  - SentencePiece-style BPE as GGUF stores it for Llama 2, Mistral and Yi (scores, byte fallback).
// Vocabularies come from GGUF metadata (tokenizer.ggml.*) or a Hugging Face tokenizer.json.
// Added and special tokens in the text are matched first (leftmost, longest), as the Hugging Face
// `tokenizers` package does by default.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace hc {

class GgufFile;

// GGUF's token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t { Normal = 1, Unknown = 2, Control = 3, UserDefined = 4, Unused = 5, Byte = 6 };

// Everything a tokenizer is built from, whatever file it came from.
struct TokenizerData {
  std::string source;  // file named in errors
  std::string model;   // "gpt2" (byte-level BPE) or "llama" (SentencePiece-style BPE)
  std::string pre;     // byte-level pre-split: gpt2, smollm, llama3, qwen2 (and their GGUF aliases)
  std::vector<std::string> tokens;  // [vocab] token text (byte-level alphabet for gpt2 models)
  std::vector<float> scores;        // [vocab] or empty; SentencePiece merge priorities
  std::vector<int32_t> types;       // [vocab] TokenType values, or empty (= all Normal)
  std::vector<std::string> merges;  // byte-level BPE merges "left right", in rank order
  // Added tokens matched verbatim in the text before pre-splitting (ids into `tokens`). When
  // empty, the tokens of type Control, UserDefined and Unknown are used, as llama.cpp does.
  std::vector<int32_t> added_ids;
  int32_t bos_id = -1;
  int32_t eos_id = -1;
  int32_t unk_id = -1;
  bool add_bos = false;          // prepend bos_id to every encoded text (the model's config says)
  bool add_space_prefix = true;  // SentencePiece: a leading "▁" before text
  bool ignore_merges = false;    // byte-level: a piece that is itself a token skips the merges (Llama 3)
};

// Reads tokenizer.ggml.* from an open GGUF file.
TokenizerData tokenizer_data_from_gguf(const GgufFile& gguf);
// Parses a Hugging Face tokenizer.json (BPE model with a ByteLevel pre-tokenizer family).
TokenizerData tokenizer_data_from_hf_json(const std::string& json_text, const std::string& source);

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Validates `data` (sizes, ids, merges against the vocabulary) and builds the tokenizer.
  static std::unique_ptr<Tokenizer> create(TokenizerData data);

  // Token ids of UTF-8 text, with the model's BOS when add_bos() is set. Ill-formed UTF-8 is an
  // InputError naming `source` and the byte offset (the reference takes only valid strings).
  std::vector<int32_t> encode(std::string_view text, const std::string& source = "text") const;
  std::vector<int32_t> encode(std::string_view text, bool add_bos, const std::string& source) const;
  // Tokens of text that continues earlier text (no BOS, no SentencePiece "▁" prefix): prompt
  // generators build their token sequence piece by piece with it.
  std::vector<int32_t> encode_continuation(std::string_view text, const std::string& source) const;
  // Bytes the ids stand for (special tokens as their text); ids outside the vocabulary throw.
  std::string decode(const std::vector<int32_t>& ids) const;

  int32_t vocab_size() const { return static_cast<int32_t>(data_.tokens.size()); }
  const std::string& token_text(int32_t id) const { return data_.tokens.at(static_cast<size_t>(id)); }
  int32_t token_id(const std::string& text) const;  // -1 when absent
  int32_t bos_id() const { return data_.bos_id; }
  int32_t eos_id() const { return data_.eos_id; }
  bool add_bos() const { return data_.add_bos; }
  const std::string& source() const { return data_.source; }
  // One line for logs: kind, pre-split, vocabulary size, BOS policy.
  virtual std::string description() const = 0;

 protected:
  explicit Tokenizer(TokenizerData data);
  // Tokens of a stretch of valid UTF-8 with no added tokens in it. `after_special` tells whether
  // the stretch starts the text or follows an added token (SentencePiece adds its "▁" prefix then).
  virtual void encode_plain(std::string_view text, bool after_special, std::vector<int32_t>& out) const = 0;
  virtual void decode_token(int32_t id, std::string& out) const = 0;

  std::vector<int32_t> encode_impl(std::string_view text, bool add_bos, bool at_start, const std::string& source) const;

  TokenizerData data_;
  std::unordered_map<std::string, int32_t> vocab_index_;  // token text -> id
  // Added tokens by first byte, longest first, so the scan tests only plausible starts.
  std::vector<std::vector<int32_t>> added_by_first_byte_;  // [256][...]
  bool has_added_ = false;
};

// Loads the tokenizer of a model: a .gguf file, a Hugging Face directory (its tokenizer.json,
// BOS policy from the tokenizer's post-processor) or a tokenizer.json file.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_path);

}  // namespace hc

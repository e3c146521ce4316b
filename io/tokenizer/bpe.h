#pragma once
// Byte-level BPE (GPT-2-style vocabularies) and SentencePiece-style BPE: the two Tokenizer
// implementations, and the pre-split patterns. Internal to io/; users go through io/tokenizer/tokenizer.h.
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "io/tokenizer/tokenizer.h"

namespace hc {

// The regular expressions that split text into pieces before byte-level BPE, written out by hand
// (no regex engine: this is the tokenizer's hot loop). Each gives the same pieces as the
// Hugging Face / Oniguruma regex it is named after:
//   Gpt2:   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//   Smollm: every \p{N} code point alone (HF Digits(individual_digits)), then Gpt2 on each stretch
//   Llama3: (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
//   Qwen2:  as Llama3 with \p{N} instead of \p{N}{1,3}
enum class PreSplit { Gpt2, Smollm, Llama3, Qwen2 };

// Maps a GGUF tokenizer.ggml.pre name (or our own names) to a pattern; throws InputError(source)
// for names whose pattern we do not implement.
PreSplit pre_split_from_name(const std::string& name, const std::string& source);
const char* pre_split_name(PreSplit p);

// Appends the pieces of `text` (valid UTF-8) as [begin, end) byte ranges.
void pre_split(PreSplit pattern, std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& pieces);

// GPT-2's reversible byte <-> printable code point map that byte-level vocabularies are written in.
uint32_t byte_to_codepoint(uint8_t b);
int byte_from_codepoint(uint32_t cp);  // -1 for code points outside the 256 used

class ByteLevelBpe final : public Tokenizer {
 public:
  explicit ByteLevelBpe(TokenizerData data);
  std::string description() const override;
  PreSplit pattern() const { return pattern_; }

 protected:
  void encode_plain(std::string_view text, bool after_special, std::vector<int32_t>& out) const override;
  void decode_token(int32_t id, std::string& out) const override;

 private:
  // Merge table: (left id, right id) -> (rank, merged id), open addressing with linear probing.
  struct MergeSlot {
    uint64_t key = ~uint64_t(0);  // left << 32 | right; all ones = empty
    int32_t rank = 0;
    int32_t merged = 0;
  };
  const MergeSlot* find_merge(int32_t left, int32_t right) const;
  void bpe_piece(std::string_view piece, std::vector<int32_t>& out) const;
  static constexpr size_t kShortPiece = 24;  // bytes; shorter pieces take bpe_short
  void bpe_short(std::string_view piece, std::vector<int32_t>& out) const;

  PreSplit pattern_;
  int32_t byte_token_[256];  // id of the token for each single byte, -1 when the vocabulary lacks it
  std::vector<MergeSlot> merge_table_;
  uint64_t merge_mask_ = 0;
};

class SentencePieceBpe final : public Tokenizer {
 public:
  explicit SentencePieceBpe(TokenizerData data);
  std::string description() const override;

 protected:
  void encode_plain(std::string_view text, bool after_special, std::vector<int32_t>& out) const override;
  void decode_token(int32_t id, std::string& out) const override;

 private:
  int32_t byte_token_[256];  // id of "<0xXX>" for each byte, -1 when absent
  std::vector<bool> mergeable_;  // [vocab] Normal or UserDefined: pieces merging may produce
};

}  // namespace hc

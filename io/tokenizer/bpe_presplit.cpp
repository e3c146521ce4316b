// Pre-split patterns of byte-level BPE tokenizers, hand-written from their regular expressions.
// Every rule below mirrors one alternative of the regex, tried in the regex's order at each
// position; the comments name the alternative. Backtracking cases are spelled out where they occur.
#include <algorithm>
#include <string>
#include <vector>

#include "common/error.h"
#include "io/tokenizer/bpe.h"
#include "io/tokenizer/unicode.h"

namespace hc {

namespace {

using unicode::kDigit;
using unicode::kLetter;
using unicode::kNumber;
using unicode::kSpace;

// The text as code points with their byte offsets and classes.
struct CodePoints {
  std::vector<uint32_t> cp;     // [n]
  std::vector<uint32_t> off;    // [n + 1] byte offset of each code point, then the end
  std::vector<uint8_t> cls;     // [n] unicode class mask
  void load(std::string_view text) {
    cp.clear();
    off.clear();
    cls.clear();
    cp.reserve(text.size());
    off.reserve(text.size() + 1);
    cls.reserve(text.size());
    size_t pos = 0;
    while (pos < text.size()) {
      uint32_t c;
      size_t n = unicode::decode(text, pos, &c);
      if (n == 0) {  // callers validate; a stray byte still gets a piece of its own, never a crash
        c = 0xFFFD;
        n = 1;
      }
      cp.push_back(c);
      off.push_back(static_cast<uint32_t>(pos));
      cls.push_back(unicode::classes(c));
      pos += n;
    }
    off.push_back(static_cast<uint32_t>(pos));
  }
};

inline bool is_other(uint8_t k) { return (k & (kLetter | kNumber | kSpace)) == 0; }
inline bool is_newline(uint32_t c) { return c == '\r' || c == '\n'; }

size_t run_of(const uint8_t* cls, size_t i, size_t end, uint8_t mask) {
  while (i < end && (cls[i] & mask)) ++i;
  return i;
}
size_t run_of_other(const uint8_t* cls, size_t i, size_t end) {
  while (i < end && is_other(cls[i])) ++i;
  return i;
}

// \s+(?!\S)|\s+ at a whitespace code point: a run followed by a non-space gives its last
// whitespace back (the lookahead backtracks) unless the run is a single code point.
size_t whitespace_tail(const uint8_t* cls, size_t i, size_t end) {
  size_t j = run_of(cls, i, end, kSpace);
  if (j == end) return j - i;
  return j - i >= 2 ? j - i - 1 : 1;
}

// Length (in code points) of the gpt2 match at i, within [i, end).
size_t gpt2_match(const uint32_t* c, const uint8_t* k, size_t i, size_t end) {
  // 's|'t|'re|'ve|'m|'ll|'d (case-sensitive)
  if (c[i] == '\'' && i + 1 < end) {
    uint32_t a = c[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 < end) {
      uint32_t b = c[i + 2];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
  }
  const bool space_lead = c[i] == ' ' && i + 1 < end;
  //  ?\p{L}+
  if (space_lead && (k[i + 1] & kLetter)) return run_of(k, i + 1, end, kLetter) - i;
  if (k[i] & kLetter) return run_of(k, i, end, kLetter) - i;
  //  ?\p{N}+
  if (space_lead && (k[i + 1] & kNumber)) return run_of(k, i + 1, end, kNumber) - i;
  if (k[i] & kNumber) return run_of(k, i, end, kNumber) - i;
  //  ?[^\s\p{L}\p{N}]+
  if (space_lead && is_other(k[i + 1])) return run_of_other(k, i + 1, end) - i;
  if (is_other(k[i])) return run_of_other(k, i, end) - i;
  return whitespace_tail(k, i, end);
}

// (?i:'s|'t|'re|'ve|'m|'ll|'d): ASCII case folding, plus U+017F LATIN SMALL LETTER LONG S,
// which Unicode case-folds to 's'.
inline uint32_t fold(uint32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if (c == 0x17F) return 's';
  return c;
}

// Length of the llama3 (max_digits 3) or qwen2 (max_digits 1) match at i.
size_t llama3_match(const uint32_t* c, const uint8_t* k, size_t i, size_t end, size_t max_digits) {
  if (c[i] == '\'' && i + 1 < end) {
    uint32_t a = fold(c[i + 1]);
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 < end) {
      uint32_t b = fold(c[i + 2]);
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
  }
  // [^\r\n\p{L}\p{N}]?\p{L}+
  if (!is_newline(c[i]) && !(k[i] & (kLetter | kNumber)) && i + 1 < end && (k[i + 1] & kLetter))
    return run_of(k, i + 1, end, kLetter) - i;
  if (k[i] & kLetter) return run_of(k, i, end, kLetter) - i;
  // \p{N}{1,3} (llama3) or \p{N} (qwen2)
  if (k[i] & kNumber) {
    size_t j = run_of(k, i, end, kNumber);
    return std::min(j - i, max_digits);
  }
  //  ?[^\s\p{L}\p{N}]+[\r\n]*
  size_t start = (c[i] == ' ' && i + 1 < end && is_other(k[i + 1])) ? i + 1 : i;
  if (is_other(k[start])) {
    size_t j = run_of_other(k, start, end);
    while (j < end && is_newline(c[j])) ++j;
    return j - i;
  }
  // \s*[\r\n]+ : \s* backtracks to the last newline of the whitespace run, [\r\n]+ takes it.
  size_t j = run_of(k, i, end, kSpace);
  for (size_t q = j; q > i; --q)
    if (is_newline(c[q - 1])) return q - i;
  // \s+(?!\S)|\s+
  return whitespace_tail(k, i, end);
}

thread_local CodePoints tls_cps;

}  // namespace

PreSplit pre_split_from_name(const std::string& name, const std::string& source) {
  // GGUF tokenizer.ggml.pre names (llama.cpp's convert script) and their patterns.
  if (name == "gpt2" || name == "default" || name == "gpt-2" || name == "mpt" || name == "olmo" ||
      name == "jais")
    return PreSplit::Gpt2;
  if (name == "smollm" || name == "starcoder" || name == "refact" || name == "command-r" ||
      name == "codeshell" || name == "exaone")
    return PreSplit::Smollm;
  if (name == "llama3" || name == "llama-bpe" || name == "llama-v3" || name == "falcon3" ||
      name == "pixtral" || name == "dbrx" || name == "smaug-bpe")
    return PreSplit::Llama3;
  if (name == "qwen2" || name == "stablelm2" || name == "deepseek-r1-qwen" || name == "hunyuan")
    return PreSplit::Qwen2;
  throw InputError(source, "tokenizer pre-split '" + name +
                               "' is not supported (supported: gpt2, smollm, llama3, qwen2 and their aliases)");
}

const char* pre_split_name(PreSplit p) {
  switch (p) {
    case PreSplit::Gpt2: return "gpt2";
    case PreSplit::Smollm: return "smollm";
    case PreSplit::Llama3: return "llama3";
    case PreSplit::Qwen2: return "qwen2";
  }
  return "?";
}

void pre_split(PreSplit pattern, std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& pieces) {
  CodePoints& cps = tls_cps;
  cps.load(text);
  const uint32_t* c = cps.cp.data();
  const uint8_t* k = cps.cls.data();
  const uint32_t* off = cps.off.data();
  const size_t n = cps.cp.size();
  auto emit = [&](size_t a, size_t b) { pieces.emplace_back(off[a], off[b]); };

  switch (pattern) {
    case PreSplit::Gpt2:
      for (size_t i = 0; i < n;) {
        size_t len = gpt2_match(c, k, i, n);
        emit(i, i + len);
        i += len;
      }
      break;
    case PreSplit::Smollm:
      // Digits(individual_digits): each number code point is a piece; the gpt2 regex then runs on
      // each stretch between them, so its lookaheads stop at the stretch's end.
      for (size_t i = 0; i < n;) {
        if (k[i] & kDigit) {
          emit(i, i + 1);
          ++i;
          continue;
        }
        size_t stretch_end = i;
        while (stretch_end < n && !(k[stretch_end] & kDigit)) ++stretch_end;
        while (i < stretch_end) {
          size_t len = gpt2_match(c, k, i, stretch_end);
          emit(i, i + len);
          i += len;
        }
      }
      break;
    case PreSplit::Llama3:
    case PreSplit::Qwen2: {
      const size_t max_digits = pattern == PreSplit::Llama3 ? 3 : 1;
      for (size_t i = 0; i < n;) {
        size_t len = llama3_match(c, k, i, n, max_digits);
        emit(i, i + len);
        i += len;
      }
      break;
    }
  }
}

uint32_t byte_to_codepoint(uint8_t b) {
  // GPT-2: printable Latin-1 bytes ('!'..'~', U+00A1..U+00AC, U+00AE..U+00FF) map to themselves;
  // the other 68 bytes map, in byte order, to U+0100 onwards.
  static const auto table = [] {
    std::vector<uint32_t> t(256, 0);
    uint32_t next = 0x100;
    for (int v = 0; v < 256; ++v) {
      bool printable = (v >= 0x21 && v <= 0x7E) || (v >= 0xA1 && v <= 0xAC) || (v >= 0xAE && v <= 0xFF);
      t[v] = printable ? static_cast<uint32_t>(v) : next++;
    }
    return t;
  }();
  return table[b];
}

int byte_from_codepoint(uint32_t cp) {
  static const auto table = [] {
    std::vector<int> t(0x200, -1);
    for (int v = 0; v < 256; ++v) t[byte_to_codepoint(static_cast<uint8_t>(v))] = v;
    return t;
  }();
  return cp < 0x200 ? table[cp] : -1;
}

}  // namespace hc

// SentencePiece-style BPE as GGUF stores it for Llama 2, Mistral and Yi (tokenizer.ggml.model =
// "llama"): spaces become U+2581 "▁" (with one in front of each text stretch when
// add_space_prefix), the text starts as single code points, and the adjacent pair whose
// concatenation is the highest-scoring vocabulary piece is merged first (leftmost among equal
// scores) until no pair is a piece. Code points that end up as no piece fall back to their
// "<0xXX>" byte tokens, or to the unknown token when those are absent. No normalisation is applied
// (GGUF does not store SentencePiece's normaliser; llama.cpp applies none either).
#include <algorithm>
#include <cstdio>
#include <string>

#include "common/error.h"
#include "io/tokenizer/bpe.h"
#include "io/tokenizer/unicode.h"

namespace hc {

namespace {

const char kSpaceMark[] = "\xE2\x96\x81";  // U+2581 LOWER ONE EIGHTH BLOCK

struct Piece {
  uint32_t offset;  // into the escaped text
  uint32_t length;  // bytes; 0 once merged into its left neighbour
  int32_t prev;
  int32_t next;
};

struct Bigram {
  float score;
  int32_t left;
  int32_t right;
  uint32_t length;  // bytes of left + right when queued; a mismatch later means it is stale
};
// Max-heap on score, then the leftmost pair first.
inline bool worse(const Bigram& a, const Bigram& b) {
  return a.score != b.score ? a.score < b.score : a.left > b.left;
}

}  // namespace

SentencePieceBpe::SentencePieceBpe(TokenizerData data) : Tokenizer(std::move(data)) {
  if (data_.scores.size() != data_.tokens.size())
    throw InputError(data_.source, "SentencePiece vocabulary needs one score per token (tokenizer.ggml.scores has " +
                                       std::to_string(data_.scores.size()) + ", tokens " +
                                       std::to_string(data_.tokens.size()) + ")");
  for (int b = 0; b < 256; ++b) {
    char name[8];
    std::snprintf(name, sizeof name, "<0x%02X>", b);
    byte_token_[b] = token_id(name);
  }
  mergeable_.assign(data_.tokens.size(), true);
  if (!data_.types.empty())
    for (size_t i = 0; i < data_.tokens.size(); ++i) {
      auto t = static_cast<TokenType>(data_.types[i]);
      mergeable_[i] = t == TokenType::Normal || t == TokenType::UserDefined;
    }
}

void SentencePieceBpe::encode_plain(std::string_view text, bool after_special, std::vector<int32_t>& out) const {
  std::string escaped;  // the text with spaces as "▁"
  escaped.reserve(text.size() + 3);
  if (data_.add_space_prefix && after_special) escaped += kSpaceMark;
  for (char ch : text) {
    if (ch == ' ') escaped += kSpaceMark;
    else escaped.push_back(ch);
  }
  std::vector<Piece> pieces;  // [code points of escaped]
  uint32_t cp;
  for (size_t pos = 0; pos < escaped.size();) {
    size_t n = unicode::decode(escaped, pos, &cp);
    if (n == 0) n = 1;  // callers validate UTF-8; never loop forever on a stray byte
    int32_t idx = static_cast<int32_t>(pieces.size());
    pieces.push_back(Piece{static_cast<uint32_t>(pos), static_cast<uint32_t>(n), idx - 1, idx + 1});
    pos += n;
  }
  if (pieces.empty()) return;
  pieces.back().next = -1;

  std::vector<Bigram> heap;
  auto consider = [&](int32_t left) {
    if (left < 0) return;
    int32_t right = pieces[left].next;
    if (right < 0) return;
    uint32_t len = pieces[left].length + pieces[right].length;
    int32_t id = token_id(escaped.substr(pieces[left].offset, len));
    if (id < 0 || !mergeable_[static_cast<size_t>(id)]) return;
    heap.push_back(Bigram{data_.scores[static_cast<size_t>(id)], left, right, len});
    std::push_heap(heap.begin(), heap.end(), worse);
  };
  for (int32_t i = 0; i + 1 < static_cast<int32_t>(pieces.size()); ++i) consider(i);
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), worse);
    Bigram b = heap.back();
    heap.pop_back();
    Piece& left = pieces[b.left];
    if (left.length == 0 || left.next != b.right || left.length + pieces[b.right].length != b.length) continue;
    Piece& right = pieces[b.right];
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (left.next >= 0) pieces[left.next].prev = b.left;
    consider(left.prev);
    consider(b.left);
  }

  for (int32_t i = 0; i >= 0; i = pieces[i].next) {
    const Piece& p = pieces[i];
    int32_t id = token_id(escaped.substr(p.offset, p.length));
    if (id >= 0) {
      out.push_back(id);
      continue;
    }
    for (uint32_t k = 0; k < p.length; ++k) {  // byte fallback
      int32_t byte_id = byte_token_[static_cast<uint8_t>(escaped[p.offset + k])];
      if (byte_id >= 0) {
        out.push_back(byte_id);
      } else if (data_.unk_id >= 0) {
        out.push_back(data_.unk_id);
        break;  // one unknown token stands for the whole piece, as SentencePiece does
      }
    }
  }
}

void SentencePieceBpe::decode_token(int32_t id, std::string& out) const {
  const std::string& text = data_.tokens[static_cast<size_t>(id)];
  if (!data_.types.empty() && static_cast<TokenType>(data_.types[static_cast<size_t>(id)]) == TokenType::Byte) {
    unsigned v = 0;
    if (std::sscanf(text.c_str(), "<0x%02X>", &v) == 1) {
      out.push_back(static_cast<char>(v));
      return;
    }
  }
  for (size_t pos = 0; pos < text.size();) {
    if (text.compare(pos, 3, kSpaceMark) == 0) {
      out.push_back(' ');
      pos += 3;
    } else {
      out.push_back(text[pos++]);
    }
  }
}

std::string SentencePieceBpe::description() const {
  return "SentencePiece-style BPE, " + std::to_string(vocab_size()) + " tokens, " +
         (data_.add_space_prefix ? "space prefix, " : "") +
         (data_.add_bos ? "BOS " + std::to_string(data_.bos_id) + " prepended" : "no BOS");
}

}  // namespace hc

// Byte-level BPE: pre-split, map bytes to their single-byte tokens, then apply merges lowest rank
// first (leftmost among equal ranks), the order the Hugging Face BPE model uses.
#include "io/tokenizer/bpe.h"

#include <algorithm>
#include <climits>
#include <string>
#include <unordered_map>

#include "common/error.h"
#include "io/tokenizer/unicode.h"

namespace hc {

namespace {

inline uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

inline uint64_t mix(uint64_t k) {  // splitmix64 finaliser: ids are small, so spread them
  k ^= k >> 30;
  k *= 0xbf58476d1ce4e5b9ULL;
  k ^= k >> 27;
  k *= 0x94d049bb133111ebULL;
  k ^= k >> 31;
  return k;
}

struct Symbol {
  int32_t id;
  int32_t prev;  // -1 at the start
  int32_t next;  // -1 at the end
};

struct Candidate {  // a pair (pos, next of pos) that a merge of rank `rank` would join
  int32_t rank;
  int32_t pos;
  int32_t left_id;
  int32_t right_id;
  int32_t merged;
};
// Min-heap on (rank, pos): std::push_heap builds a max-heap, so "less" means "later".
struct Later {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

struct Scratch {
  std::vector<Symbol> symbols;
  std::vector<Candidate> heap;
  std::string bytes_as_token;
  std::vector<std::pair<uint32_t, uint32_t>> pieces;
};
thread_local Scratch tls_scratch;

}  // namespace

ByteLevelBpe::ByteLevelBpe(TokenizerData data) : Tokenizer(std::move(data)) {
  pattern_ = pre_split_from_name(data_.pre.empty() ? "gpt2" : data_.pre, data_.source);
  for (int b = 0; b < 256; ++b) {
    std::string s;
    unicode::append_utf8(s, byte_to_codepoint(static_cast<uint8_t>(b)));
    byte_token_[b] = token_id(s);
  }
  // Table at most half full: lookups stay one or two probes.
  size_t capacity = 16;
  while (capacity < data_.merges.size() * 2 + 2) capacity *= 2;
  merge_table_.assign(capacity, MergeSlot{});
  merge_mask_ = capacity - 1;
  for (size_t rank = 0; rank < data_.merges.size(); ++rank) {
    const std::string& m = data_.merges[rank];
    size_t sp = m.find(' ');
    if (sp == std::string::npos || sp == 0 || sp + 1 >= m.size() || m.find(' ', sp + 1) != std::string::npos)
      throw InputError(data_.source, "merge " + std::to_string(rank) + " '" + m + "' is not two tokens separated by one space");
    std::string left = m.substr(0, sp), right = m.substr(sp + 1);
    int32_t l = token_id(left), r = token_id(right), merged = token_id(left + right);
    if (l < 0 || r < 0 || merged < 0)
      throw InputError(data_.source, "merge " + std::to_string(rank) + " '" + m + "' uses or makes a token that is not in the vocabulary");
    uint64_t key = pair_key(l, r);
    for (uint64_t slot = mix(key) & merge_mask_;; slot = (slot + 1) & merge_mask_) {
      MergeSlot& s = merge_table_[slot];
      if (s.key == key) break;  // a repeated merge keeps its first (lowest) rank
      if (s.key == ~uint64_t(0)) {
        s = MergeSlot{key, static_cast<int32_t>(rank), merged};
        break;
      }
    }
  }
}

const ByteLevelBpe::MergeSlot* ByteLevelBpe::find_merge(int32_t left, int32_t right) const {
  uint64_t key = pair_key(left, right);
  for (uint64_t slot = mix(key) & merge_mask_;; slot = (slot + 1) & merge_mask_) {
    const MergeSlot& s = merge_table_[slot];
    if (s.key == key) return &s;
    if (s.key == ~uint64_t(0)) return nullptr;
  }
}

void ByteLevelBpe::bpe_piece(std::string_view piece, std::vector<int32_t>& out) const {
  Scratch& sc = tls_scratch;
  if (data_.ignore_merges) {  // Llama 3: a piece that is a token is taken whole
    sc.bytes_as_token.clear();
    for (char ch : piece) unicode::append_utf8(sc.bytes_as_token, byte_to_codepoint(static_cast<uint8_t>(ch)));
    int32_t id = token_id(sc.bytes_as_token);
    if (id >= 0) {
      out.push_back(id);
      return;
    }
  }
  if (piece.size() <= kShortPiece) {
    bpe_short(piece, out);
    return;
  }
  std::vector<Symbol>& sym = sc.symbols;  // [bytes of the piece]
  sym.clear();
  for (char ch : piece) {
    int32_t id = byte_token_[static_cast<uint8_t>(ch)];
    if (id < 0) id = data_.unk_id;  // as the reference: unk when configured, else the byte is dropped
    if (id < 0) continue;
    sym.push_back(Symbol{id, static_cast<int32_t>(sym.size()) - 1, static_cast<int32_t>(sym.size()) + 1});
  }
  if (sym.empty()) return;
  sym.back().next = -1;
  const int32_t n = static_cast<int32_t>(sym.size());
  if (n > 1) {
    std::vector<Candidate>& heap = sc.heap;
    heap.clear();
    auto consider = [&](int32_t pos) {
      int32_t nx = sym[pos].next;
      if (nx < 0) return;
      if (const MergeSlot* m = find_merge(sym[pos].id, sym[nx].id)) {
        heap.push_back(Candidate{m->rank, pos, sym[pos].id, sym[nx].id, m->merged});
        std::push_heap(heap.begin(), heap.end(), Later{});
      }
    };
    for (int32_t i = 0; i + 1 < n; ++i) consider(i);
    while (!heap.empty()) {
      std::pop_heap(heap.begin(), heap.end(), Later{});
      Candidate c = heap.back();
      heap.pop_back();
      Symbol& left = sym[c.pos];
      // Stale: the left symbol was absorbed (id -1) or either side has changed since.
      if (left.id != c.left_id || left.next < 0 || sym[left.next].id != c.right_id) continue;
      int32_t right = left.next;
      left.id = c.merged;
      left.next = sym[right].next;
      if (left.next >= 0) sym[left.next].prev = c.pos;
      sym[right].id = -1;
      if (left.prev >= 0) consider(left.prev);
      consider(c.pos);
    }
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) out.push_back(sym[i].id);
}

// Short pieces (most words): the same merge order found by scanning the few adjacent pairs
// for the lowest rank, leftmost first, with no heap bookkeeping. On the mixed 1 MB corpus
// (tests/data/good_tokenizer_corpus.txt, one thread of the 2-core dev machine under load) this
// path took SmolLM2 from 1.2-1.6 to 2.0-2.3 M tokens/s, with identical ids.
void ByteLevelBpe::bpe_short(std::string_view piece, std::vector<int32_t>& out) const {
  int32_t ids[kShortPiece];        // [symbols]
  int32_t ranks[kShortPiece];      // [symbols - 1] rank of merging symbol i with i + 1, or INT32_MAX
  int32_t merged[kShortPiece];     // [symbols - 1] the token that merge makes
  int n = 0;
  for (char ch : piece) {
    int32_t id = byte_token_[static_cast<uint8_t>(ch)];
    if (id < 0) id = data_.unk_id;
    if (id >= 0) ids[n++] = id;
  }
  auto pair_at = [&](int i) {
    if (const MergeSlot* m = find_merge(ids[i], ids[i + 1])) {
      ranks[i] = m->rank;
      merged[i] = m->merged;
    } else {
      ranks[i] = INT32_MAX;
    }
  };
  for (int i = 0; i + 1 < n; ++i) pair_at(i);
  while (n > 1) {
    int best = 0;
    for (int i = 1; i + 1 < n; ++i)
      if (ranks[i] < ranks[best]) best = i;
    if (ranks[best] == INT32_MAX) break;
    ids[best] = merged[best];
    for (int i = best + 1; i + 1 < n; ++i) ids[i] = ids[i + 1];
    for (int i = best + 1; i + 2 < n; ++i) {
      ranks[i] = ranks[i + 1];
      merged[i] = merged[i + 1];
    }
    --n;
    if (best > 0) pair_at(best - 1);
    if (best + 1 < n) pair_at(best);
  }
  out.insert(out.end(), ids, ids + n);
}

void ByteLevelBpe::encode_plain(std::string_view text, bool, std::vector<int32_t>& out) const {
  Scratch& sc = tls_scratch;
  std::vector<std::pair<uint32_t, uint32_t>> pieces;
  pieces.swap(sc.pieces);  // bpe_piece uses the scratch too; keep the piece list apart
  pieces.clear();
  pre_split(pattern_, text, pieces);
  // Words repeat a lot in real text; a per-call cache (keys point into `text`) skips the merges
  // for repeats without any locking between threads.
  std::unordered_map<std::string_view, std::pair<uint32_t, uint32_t>> cache;  // piece -> [first, count) in cached
  std::vector<int32_t> cached;
  cache.reserve(std::min<size_t>(pieces.size(), 1 << 16));
  for (const auto& [begin, end] : pieces) {
    std::string_view piece = text.substr(begin, end - begin);
    if (piece.size() == 1) {  // single bytes never merge
      int32_t id = byte_token_[static_cast<uint8_t>(piece[0])];
      if (id < 0) id = data_.unk_id;
      if (id >= 0) out.push_back(id);
      continue;
    }
    auto it = cache.find(piece);
    if (it != cache.end()) {
      out.insert(out.end(), cached.begin() + it->second.first,
                 cached.begin() + it->second.first + it->second.second);
      continue;
    }
    size_t before = out.size();
    bpe_piece(piece, out);
    uint32_t first = static_cast<uint32_t>(cached.size());
    cached.insert(cached.end(), out.begin() + static_cast<std::ptrdiff_t>(before), out.end());
    cache.emplace(piece, std::make_pair(first, static_cast<uint32_t>(out.size() - before)));
  }
  pieces.swap(sc.pieces);
}

void ByteLevelBpe::decode_token(int32_t id, std::string& out) const {
  const std::string& text = data_.tokens[static_cast<size_t>(id)];
  if (!data_.types.empty()) {
    auto t = static_cast<TokenType>(data_.types[static_cast<size_t>(id)]);
    if (t == TokenType::Control || t == TokenType::UserDefined) {  // added tokens are stored as plain text
      out += text;
      return;
    }
  }
  size_t pos = 0;
  uint32_t cp;
  while (pos < text.size()) {
    size_t n = unicode::decode(text, pos, &cp);
    if (n == 0) {
      out.push_back(text[pos++]);
      continue;
    }
    int b = byte_from_codepoint(cp);
    if (b >= 0) out.push_back(static_cast<char>(b));
    else out.append(text, pos, n);
    pos += n;
  }
}

std::string ByteLevelBpe::description() const {
  return "byte-level BPE (pre-split " + std::string(pre_split_name(pattern_)) + "), " +
         std::to_string(vocab_size()) + " tokens, " + std::to_string(data_.merges.size()) + " merges, " +
         (data_.add_bos ? "BOS " + std::to_string(data_.bos_id) + " prepended" : "no BOS");
}

}  // namespace hc

#include "fuzz/mutate.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <cstring>

namespace hc::fuzz {

namespace {

constexpr size_t kMaxInput = size_t(1) << 20;

size_t below(std::mt19937_64& rng, size_t n) { return n == 0 ? 0 : static_cast<size_t>(rng() % n); }

// Headers and metadata sit at the start of binary formats: half the positions fall in the first 4 KiB.
size_t position(std::mt19937_64& rng, size_t size) {
  if (size == 0) return 0;
  return (rng() & 1) ? below(rng, std::min<size_t>(size, 4096)) : below(rng, size);
}

const uint64_t kInteresting[] = {0,          1,          2,          0x7f,       0x80,       0xff,
                                 0x100,      0x7fff,     0x8000,     0xffff,     0x10000,    0x7fffffff,
                                 0x80000000, 0xffffffff, 1ull << 32, 1ull << 40, 1ull << 60, 0x7fffffffffffffffull,
                                 0xffffffffffffffffull};

const char* const kInterestingText[] = {"0",  "-1",  "1",    "2147483647", "2147483648", "4294967296",
                                        "-2147483649", "9223372036854775807", "99999999999999999999999",
                                        "1e308", "-1e308", "nan", "inf", "-0", "0.5", "1.5", "16777216",
                                        "\"\"", "null", "[]", "{}"};

void flip_bit(std::string& s, std::mt19937_64& rng) {
  if (s.empty()) return;
  s[position(rng, s.size())] ^= static_cast<char>(1u << below(rng, 8));
}

void set_byte(std::string& s, std::mt19937_64& rng) {
  if (s.empty()) return;
  s[position(rng, s.size())] = static_cast<char>(kInteresting[below(rng, 6)]);
}

// A little-endian integer of 1, 2, 4 or 8 bytes overwritten with an interesting value.
void set_integer(std::string& s, std::mt19937_64& rng) {
  const size_t width = size_t(1) << below(rng, 4);
  if (s.size() < width) return;
  const size_t at = std::min(position(rng, s.size()), s.size() - width);
  const uint64_t v = kInteresting[below(rng, sizeof kInteresting / sizeof kInteresting[0])];
  for (size_t b = 0; b < width; ++b) s[at + b] = static_cast<char>((v >> (8 * b)) & 0xff);
}

void cut(std::string& s, std::mt19937_64& rng) {
  if (s.empty()) return;
  if (rng() & 1) {
    s.resize(position(rng, s.size()));  // truncate
  } else {
    const size_t at = position(rng, s.size());
    s.erase(at, 1 + below(rng, std::min<size_t>(64, s.size() - at)));
  }
}

void repeat(std::string& s, std::mt19937_64& rng) {
  if (s.empty() || s.size() >= kMaxInput) return;
  const size_t at = position(rng, s.size());
  const size_t len = 1 + below(rng, std::min<size_t>(256, s.size() - at));
  const std::string chunk = s.substr(at, len);
  s.insert(position(rng, s.size()), chunk);
}

void splice(std::string& s, const std::vector<std::string>& corpus, std::mt19937_64& rng) {
  const std::string& other = corpus[below(rng, corpus.size())];
  if (other.empty() || s.empty()) return;
  const size_t from = below(rng, other.size());
  const size_t len = 1 + below(rng, std::min<size_t>(1024, other.size() - from));
  const size_t at = position(rng, s.size());
  s.replace(at, std::min(len, s.size() - at), other.substr(from, len));
}

// A decimal number in the text replaced by an extreme value (or a token: null, [], "").
void replace_number(std::string& s, std::mt19937_64& rng) {
  std::vector<size_t> starts;
  for (size_t i = 0; i < s.size(); ++i)
    if (std::isdigit(static_cast<unsigned char>(s[i])) && (i == 0 || !std::isalnum(static_cast<unsigned char>(s[i - 1]))))
      starts.push_back(i);
  if (starts.empty()) return;
  const size_t at = starts[below(rng, starts.size())];
  size_t end = at;
  while (end < s.size() && (std::isdigit(static_cast<unsigned char>(s[end])) || s[end] == '.' || s[end] == 'e' ||
                            s[end] == '-'))
    ++end;
  s.replace(at, end - at, kInterestingText[below(rng, sizeof kInterestingText / sizeof kInterestingText[0])]);
}

// One line (text formats) duplicated or moved: duplicate keys, extra documents, reordered fields.
void repeat_line(std::string& s, std::mt19937_64& rng) {
  std::vector<size_t> starts{0};
  for (size_t i = 0; i + 1 < s.size(); ++i)
    if (s[i] == '\n') starts.push_back(i + 1);
  const size_t a = starts[below(rng, starts.size())];
  size_t e = s.find('\n', a);
  e = e == std::string::npos ? s.size() : e + 1;
  const std::string line = s.substr(a, e - a);
  if (s.size() + line.size() > kMaxInput) return;
  s.insert(starts[below(rng, starts.size())], (rng() % 8 == 0) ? "---\n" : line);
}

}  // namespace

std::string mutate(const std::string& input, const std::vector<std::string>& corpus, std::mt19937_64& rng) {
  std::string s = input;
  const int count = 1 + static_cast<int>(below(rng, 4));
  for (int i = 0; i < count; ++i) {
    switch (below(rng, 9)) {
      case 0: flip_bit(s, rng); break;
      case 1: set_byte(s, rng); break;
      case 2: set_integer(s, rng); break;
      case 3: cut(s, rng); break;
      case 4: repeat(s, rng); break;
      case 5: splice(s, corpus, rng); break;
      case 6: case 7: replace_number(s, rng); break;
      default: repeat_line(s, rng); break;
    }
  }
  if (s.size() > kMaxInput) s.resize(kMaxInput);
  return s;
}

}  // namespace hc::fuzz

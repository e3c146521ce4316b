#include "io/tokenizer/unicode.h"

#include <algorithm>
#include <array>

namespace hc::unicode {

namespace {

// The BMP is looked up in a flat table (64 KiB) built once from the ranges: pre-splitting asks
// for the class of every code point, and a binary search over ~800 ranges per character would
// cost more than the BPE itself on ASCII-heavy text.
struct BmpTable {
  std::array<uint8_t, 0x10000> mask{};
  BmpTable() {
    for (size_t i = 0; i < kClassRangeCount; ++i) {
      const ClassRange& r = kClassRanges[i];
      if (r.first > 0xFFFF) break;
      for (uint32_t cp = r.first; cp <= std::min<uint32_t>(r.last, 0xFFFF); ++cp) mask[cp] = r.mask;
    }
  }
};

const BmpTable& bmp() {
  static const BmpTable table;
  return table;
}

}  // namespace

uint8_t classes(uint32_t cp) {
  if (cp <= 0xFFFF) return bmp().mask[cp];
  const ClassRange* end = kClassRanges + kClassRangeCount;
  const ClassRange* it = std::upper_bound(kClassRanges, end, cp,
                                          [](uint32_t v, const ClassRange& r) { return v < r.first; });
  if (it == kClassRanges) return 0;
  --it;
  return cp <= it->last ? it->mask : 0;
}

size_t decode(std::string_view s, size_t pos, uint32_t* cp) {
  const size_t left = s.size() - pos;
  const auto b = [&](size_t i) { return static_cast<uint8_t>(s[pos + i]); };
  const uint8_t c0 = b(0);
  if (c0 < 0x80) {
    *cp = c0;
    return 1;
  }
  const auto cont = [&](size_t i) { return i < left && (b(i) & 0xC0) == 0x80; };
  if (c0 >= 0xC2 && c0 <= 0xDF) {
    if (!cont(1)) return 0;
    *cp = (uint32_t(c0 & 0x1F) << 6) | (b(1) & 0x3F);
    return 2;
  }
  if (c0 >= 0xE0 && c0 <= 0xEF) {
    if (!cont(1) || !cont(2)) return 0;
    uint32_t v = (uint32_t(c0 & 0x0F) << 12) | (uint32_t(b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    if (v < 0x800 || (v >= 0xD800 && v <= 0xDFFF)) return 0;  // overlong or surrogate
    *cp = v;
    return 3;
  }
  if (c0 >= 0xF0 && c0 <= 0xF4) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    uint32_t v = (uint32_t(c0 & 0x07) << 18) | (uint32_t(b(1) & 0x3F) << 12) |
                 (uint32_t(b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    if (v < 0x10000 || v > 0x10FFFF) return 0;
    *cp = v;
    return 4;
  }
  return 0;
}

size_t first_invalid(std::string_view s) {
  size_t pos = 0;
  uint32_t cp;
  while (pos < s.size()) {
    // ASCII fast path: most calibration text is ASCII.
    if (static_cast<uint8_t>(s[pos]) < 0x80) {
      ++pos;
      continue;
    }
    size_t n = decode(s, pos, &cp);
    if (n == 0) return pos;
    pos += n;
  }
  return std::string_view::npos;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace hc::unicode

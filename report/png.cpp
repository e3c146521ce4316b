#include "report/png.h"

#include <algorithm>

#include "common/error.h"

namespace hc::report {

namespace {

uint32_t crc32_update(uint32_t crc, const uint8_t* data, size_t n) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;  // CRC-32, reflected
      t[i] = c;
    }
    return t;
  }();
  crc = ~crc;
  for (size_t i = 0; i < n; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

void put_be32(std::string& out, uint32_t v) {
  out.push_back(static_cast<char>(v >> 24));
  out.push_back(static_cast<char>(v >> 16));
  out.push_back(static_cast<char>(v >> 8));
  out.push_back(static_cast<char>(v));
}

void put_chunk(std::string& out, const char type[4], const std::string& data) {
  put_be32(out, static_cast<uint32_t>(data.size()));
  std::string body(type, 4);
  body += data;
  out += body;
  put_be32(out, crc32_update(0, reinterpret_cast<const uint8_t*>(body.data()), body.size()));
}

// zlib stream (RFC 1950) holding `raw` in stored deflate blocks (RFC 1951, BTYPE = 00).
std::string zlib_stored(const std::string& raw) {
  std::string out;
  out.push_back(static_cast<char>(0x78));  // CMF: deflate, 32K window
  out.push_back(static_cast<char>(0x01));  // FLG: no dictionary, check bits make 0x7801 % 31 == 0
  size_t pos = 0;
  do {
    size_t len = std::min<size_t>(65535, raw.size() - pos);
    bool final = pos + len == raw.size();
    out.push_back(static_cast<char>(final ? 1 : 0));
    out.push_back(static_cast<char>(len & 0xFF));
    out.push_back(static_cast<char>(len >> 8));
    out.push_back(static_cast<char>(~len & 0xFF));
    out.push_back(static_cast<char>((~len >> 8) & 0xFF));
    out.append(raw, pos, len);
    pos += len;
  } while (pos < raw.size());
  uint32_t a = 1, b = 0;  // Adler-32
  for (unsigned char c : raw) {
    a = (a + c) % 65521;
    b = (b + a) % 65521;
  }
  put_be32(out, (b << 16) | a);
  return out;
}

}  // namespace

const Palette& heat_palette() {
  static const Palette palette = [] {
    // Anchor colours of the viridis map at 0, 1/4, 1/2, 3/4, 1.
    const double anchors[5][3] = {{68, 1, 84}, {59, 82, 139}, {33, 145, 140}, {94, 201, 98}, {253, 231, 37}};
    Palette p{};
    for (int i = 0; i < 256; ++i) {
      double x = i / 255.0 * 4;
      int k = std::min(3, static_cast<int>(x));
      double f = x - k;
      for (int c = 0; c < 3; ++c)
        p[i][c] = static_cast<uint8_t>(anchors[k][c] + f * (anchors[k + 1][c] - anchors[k][c]) + 0.5);
    }
    return p;
  }();
  return palette;
}

std::string encode_png_palette(const std::vector<uint8_t>& pixels, int width, int height, const Palette& palette) {
  HC_ASSERT(width > 0 && height > 0 && pixels.size() == static_cast<size_t>(width) * height, "png shape");
  std::string png("\x89PNG\r\n\x1a\n", 8);
  std::string ihdr;
  put_be32(ihdr, static_cast<uint32_t>(width));
  put_be32(ihdr, static_cast<uint32_t>(height));
  ihdr += std::string("\x08\x03\x00\x00\x00", 5);  // 8-bit, palette, deflate, filter 0, no interlace
  put_chunk(png, "IHDR", ihdr);
  std::string plte;
  for (const auto& rgb : palette)
    for (uint8_t c : rgb) plte.push_back(static_cast<char>(c));
  put_chunk(png, "PLTE", plte);
  std::string raw;  // each scanline: filter type 0, then the row's indices
  raw.reserve(static_cast<size_t>(height) * (width + 1));
  for (int y = 0; y < height; ++y) {
    raw.push_back(0);
    raw.append(reinterpret_cast<const char*>(pixels.data()) + static_cast<size_t>(y) * width, width);
  }
  put_chunk(png, "IDAT", zlib_stored(raw));
  put_chunk(png, "IEND", "");
  return png;
}

std::string base64_encode(const std::string& bytes) {
  static const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    uint32_t v = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    for (int k = 3; k >= 0; --k) out.push_back(alphabet[(v >> (6 * k)) & 63]);
  }
  if (i < bytes.size()) {
    uint32_t v = uint8_t(bytes[i]) << 16;
    if (i + 1 < bytes.size()) v |= uint8_t(bytes[i + 1]) << 8;
    out.push_back(alphabet[(v >> 18) & 63]);
    out.push_back(alphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? alphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

}  // namespace hc::report

#pragma once
// Minimal PNG writer for the report's attention-map thumbnails: 8-bit palette images, zlib
// stream made of stored (uncompressed) deflate blocks, so it needs no zlib. Plus base64 for
// data: URIs. Thumbnails are small (<= 128 x 128), so skipping compression costs little.
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace hc::report {

using Palette = std::array<std::array<uint8_t, 3>, 256>;

// A perceptually ordered dark-blue -> green -> yellow ramp (viridis-like, interpolated between
// five anchor colours).
const Palette& heat_palette();

// pixels: [height, width] palette indices, row-major.
std::string encode_png_palette(const std::vector<uint8_t>& pixels, int width, int height, const Palette& palette);

std::string base64_encode(const std::string& bytes);

}  // namespace hc::report

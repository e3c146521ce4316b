#include "io/model/safetensors.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace hc {

namespace {

// The reference implementation refuses headers above 100 MB; a real one is a few hundred KB
// even for 70B checkpoints, so anything bigger is a corrupt length, not a big model.
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;

std::string one_line(std::string s) {
  for (char& c : s)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return s;
}

// BF16/F16/F32 are the float types the engine takes; everything else is rejected by name.
bool parse_dtype(const std::string& s, DType& out, size_t& elem_bytes) {
  if (s == "BF16") { out = DType::BF16; elem_bytes = 2; return true; }
  if (s == "F16") { out = DType::F16; elem_bytes = 2; return true; }
  if (s == "F32") { out = DType::F32; elem_bytes = 4; return true; }
  return false;
}

uint64_t read_u64_le(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// A non-negative JSON integer, or throws naming the tensor and field.
uint64_t json_uint(const nlohmann::json& v, const std::string& path, const std::string& what) {
  if (v.is_number_unsigned()) return v.get<uint64_t>();
  if (v.is_number_integer() && v.get<int64_t>() >= 0) return static_cast<uint64_t>(v.get<int64_t>());
  throw InputError(path, what + " must be a non-negative integer, got " + one_line(v.dump()));
}

}  // namespace

SafetensorsFile::SafetensorsFile(const std::string& path) : map_(std::make_unique<MappedFile>(path)) {
  const uint8_t* bytes = map_->data();
  const size_t size = map_->size();
  if (size < 8)
    throw InputError(path, "too short for a safetensors file (" + std::to_string(size) +
                               " bytes; the 8-byte header length is missing)");
  const uint64_t json_len = read_u64_le(bytes);
  if (json_len > size - 8)
    throw InputError(path, "header length " + std::to_string(json_len) + " exceeds the " +
                               std::to_string(size - 8) + " bytes after it (truncated or not safetensors)");
  if (json_len > kMaxHeaderBytes)
    throw InputError(path, "header length " + std::to_string(json_len) + " is implausibly large (limit " +
                               std::to_string(kMaxHeaderBytes) + ")");
  header_bytes_ = 8 + static_cast<size_t>(json_len);
  const uint8_t* data_start = bytes + header_bytes_;
  const uint64_t data_size = size - header_bytes_;

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(bytes + 8, bytes + header_bytes_);
  } catch (const nlohmann::json::exception& e) {  // also out_of_range: a number beyond double
    std::string msg = e.what();
    if (auto p = msg.find("] "); p != std::string::npos) msg = msg.substr(p + 2);  // drop "[json.exception...]"
    throw InputError(path, "header JSON is malformed: " + one_line(msg));
  }
  if (!header.is_object()) throw InputError(path, "header JSON is not an object");

  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    if (name == "__metadata__") continue;  // free-form string map; nothing headcal needs
    const nlohmann::json& entry = it.value();
    const std::string where = "tensor " + name;
    if (!entry.is_object()) throw InputError(path, where + ": header entry is not an object");
    if (!entry.contains("dtype") || !entry["dtype"].is_string())
      throw InputError(path, where + ": missing or non-string \"dtype\"");
    if (!entry.contains("shape") || !entry["shape"].is_array())
      throw InputError(path, where + ": missing or non-array \"shape\"");
    if (!entry.contains("data_offsets") || !entry["data_offsets"].is_array() || entry["data_offsets"].size() != 2)
      throw InputError(path, where + ": \"data_offsets\" must be an array [begin, end]");

    TensorInfo info;
    info.name = name;
    info.file_name = name;
    size_t elem_bytes = 0;
    const std::string dtype = entry["dtype"].get<std::string>();
    if (!parse_dtype(dtype, info.dtype, elem_bytes))
      throw InputError(path, where + ": dtype " + one_line(dtype) +
                                 " is not supported (headcal reads BF16, F16 and F32 safetensors)");

    // numel with overflow checks: a corrupt shape must not wrap into a small, "consistent" size.
    uint64_t numel = 1;
    for (const auto& d : entry["shape"]) {
      uint64_t dim = json_uint(d, path, where + ": shape dimension");
      if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        throw InputError(path, where + ": shape dimension " + std::to_string(dim) + " is too large");
      if (dim != 0 && numel > std::numeric_limits<uint64_t>::max() / dim / elem_bytes)
        throw InputError(path, where + ": shape " + one_line(entry["shape"].dump()) + " overflows");
      numel *= dim;
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    const uint64_t nbytes = numel * elem_bytes;
    const uint64_t begin = json_uint(entry["data_offsets"][0], path, where + ": data_offsets[0]");
    const uint64_t end = json_uint(entry["data_offsets"][1], path, where + ": data_offsets[1]");
    if (begin > end)
      throw InputError(path, where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                                 "] end before begin");
    if (end > data_size)
      throw InputError(path, where + ": data_offsets end " + std::to_string(end) + " is beyond the " +
                                 std::to_string(data_size) + " data bytes in the file (truncated?)");
    if (end - begin != nbytes)
      throw InputError(path, where + ": data_offsets [" + std::to_string(begin) + ", " + std::to_string(end) +
                                 "] hold " + std::to_string(end - begin) + " bytes but " + dtype + " " +
                                 shape_string(info.shape) + " needs " + std::to_string(nbytes));
    info.data = data_start + begin;
    info.nbytes = static_cast<size_t>(nbytes);
    tensors_.emplace(name, std::move(info));
  }

  // Overlapping byte ranges mean a corrupt or hand-edited header: two tensors would alias.
  std::vector<const TensorInfo*> by_offset;
  for (const auto& [name, info] : tensors_)
    if (info.nbytes > 0) by_offset.push_back(&info);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const TensorInfo* a, const TensorInfo* b) { return a->data < b->data; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const TensorInfo* prev = by_offset[i - 1];
    if (by_offset[i]->data < prev->data + prev->nbytes)
      throw InputError(path, "tensor " + by_offset[i]->name + ": data overlaps tensor " + prev->name);
  }
}

float bf16_to_f32(uint16_t b) {
  uint32_t bits = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t mant = h & 0x3ffu;
  uint32_t bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (mant << 13);  // inf / nan (payload kept)
  } else if (exp != 0) {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  } else if (mant == 0) {
    bits = sign;  // signed zero
  } else {
    // Subnormal half: renormalise so the leading 1 becomes the implicit bit.
    int e = -14;
    while ((mant & 0x400u) == 0) {
      mant <<= 1;
      --e;
    }
    mant &= 0x3ffu;
    bits = sign | (static_cast<uint32_t>(e + 127) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

void convert_to_f32(DType t, const uint8_t* src, int64_t n, float* dst) {
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, static_cast<size_t>(n) * 4);
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, src + 2 * i, 2);
        dst[i] = bf16_to_f32(v);
      }
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        uint16_t v;
        std::memcpy(&v, src + 2 * i, 2);
        dst[i] = f16_to_f32(v);
      }
      return;
    default:
      throw Error(std::string("internal error: convert_to_f32 got ") + dtype_name(t));
  }
}

}  // namespace hc

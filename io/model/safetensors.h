#pragma once
// Reader for one .safetensors file: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}} (plus an ignored "__metadata__"), then the raw data.
// Offsets are relative to the first byte after the header. The file is memory-mapped; every
// length, offset and size is checked against the bytes actually present before anything is read.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/util/mapped_file.h"
#include "io/model/tensor.h"

namespace hc {

class SafetensorsFile {
 public:
  // Throws InputError(path, "...") naming the tensor when the header or an entry is bad,
  // or when a tensor has a dtype other than BF16, F16, F32.
  explicit SafetensorsFile(const std::string& path);

  const std::string& path() const { return map_->path(); }
  // Tensors keyed by the name stored in the file (for HF checkpoints that is the canonical name).
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  // The 8 length bytes plus the JSON header: what the fingerprint hashes.
  const uint8_t* header_data() const { return map_->data(); }
  size_t header_bytes() const { return header_bytes_; }

 private:
  std::unique_ptr<MappedFile> map_;
  std::map<std::string, TensorInfo> tensors_;
  size_t header_bytes_ = 0;
};

// Element conversions used by the readers (exact: every f16/bf16 value is representable as float).
float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t b);
// Converts `n` elements of a BF16, F16 or F32 buffer (any alignment) to float.
void convert_to_f32(DType t, const uint8_t* src, int64_t n, float* dst);

}  // namespace hc

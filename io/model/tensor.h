#pragma once
// Tensor descriptors shared by the model readers.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace hc {

// Storage types the readers understand. Quantised types are GGUF block formats.
enum class DType { F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q4_K, Q6_K, Q5_0, Q5_1, Q5_K };

const char* dtype_name(DType t);

// A tensor as stored in a model file (memory-mapped, not owned).
// shape is row-major in Hugging Face convention: a Linear weight is [out_features, in_features].
struct TensorInfo {
  std::string name;           // canonical Hugging Face name, e.g. "model.layers.0.self_attn.q_proj.weight"
  std::string file_name;      // name as stored in the file (GGUF "blk.0.attn_q.weight")
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // into the mapping
  size_t nbytes = 0;

  int64_t numel() const;
};

std::string shape_string(const std::vector<int64_t>& shape);  // "[576, 49152]"

}  // namespace hc

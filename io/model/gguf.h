#pragma once
// GGUF v2/v3 reader: header, metadata, tensor infos, alignment, mmap; dequantisation to float.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <variant>
#include <vector>

#include "io/util/mapped_file.h"
#include "io/model/model_file.h"

namespace hc {

// One metadata value. Arrays hold scalars or strings (nested arrays are rejected as unsupported).
struct GgufValue {
  enum class Type : uint32_t {
    U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
    STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12
  };
  Type type = Type::U32;
  Type array_type = Type::U32;  // element type when type == ARRAY
  // Scalars are stored widened; arrays of numbers in `numbers`, arrays of strings in `strings`.
  std::variant<int64_t, uint64_t, double, bool, std::string> scalar;
  std::vector<double> numbers;
  std::vector<std::string> strings;

  std::string to_string(size_t max_items = 8) const;  // for inspect
};

class GgufFile : public ModelFile {
 public:
  explicit GgufFile(const std::string& path);  // validates everything before allocating

  // ModelFile
  const std::string& path() const override { return map_->path(); }
  std::string format() const override { return "gguf"; }
  const ModelConfig& config() const override { return config_; }
  const std::map<std::string, TensorInfo>& tensors() const override { return tensors_; }
  std::vector<std::pair<std::string, std::string>> metadata_summary() const override;
  std::vector<float> load_f32(const std::string& name, const std::vector<int64_t>& expected = {}) const override;
  std::string fingerprint() const override;

  uint32_t version() const { return version_; }
  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;  // nullptr when absent
  // Typed getters: throw InputError(path, "metadata KEY: ...") when absent or of the wrong type.
  int64_t get_int(const std::string& key) const;
  double get_float(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  std::string string_or_empty(const std::string& key) const;  // "" when absent or not a string
  const std::vector<std::string>& get_string_array(const std::string& key) const;
  const std::vector<double>& get_number_array(const std::string& key) const;

 private:
  std::unique_ptr<MappedFile> map_;
  uint32_t version_ = 0;
  std::map<std::string, GgufValue> kv_;
  std::map<std::string, TensorInfo> tensors_;
  ModelConfig config_;
  size_t header_bytes_ = 0;  // bytes before the tensor data (hashed for the fingerprint)

 public:
  // Additions beyond the original API.
  size_t header_bytes() const { return header_bytes_; }  // header + metadata + tensor infos
  size_t data_offset() const { return data_offset_; }    // first byte of the aligned tensor data
  uint64_t alignment() const { return alignment_; }
  // Heads (n_heads for Q, n_kv_heads for K) of the llama.cpp converter's RoPE row permutation
  // for this tensor (q/k weights and biases of llama-arch files); 0 when stored in HF row order.
  int64_t rope_permutation_heads(const std::string& name) const;

 private:
  void parse(const std::string& path);
  void fill_config();
  size_t data_offset_ = 0;
  uint64_t alignment_ = 32;
  std::map<std::string, int64_t> rope_permuted_heads_;  // canonical name -> heads of the permutation
};

// Dequantise `n` elements of type `t` starting at `src` into `dst` (n must be a multiple of the
// type's block size; callers check). Exposed for tests and for the CUDA weight upload.
void dequantize(DType t, const uint8_t* src, int64_t n, float* dst);
// Bytes that `n` elements of type `t` occupy; throws InputError when n is not a whole number of blocks.
size_t dtype_nbytes(DType t, int64_t n);
int64_t dtype_block_size(DType t);

}  // namespace hc

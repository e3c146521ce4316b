// GGUF v2/v3 reader. Layout (little-endian): "GGUF", u32 version, u64 tensor_count, u64 kv_count,
// kv_count x (string key, u32 type, value), tensor_count x (string name, u32 n_dims, u64 ne[n_dims],
// u32 ggml type, u64 offset), padding to general.alignment, tensor data. Strings are u64 length +
// bytes. Every count and length is checked against the bytes that remain before anything sized
// from it is allocated, so a corrupt or hostile file ends in an InputError, never in a huge
// allocation or a read past the mapping.
#include "io/model/gguf.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>
#include <utility>

#include "common/error.h"
#include "io/model/fused_tensors.h"
#include "io/model/model_check.h"
#include "io/util/sha256.h"

namespace hc {

namespace {

constexpr uint64_t kDefaultAlignment = 32;  // GGUF spec default when general.alignment is absent
constexpr uint32_t kMaxDims = 4;            // GGML_MAX_DIMS
constexpr double kPi = 3.14159265358979323846;

// ggml tensor types by id (ggml.h). Only the ones mapped to a DType are readable; the rest are
// named so the error says what the file holds.
struct GgmlType {
  uint32_t id;
  const char* name;
  bool supported;
  DType dtype;
};
constexpr GgmlType kGgmlTypes[] = {
    {0, "F32", true, DType::F32},       {1, "F16", true, DType::F16},
    {2, "Q4_0", true, DType::Q4_0},     {3, "Q4_1", true, DType::Q4_1},
    {6, "Q5_0", true, DType::Q5_0},     {7, "Q5_1", true, DType::Q5_1},
    {8, "Q8_0", true, DType::Q8_0},     {9, "Q8_1", false, DType::F32},
    {10, "Q2_K", false, DType::F32},    {11, "Q3_K", false, DType::F32},
    {12, "Q4_K", true, DType::Q4_K},    {13, "Q5_K", true, DType::Q5_K},
    {14, "Q6_K", true, DType::Q6_K},    {15, "Q8_K", false, DType::F32},
    {16, "IQ2_XXS", false, DType::F32}, {17, "IQ2_XS", false, DType::F32},
    {18, "IQ3_XXS", false, DType::F32}, {19, "IQ1_S", false, DType::F32},
    {20, "IQ4_NL", false, DType::F32},  {21, "IQ3_S", false, DType::F32},
    {22, "IQ2_S", false, DType::F32},   {23, "IQ4_XS", false, DType::F32},
    {24, "I8", false, DType::F32},      {25, "I16", false, DType::F32},
    {26, "I32", false, DType::F32},     {27, "I64", false, DType::F32},
    {28, "F64", false, DType::F32},     {29, "IQ1_M", false, DType::F32},
    {30, "BF16", true, DType::BF16},    {34, "TQ1_0", false, DType::F32},
    {35, "TQ2_0", false, DType::F32},   {39, "MXFP4", false, DType::F32},
};

const GgmlType* find_ggml_type(uint32_t id) {
  for (const GgmlType& t : kGgmlTypes)
    if (t.id == id) return &t;
  return nullptr;
}

const char* value_type_name(GgufValue::Type t) {
  switch (t) {
    case GgufValue::Type::U8: return "u8";
    case GgufValue::Type::I8: return "i8";
    case GgufValue::Type::U16: return "u16";
    case GgufValue::Type::I16: return "i16";
    case GgufValue::Type::U32: return "u32";
    case GgufValue::Type::I32: return "i32";
    case GgufValue::Type::F32: return "f32";
    case GgufValue::Type::BOOL: return "bool";
    case GgufValue::Type::STRING: return "string";
    case GgufValue::Type::ARRAY: return "array";
    case GgufValue::Type::U64: return "u64";
    case GgufValue::Type::I64: return "i64";
    case GgufValue::Type::F64: return "f64";
  }
  return "?";
}

// Size in bytes of a fixed-size value type; 0 for STRING and ARRAY, -1 for an unknown id.
int scalar_size(uint32_t type) {
  switch (static_cast<GgufValue::Type>(type)) {
    case GgufValue::Type::U8:
    case GgufValue::Type::I8:
    case GgufValue::Type::BOOL: return 1;
    case GgufValue::Type::U16:
    case GgufValue::Type::I16: return 2;
    case GgufValue::Type::U32:
    case GgufValue::Type::I32:
    case GgufValue::Type::F32: return 4;
    case GgufValue::Type::U64:
    case GgufValue::Type::I64:
    case GgufValue::Type::F64: return 8;
    case GgufValue::Type::STRING:
    case GgufValue::Type::ARRAY: return 0;
  }
  return -1;
}

bool is_integer(GgufValue::Type t) {
  switch (t) {
    case GgufValue::Type::U8: case GgufValue::Type::I8: case GgufValue::Type::U16: case GgufValue::Type::I16:
    case GgufValue::Type::U32: case GgufValue::Type::I32: case GgufValue::Type::U64: case GgufValue::Type::I64:
      return true;
    default: return false;
  }
}

// Bounds-checked little-endian reader over the mapping. `what` names the field in errors.
class Cursor {
 public:
  Cursor(const std::string& path, const uint8_t* data, size_t size) : path_(path), data_(data), size_(size) {}

  size_t pos() const { return pos_; }
  size_t remaining() const { return size_ - pos_; }

  void need(uint64_t n, const std::string& what) const {
    if (n > remaining())
      throw InputError(path_, what + ": needs " + std::to_string(n) + " bytes at offset " + std::to_string(pos_) +
                                  " but the file ends at " + std::to_string(size_) + " (truncated or corrupt)");
  }
  template <typename T>
  T read(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }
  std::string read_string(const std::string& what) {
    const uint64_t len = read<uint64_t>(what + " length");
    need(len, what + " (string of " + std::to_string(len) + " bytes)");
    std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(len));
    pos_ += static_cast<size_t>(len);
    return s;
  }

 private:
  const std::string& path_;
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// Reads one scalar of `type` (already known to be a scalar type) widened into `out`.
void read_scalar(Cursor& c, GgufValue::Type type, const std::string& what, GgufValue& out) {
  switch (type) {
    case GgufValue::Type::U8: out.scalar = uint64_t(c.read<uint8_t>(what)); break;
    case GgufValue::Type::I8: out.scalar = int64_t(c.read<int8_t>(what)); break;
    case GgufValue::Type::U16: out.scalar = uint64_t(c.read<uint16_t>(what)); break;
    case GgufValue::Type::I16: out.scalar = int64_t(c.read<int16_t>(what)); break;
    case GgufValue::Type::U32: out.scalar = uint64_t(c.read<uint32_t>(what)); break;
    case GgufValue::Type::I32: out.scalar = int64_t(c.read<int32_t>(what)); break;
    case GgufValue::Type::U64: out.scalar = c.read<uint64_t>(what); break;
    case GgufValue::Type::I64: out.scalar = c.read<int64_t>(what); break;
    case GgufValue::Type::F32: out.scalar = double(c.read<float>(what)); break;
    case GgufValue::Type::F64: out.scalar = c.read<double>(what); break;
    case GgufValue::Type::BOOL: out.scalar = c.read<uint8_t>(what) != 0; break;
    case GgufValue::Type::STRING: out.scalar = c.read_string(what); break;
    case GgufValue::Type::ARRAY: break;  // not a scalar; callers never pass it
  }
}

double scalar_as_double(const GgufValue& v) {
  if (auto p = std::get_if<int64_t>(&v.scalar)) return double(*p);
  if (auto p = std::get_if<uint64_t>(&v.scalar)) return double(*p);
  if (auto p = std::get_if<double>(&v.scalar)) return *p;
  if (auto p = std::get_if<bool>(&v.scalar)) return *p ? 1.0 : 0.0;
  return 0.0;
}

std::string shorten(const std::string& s, size_t max_chars) {
  std::string out;
  for (char ch : s) {
    if (out.size() >= max_chars) return out + "...";
    if (ch == '\n') out += "\\n";
    else if (ch == '\t') out += "\\t";
    else out += ch;
  }
  return out;
}

std::string format_number(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(int64_t(v));
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

// Per-layer tensors: GGUF base name (blk.N.<base>.weight|bias) and the canonical names.
struct LayerTensor {
  const char* gguf;
  std::string (*weight)(int);
  std::string (*bias)(int);  // nullptr: a bias here is not supported
};
const LayerTensor kLayerTensors[] = {
    {"attn_norm", tensor_names::attn_norm, nullptr},  {"attn_q", tensor_names::q_proj, tensor_names::q_bias},
    {"attn_k", tensor_names::k_proj, tensor_names::k_bias}, {"attn_v", tensor_names::v_proj, tensor_names::v_bias},
    {"attn_output", tensor_names::o_proj, nullptr},   {"ffn_norm", tensor_names::mlp_norm, nullptr},
    {"ffn_gate", tensor_names::gate_proj, nullptr},   {"ffn_up", tensor_names::up_proj, nullptr},
    {"ffn_down", tensor_names::down_proj, nullptr},   {"attn_q_norm", tensor_names::q_norm, nullptr},
    {"attn_k_norm", tensor_names::k_norm, nullptr},
};

// Canonical name -> the name llama.cpp's converter gives it (for error messages).
std::string gguf_name_of(const std::string& canonical, int64_t n_layers) {
  if (canonical == tensor_names::embed()) return "token_embd.weight";
  if (canonical == tensor_names::final_norm()) return "output_norm.weight";
  if (canonical == tensor_names::lm_head()) return "output.weight";
  for (int i = 0; i < int(n_layers); ++i) {
    const std::string blk = "blk." + std::to_string(i) + ".";
    if (canonical == tensor_names::post_attn_out_norm(i)) return blk + "post_attention_norm.weight";
    if (canonical == tensor_names::post_mlp_norm(i)) return blk + "post_ffw_norm.weight";
    for (const LayerTensor& e : kLayerTensors) {
      if (e.weight(i) == canonical) return blk + e.gguf + ".weight";
      if (e.bias && e.bias(i) == canonical) return blk + e.gguf + ".bias";
    }
  }
  return canonical;
}

// GGUF tensor name -> canonical Hugging Face name. Returns "" for names the graph does not use
// (kept under their GGUF name). Throws for tensors the engine would have to ignore silently.
// phi3 files hold fused projections: attn_qkv, and ffn_up with gate and up stacked (no ffn_gate);
// they get the fused Hugging Face names and are split like safetensors' (fused_tensors.h). glm4
// files stack gate and up in ffn_up the same way (q/k/v stay separate, with biases) and hold
// GLM-4's output norms as post_attention_norm and post_ffw_norm. chatglm files hold THUDM's fused
// query_key_value as attn_qkv, weight and bias (or, converted from GlmForCausalLM, attn_q/k/v),
// and dense_h_to_4h (gate then up) as ffn_up.
std::string canonical_name(const std::string& path, const std::string& arch, const std::string& gguf) {
  namespace tn = tensor_names;
  if (gguf == "token_embd.weight") return tn::embed();
  if (gguf == "output_norm.weight") return tn::final_norm();
  if (gguf == "output.weight") return tn::lm_head();
  if (gguf.rfind("blk.", 0) != 0) return "";
  const size_t dot = gguf.find('.', 4);
  if (dot == std::string::npos || dot == 4) return "";
  const std::string index = gguf.substr(4, dot - 4);
  if (index.size() > 6 || index.find_first_not_of("0123456789") != std::string::npos) return "";
  const int layer = std::stoi(index);
  const std::string rest = gguf.substr(dot + 1);
  if ((arch == "phi3" || arch == "chatglm") && rest == "attn_qkv.weight") return tn::qkv_proj(layer);
  if (arch == "chatglm" && rest == "attn_qkv.bias") return tn::qkv_bias(layer);
  if ((arch == "phi3" || arch == "glm4" || arch == "chatglm") && rest == "ffn_up.weight")
    return tn::gate_up_proj(layer);
  if (arch == "glm4" && rest == "post_attention_norm.weight") return tn::post_attn_out_norm(layer);
  if (arch == "glm4" && rest == "post_ffw_norm.weight") return tn::post_mlp_norm(layer);
  for (const LayerTensor& e : kLayerTensors) {
    const std::string base = e.gguf;
    if (rest == base + ".weight") return e.weight(layer);
    if (rest == base + ".bias") {
      if (!e.bias)
        throw InputError(path, "tensor '" + gguf + "': a bias on " + base +
                                   " is not supported (the Llama-family graph has none there)");
      return e.bias(layer);
    }
  }
  return "";
}

// One more than the highest N of the file's blk.N.* tensors (0 when there are none).
int64_t count_stored_layers(const std::map<std::string, TensorInfo>& tensors) {
  int64_t count = 0;
  for (const auto& [name, t] : tensors) {
    const std::string& f = t.file_name;
    if (f.rfind("blk.", 0) != 0) continue;
    const size_t dot = f.find('.', 4);
    if (dot == std::string::npos || dot == 4 || dot - 4 > 6) continue;
    const std::string index = f.substr(4, dot - 4);
    if (index.find_first_not_of("0123456789") == std::string::npos) count = std::max<int64_t>(count, std::stoll(index) + 1);
  }
  return count;
}

uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

}  // namespace

// ---------------------------------------------------------------------------------------------
// GgufValue

std::string GgufValue::to_string(size_t max_items) const {
  if (type != Type::ARRAY) {
    if (auto p = std::get_if<std::string>(&scalar)) return "\"" + shorten(*p, 80) + "\"";
    if (auto p = std::get_if<bool>(&scalar)) return *p ? "true" : "false";
    if (auto p = std::get_if<int64_t>(&scalar)) return std::to_string(*p);
    if (auto p = std::get_if<uint64_t>(&scalar)) return std::to_string(*p);
    return format_number(scalar_as_double(*this));
  }
  const size_t n = array_type == Type::STRING ? strings.size() : numbers.size();
  std::string out = "[";
  for (size_t i = 0; i < n && i < max_items; ++i) {
    if (i) out += ", ";
    out += array_type == Type::STRING ? "\"" + shorten(strings[i], 24) + "\"" : format_number(numbers[i]);
  }
  if (n > max_items) out += ", ...";
  out += "] (" + std::to_string(n) + " " + value_type_name(array_type) + ")";
  return out;
}

// ---------------------------------------------------------------------------------------------
// GgufFile: parsing

GgufFile::GgufFile(const std::string& path) : map_(std::make_unique<MappedFile>(path)) {
  parse(path);
  fill_config();
  config_.validate(path);
  split_fused_tensors(tensors_, config_, path);
  // Same check as check_model_tensors, reported with the name and dimension order of the file.
  for (const ExpectedTensor& e : expected_model_tensors(config_)) {
    auto it = tensors_.find(e.name);
    if (it == tensors_.end()) {
      if (e.required)
        throw InputError(path, "missing tensor " + e.name + " ('" + gguf_name_of(e.name, config_.n_layers) +
                                   "' in GGUF; expected shape " + shape_string(e.shape) + ")");
    } else if (it->second.shape != e.shape) {
      const std::vector<int64_t> stored(e.shape.rbegin(), e.shape.rend());
      const std::vector<int64_t> found(it->second.shape.rbegin(), it->second.shape.rend());
      throw InputError(path, "tensor " + e.name + " has shape " + shape_string(it->second.shape) + ", expected " +
                                 shape_string(e.shape) + " for this config (GGUF '" + it->second.file_name +
                                 "' dims " + shape_string(found) + ", expected " + shape_string(stored) + ")");
    }
  }
  check_model_tensors(*this);
}

void GgufFile::parse(const std::string& path) {
  Cursor c(path, map_->data(), map_->size());
  if (map_->size() < 4) throw InputError(path, "not a GGUF file (only " + std::to_string(map_->size()) + " bytes)");
  const uint8_t* m = map_->data();
  if (std::memcmp(m, "GGUF", 4) != 0) {
    char shown[32];
    std::snprintf(shown, sizeof(shown), "%02x %02x %02x %02x", m[0], m[1], m[2], m[3]);
    throw InputError(path, std::string("not a GGUF file (magic bytes ") + shown + ", expected 47 47 55 46 \"GGUF\")");
  }
  c.read<uint32_t>("magic");
  version_ = c.read<uint32_t>("header: version");
  if (version_ == 1) throw InputError(path, "GGUF version 1 is not supported (only versions 2 and 3)");
  if (version_ != 2 && version_ != 3) {
    const bool swapped = version_ == 0x02000000u || version_ == 0x03000000u;
    throw InputError(path, "unsupported GGUF version " + std::to_string(version_) +
                               (swapped ? " (a big-endian GGUF file; only little-endian is supported)"
                                        : " (supported: 2, 3)"));
  }
  const uint64_t tensor_count = c.read<uint64_t>("header: tensor count");
  const uint64_t kv_count = c.read<uint64_t>("header: metadata count");
  // Smallest possible entries: a KV is key length (8) + type (4) + a 1-byte value; a tensor info
  // is name length (8) + n_dims (4) + one dim (8) + type (4) + offset (8).
  constexpr uint64_t kMinKvBytes = 8 + 4 + 1, kMinTensorInfoBytes = 8 + 4 + 8 + 4 + 8;
  if (kv_count > c.remaining() / kMinKvBytes)
    throw InputError(path, "header: metadata count " + std::to_string(kv_count) + " is impossible: the " +
                               std::to_string(c.remaining()) + " remaining bytes hold at most " +
                               std::to_string(c.remaining() / kMinKvBytes));
  if (tensor_count > (c.remaining() - kv_count * kMinKvBytes) / kMinTensorInfoBytes)
    throw InputError(path, "header: tensor count " + std::to_string(tensor_count) + " is impossible: the " +
                               std::to_string(c.remaining()) + " remaining bytes hold at most " +
                               std::to_string(c.remaining() / kMinTensorInfoBytes));

  // Metadata.
  for (uint64_t i = 0; i < kv_count; ++i) {
    const std::string key = c.read_string("metadata entry " + std::to_string(i) + ": key");
    const std::string what = "metadata '" + key + "'";
    const uint32_t type_id = c.read<uint32_t>(what + ": type");
    const int size = scalar_size(type_id);
    if (size < 0) throw InputError(path, what + ": unknown value type " + std::to_string(type_id));
    GgufValue v;
    v.type = static_cast<GgufValue::Type>(type_id);
    if (v.type != GgufValue::Type::ARRAY) {
      read_scalar(c, v.type, what, v);
    } else {
      const uint32_t elem_id = c.read<uint32_t>(what + ": array element type");
      const int elem_size = scalar_size(elem_id);
      if (elem_size < 0) throw InputError(path, what + ": unknown array element type " + std::to_string(elem_id));
      v.array_type = static_cast<GgufValue::Type>(elem_id);
      if (v.array_type == GgufValue::Type::ARRAY)
        throw InputError(path, what + ": nested arrays (arrays of arrays) are not supported");
      const uint64_t count = c.read<uint64_t>(what + ": array length");
      // A string element is at least its 8-byte length.
      const uint64_t min_elem = v.array_type == GgufValue::Type::STRING ? 8 : uint64_t(elem_size);
      if (count > c.remaining() / min_elem)
        throw InputError(path, what + ": array of " + std::to_string(count) + " " + value_type_name(v.array_type) +
                                   " cannot fit in the " + std::to_string(c.remaining()) + " remaining bytes");
      if (v.array_type == GgufValue::Type::STRING) {
        v.strings.reserve(static_cast<size_t>(count));
        for (uint64_t j = 0; j < count; ++j) v.strings.push_back(c.read_string(what + "[" + std::to_string(j) + "]"));
      } else {
        v.numbers.reserve(static_cast<size_t>(count));
        GgufValue elem;
        for (uint64_t j = 0; j < count; ++j) {
          read_scalar(c, v.array_type, what, elem);
          v.numbers.push_back(scalar_as_double(elem));
        }
      }
    }
    if (!kv_.emplace(key, std::move(v)).second) throw InputError(path, what + ": key appears twice");
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (!is_integer(a->type)) throw InputError(path, "metadata 'general.alignment': expected an integer");
    const double al = scalar_as_double(*a);
    if (!(al >= 1 && al <= double(1u << 30)) || (uint64_t(al) & (uint64_t(al) - 1)) != 0)
      throw InputError(path, "metadata 'general.alignment' = " + format_number(al) + " is not a power of two");
    alignment_ = uint64_t(al);
  } else {
    alignment_ = kDefaultAlignment;
  }

  // Tensor infos.
  struct RawInfo {
    std::string name;
    std::vector<int64_t> ne;  // GGUF order: ne[0] is the fastest-varying (in_features)
    const GgmlType* type;
    uint64_t offset;
  };
  std::vector<RawInfo> infos;
  infos.reserve(static_cast<size_t>(tensor_count));
  for (uint64_t i = 0; i < tensor_count; ++i) {
    RawInfo r;
    r.name = c.read_string("tensor info " + std::to_string(i) + ": name");
    const std::string what = "tensor '" + r.name + "'";
    const uint32_t n_dims = c.read<uint32_t>(what + ": n_dims");
    if (n_dims == 0 || n_dims > kMaxDims)
      throw InputError(path, what + ": n_dims " + std::to_string(n_dims) + " is out of range (1.." +
                                 std::to_string(kMaxDims) + ")");
    int64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t ne = c.read<uint64_t>(what + ": dimension " + std::to_string(d));
      if (ne == 0 || ne > uint64_t(std::numeric_limits<int64_t>::max()) ||
          int64_t(ne) > std::numeric_limits<int64_t>::max() / numel)
        throw InputError(path, what + ": dimension " + std::to_string(d) + " = " + std::to_string(ne) +
                                   (ne == 0 ? " is zero" : " makes the element count overflow"));
      numel *= int64_t(ne);
      r.ne.push_back(int64_t(ne));
    }
    const uint32_t type_id = c.read<uint32_t>(what + ": type");
    r.type = find_ggml_type(type_id);
    if (!r.type) throw InputError(path, what + ": unknown tensor type id " + std::to_string(type_id));
    if (!r.type->supported)
      throw InputError(path, std::string("unsupported tensor type ") + r.type->name + " (" + std::to_string(type_id) +
                                 ") for tensor '" + r.name + "' (supported: F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K)");
    const int64_t block = dtype_block_size(r.type->dtype);
    if (r.ne[0] % block != 0)
      throw InputError(path, what + ": row length " + std::to_string(r.ne[0]) + " is not a multiple of the " +
                                 r.type->name + " block size " + std::to_string(block));
    r.offset = c.read<uint64_t>(what + ": data offset");
    infos.push_back(std::move(r));
  }
  header_bytes_ = c.pos();
  data_offset_ = static_cast<size_t>(align_up(header_bytes_, alignment_));
  const size_t file_size = map_->size();
  if (!infos.empty() && data_offset_ > file_size)
    throw InputError(path, "tensor data would start at offset " + std::to_string(data_offset_) +
                               ", past the end of the file (size " + std::to_string(file_size) + ")");

  // Place every tensor inside the data section, then map names.
  const uint64_t data_bytes = infos.empty() ? 0 : file_size - data_offset_;
  const std::string arch = string_or_empty("general.architecture");
  for (const RawInfo& r : infos) {
    const std::string what = "tensor '" + r.name + "'";
    int64_t numel = 1;
    for (int64_t ne : r.ne) numel *= ne;
    const size_t nbytes = dtype_nbytes(r.type->dtype, numel);
    if (r.offset % alignment_ != 0)
      throw InputError(path, what + ": data offset " + std::to_string(r.offset) + " is not a multiple of the alignment " +
                                 std::to_string(alignment_));
    if (r.offset > data_bytes || nbytes > data_bytes - r.offset)
      throw InputError(path, what + ": data [offset " + std::to_string(data_offset_ + r.offset) + ", " +
                                 std::to_string(nbytes) + " bytes] runs past end of file (size " +
                                 std::to_string(file_size) + ")");
    TensorInfo t;
    t.file_name = r.name;
    t.name = canonical_name(path, arch, r.name);
    if (t.name.empty()) t.name = r.name;
    t.dtype = r.type->dtype;
    t.shape.assign(r.ne.rbegin(), r.ne.rend());  // canonical row-major: [out_features, in_features]
    t.data = map_->data() + data_offset_ + r.offset;
    t.nbytes = nbytes;
    const std::string canonical = t.name;
    if (!tensors_.emplace(canonical, std::move(t)).second)
      throw InputError(path, what + ": a second tensor maps to the name " + canonical);
  }

  std::vector<const TensorInfo*> by_start;
  for (const auto& [name, t] : tensors_) by_start.push_back(&t);
  std::sort(by_start.begin(), by_start.end(), [](const TensorInfo* a, const TensorInfo* b) { return a->data < b->data; });
  for (size_t i = 1; i < by_start.size(); ++i)
    if (by_start[i]->data < by_start[i - 1]->data + by_start[i - 1]->nbytes)
      throw InputError(path, "tensor '" + by_start[i]->file_name + "': data overlaps tensor '" +
                                 by_start[i - 1]->file_name + "'");
}

// ---------------------------------------------------------------------------------------------
// GgufFile: metadata -> ModelConfig

void GgufFile::fill_config() {
  const std::string& file = path();
  ModelConfig& c = config_;
  const std::string file_arch = get_string("general.architecture");
  if (file_arch != "llama" && file_arch != "mistral" && file_arch != "qwen2" && file_arch != "qwen3" &&
      file_arch != "phi3" && file_arch != "glm4" && file_arch != "chatglm")
    throw InputError(file, "architecture '" + file_arch +
                               "' (general.architecture) is not supported (llama, mistral, qwen2, qwen3, phi3, glm4, "
                               "chatglm)");
  // llama.cpp's chatglm architecture is GLM-4-9B(-chat, -chat-1m) as THUDM ships it, and
  // GlmForCausalLM: the graph of transformers' glm (no output norms). Its keys keep the prefix.
  c.arch = file_arch == "chatglm" ? "glm" : file_arch;
  const bool glm = c.arch == "glm" || c.arch == "glm4";
  const std::string p = file_arch + ".";
  if (file_arch == "chatglm") {
    // The converter writes GLM-4's vocabulary as byte-level BPE (tokenizer.ggml.pre 'chatglm-bpe')
    // and ChatGLM3's as SentencePiece ('chatglm-spm', tokenizer.ggml.model 'llama'); ChatGLM2's
    // tokenizer is SentencePiece too. Only GLM-4 is checked against transformers' GlmForCausalLM.
    const std::string pre = string_or_empty("tokenizer.ggml.pre");
    const std::string vocab_model = string_or_empty("tokenizer.ggml.model");
    if (pre == "chatglm-spm" || vocab_model == "llama")
      throw InputError(file, (pre == "chatglm-spm" ? std::string("metadata 'tokenizer.ggml.pre' = 'chatglm-spm'")
                                                   : std::string("metadata 'tokenizer.ggml.model' = 'llama'")) +
                                 " (a SentencePiece vocabulary) marks a ChatGLM2/3 file; of llama.cpp's chatglm "
                                 "architecture only GLM-4 (byte-level BPE vocabulary, 'chatglm-bpe') is supported");
  }
  if (c.arch == "glm4") {
    // rope.dimension_sections marks GLM-4V (M-RoPE), whose Q/K rows the converter reordered for
    // NEOX pairs; nextn_predict_layers counts extra MTP blocks stored after the model's own.
    if (find(p + "rope.dimension_sections"))
      throw InputError(file, "metadata '" + p + "rope.dimension_sections' marks a multimodal-RoPE (GLM-4V) file; "
                                 "only text GLM-4 (interleaved RoPE) is supported");
    if (find(p + "nextn_predict_layers") && get_int(p + "nextn_predict_layers") != 0)
      throw InputError(file, "metadata '" + p + "nextn_predict_layers' = " +
                                 std::to_string(get_int(p + "nextn_predict_layers")) +
                                 ": multi-token-prediction layers are not supported");
  }

  c.name = string_or_empty("general.name");
  if (c.name.empty()) {
    const size_t slash = file.find_last_of('/');
    c.name = slash == std::string::npos ? file : file.substr(slash + 1);
  }
  c.n_layers = get_int(p + "block_count");
  // Before anything is sized by block_count: it must match the blk.N tensors the file holds.
  const int64_t stored_layers = count_stored_layers(tensors_);
  if (c.n_layers != stored_layers)
    throw InputError(file, "metadata '" + p + "block_count' = " + std::to_string(c.n_layers) + ", but the file holds " +
                               (stored_layers == 0 ? std::string("no layer tensors")
                                                   : "tensors for layers 0-" + std::to_string(stored_layers - 1)));
  c.max_context = get_int(p + "context_length");
  c.hidden = get_int(p + "embedding_length");
  c.intermediate = get_int(p + "feed_forward_length");
  c.n_heads = get_int(p + "attention.head_count");
  c.n_kv_heads = find(p + "attention.head_count_kv") ? get_int(p + "attention.head_count_kv") : c.n_heads;
  c.rms_eps = get_float(p + "attention.layer_norm_rms_epsilon");
  if (find(p + "rope.freq_base")) c.rope_theta = get_float(p + "rope.freq_base");

  if (find(p + "attention.key_length")) {
    c.head_dim = get_int(p + "attention.key_length");
  } else {
    if (c.n_heads <= 0 || c.hidden % c.n_heads != 0)
      throw InputError(file, "metadata: embedding_length " + std::to_string(c.hidden) +
                                 " is not a multiple of attention.head_count " + std::to_string(c.n_heads) +
                                 " and attention.key_length is absent");
    c.head_dim = c.hidden / c.n_heads;
  }
  if (find(p + "attention.value_length") && get_int(p + "attention.value_length") != c.head_dim)
    throw InputError(file, "metadata '" + p + "attention.value_length' = " +
                               std::to_string(get_int(p + "attention.value_length")) + " differs from key_length " +
                               std::to_string(c.head_dim) + " (not supported)");
  // The glm4 and chatglm converters always write the rotated width (head_dim *
  // partial_rotary_factor, 0.5 by default); without it the file does not say how much of each
  // head RoPE rotates.
  if (glm && !find(p + "rope.dimension_count"))
    throw InputError(file, "metadata '" + p + "rope.dimension_count' is missing (" + file_arch +
                               " rotates part of each head; llama.cpp's converter writes head_dim * "
                               "partial_rotary_factor there)");
  if (find(p + "rope.dimension_count") && get_int(p + "rope.dimension_count") != c.head_dim) {
    // Partial rotary is part of the phi3 and GLM graphs (partial_rotary_factor); the other graphs
    // rotate whole heads.
    if (c.arch != "phi3" && !glm)
      throw InputError(file, "metadata '" + p + "rope.dimension_count' = " +
                                 std::to_string(get_int(p + "rope.dimension_count")) + " is not head_dim " +
                                 std::to_string(c.head_dim) +
                                 " (partial rotary embeddings are supported for phi3, glm4 and chatglm only)");
    c.rotary_dim = get_int(p + "rope.dimension_count");
    if (c.rotary_dim <= 0 || c.rotary_dim % 2 != 0 || c.rotary_dim > c.head_dim)
      throw InputError(file, "metadata '" + p + "rope.dimension_count' = " + std::to_string(c.rotary_dim) +
                                 " must be even and in [2, head_dim " + std::to_string(c.head_dim) + "]");
  }
  if (glm) {
    // llama.cpp runs glm4 and chatglm with its NORM rope type: pairs (2t, 2t + 1), as
    // transformers' GLM and THUDM's code do, on rows in Hugging Face order. GLM-4-0414 (glm4) norms
    // each block's attention and MLP outputs.
    c.rope_interleaved = true;
    c.post_norms = c.arch == "glm4";
  }
  // The converter writes phi3's sliding_window (0: none). A window shorter than the context
  // changes which keys a query sees; headcal models full causal attention.
  if (c.arch == "phi3" && find(p + "attention.sliding_window")) {
    const int64_t window = get_int(p + "attention.sliding_window");
    if (window > 0 && window < c.max_context)
      throw InputError(file, "metadata '" + p + "attention.sliding_window' = " + std::to_string(window) +
                                 " is shorter than the context length " + std::to_string(c.max_context) +
                                 "; sliding-window attention is not supported (headcal models full causal attention)");
  }

  if (find(p + "vocab_size")) c.vocab = get_int(p + "vocab_size");
  else if (find("tokenizer.ggml.tokens")) c.vocab = int64_t(get_string_array("tokenizer.ggml.tokens").size());
  else if (has(tensor_names::embed())) c.vocab = tensors_.at(tensor_names::embed()).shape.at(0);
  if (find("tokenizer.ggml.bos_token_id")) c.bos_id = get_int("tokenizer.ggml.bos_token_id");
  if (find("tokenizer.ggml.eos_token_id")) c.eos_id = get_int("tokenizer.ggml.eos_token_id");

  c.tie_embeddings = !has(tensor_names::lm_head());
  c.qkv_bias = c.arch == "qwen2" || has(tensor_names::q_bias(0)) || has(tensor_names::qkv_bias(0));
  c.qk_norm = c.arch == "qwen3";

  // RoPE scaling: explicit metadata (linear), or a rope_freqs tensor (how the converter stores llama3's).
  if (find(p + "rope.scaling.type")) {
    const std::string type = get_string(p + "rope.scaling.type");
    if (type == "linear") {
      c.rope_scaling.type = RopeScalingType::Linear;
      c.rope_scaling.factor = get_float(p + "rope.scaling.factor");
    } else if (type == "yarn") {
      RopeScaling& s = c.rope_scaling;
      s.type = RopeScalingType::Yarn;
      s.factor = get_float(p + "rope.scaling.factor");
      s.original_max_position = get_int(p + "rope.scaling.original_context_length");
      if (find(p + "rope.scaling.yarn_beta_fast")) s.beta_fast = get_float(p + "rope.scaling.yarn_beta_fast");
      if (find(p + "rope.scaling.yarn_beta_slow")) s.beta_slow = get_float(p + "rope.scaling.yarn_beta_slow");
      // llama.cpp multiplies these on top of YaRN's derived magnitude; only their neutral values
      // describe the transformers model headcal computes.
      for (const auto& [key, neutral] : {std::make_pair(std::string("rope.scaling.attn_factor"), 1.0),
                                         std::make_pair(std::string("rope.scaling.yarn_attn_factor"), 1.0),
                                         std::make_pair(std::string("rope.scaling.yarn_log_multiplier"), 0.0)})
        if (find(p + key) && get_float(p + key) != neutral)
          throw InputError(file, "metadata '" + p + key + "' = " + std::to_string(get_float(p + key)) +
                                     " is not supported with yarn scaling (only " + std::to_string(neutral) + ")");
    } else if (type != "none") {
      throw InputError(file, "metadata '" + p + "rope.scaling.type' = '" + type +
                                 "' is not supported (none, linear, yarn, or llama3 via rope_freqs.weight)");
    }
  } else if (find(p + "rope.scale_linear")) {  // older converters
    c.rope_scaling.type = RopeScalingType::Linear;
    c.rope_scaling.factor = get_float(p + "rope.scale_linear");
  }
  // LongRoPE (phi3): the converter stores the per-pair factors as two F32 tensors of rotary/2,
  // the pretraining context as original_context_length and the magnitude as attn_factor.
  if (has("rope_factors_long.weight") || has("rope_factors_short.weight")) {
    if (c.rope_scaling.type != RopeScalingType::None)
      throw InputError(file, "tensors 'rope_factors_long.weight' / 'rope_factors_short.weight' together with "
                             "another rope scaling type are not supported");
    RopeScaling& s = c.rope_scaling;
    const int64_t pairs = c.rotary_dims() / 2;
    for (const auto& [name, list] : {std::make_pair("rope_factors_long.weight", &s.long_factor),
                                     std::make_pair("rope_factors_short.weight", &s.short_factor)}) {
      if (!has(name))
        throw InputError(file, std::string("tensor '") + name + "' is missing (longrope needs the long and the short factors)");
      const TensorInfo& t = tensors_.at(name);
      if (t.dtype != DType::F32 || t.shape != std::vector<int64_t>{pairs})
        throw InputError(file, std::string("tensor '") + name + "': expected F32 of shape " + shape_string({pairs}) +
                                   " (one factor per rotary pair), found " + dtype_name(t.dtype) + " " +
                                   shape_string(t.shape));
      std::vector<float> values(static_cast<size_t>(pairs));  // [rotary/2]
      dequantize(DType::F32, t.data, pairs, values.data());
      list->assign(values.begin(), values.end());
    }
    s.type = RopeScalingType::LongRope;
    s.original_max_position = get_int(p + "rope.scaling.original_context_length");
    if (s.original_max_position <= 0)
      throw InputError(file, "metadata '" + p + "rope.scaling.original_context_length' must be > 0, got " +
                                 std::to_string(s.original_max_position));
    s.factor = double(c.max_context) / double(s.original_max_position);
    if (find(p + "rope.scaling.attn_factor")) s.attention_factor = get_float(p + "rope.scaling.attn_factor");
  }
  if (has("rope_freqs.weight")) {
    if (c.rope_scaling.type == RopeScalingType::Yarn || c.rope_scaling.type == RopeScalingType::LongRope)
      throw InputError(file, "tensor 'rope_freqs.weight' together with yarn or longrope scaling is not supported");
    const TensorInfo& t = tensors_.at("rope_freqs.weight");
    if (t.dtype != DType::F32 || t.shape != std::vector<int64_t>{c.head_dim / 2})
      throw InputError(file, "tensor 'rope_freqs.weight': expected F32 of shape " + shape_string({c.head_dim / 2}) +
                                 ", found " + dtype_name(t.dtype) + " " + shape_string(t.shape));
    std::vector<float> factors(static_cast<size_t>(c.head_dim / 2));  // [head_dim/2]
    dequantize(DType::F32, t.data, c.head_dim / 2, factors.data());
    // The converter wrote factor[i] = 1 / ((1 - s_i) / factor + s_i), s_i the llama3 ramp at
    // frequency i: 0 (factor) for long wavelengths, 1 (no scaling) for short ones, linear in
    // original_context / wavelength in between. Recover parameters that reproduce every value.
    const double factor = *std::max_element(factors.begin(), factors.end());
    if (factor > 1.0) {
      RopeScaling& s = c.rope_scaling;
      s.type = RopeScalingType::Llama3;
      s.factor = factor;
      if (find(p + "rope.scaling.original_context_length"))
        s.original_max_position = get_int(p + "rope.scaling.original_context_length");
      const double half = double(c.head_dim / 2);
      std::vector<std::pair<double, double>> ramp;  // (original_context / wavelength, s)
      for (size_t i = 0; i < factors.size(); ++i) {
        const double inv_freq = std::pow(c.rope_theta, -double(i) / half);
        const double x = double(s.original_max_position) * inv_freq / (2 * kPi);
        if (factors[i] > 1.0f + 1e-6f && factors[i] < float(factor) * (1 - 1e-6f))
          ramp.emplace_back(x, (factor / factors[i] - 1.0) / (factor - 1.0));
      }
      if (ramp.size() >= 2) {
        // s = (x - low) / (high - low): a line through the ramp's end points.
        const auto [x0, s0] = ramp.front();
        const auto [x1, s1] = ramp.back();
        const double slope = (s1 - s0) / (x1 - x0);
        if (!(std::isfinite(slope) && slope > 0))
          throw InputError(file, "tensor 'rope_freqs.weight': factors do not rise monotonically along the llama3 ramp");
        // The factors were stored as float32: snap the fit to the round values configs use (1, 4, 0.5).
        auto snap = [](double v) {
          if (!std::isfinite(v) || v == 0) return v;
          const double scale = std::pow(10.0, 2 - std::floor(std::log10(std::fabs(v))));
          const double r = std::round(v * scale) / scale;
          return std::fabs(r - v) <= 1e-4 * std::fabs(v) ? r : v;
        };
        s.low_freq_factor = snap(x0 - s0 / slope);
        s.high_freq_factor = snap(x0 - s0 / slope + 1.0 / slope);
      }  // else keep the Llama 3.1 defaults (low 1, high 4); the check below decides
      for (size_t i = 0; i < factors.size(); ++i) {
        const double inv_freq = std::pow(c.rope_theta, -double(i) / half);
        const double wavelen = 2 * kPi / inv_freq;
        const double orig = double(s.original_max_position);
        double expect;
        if (wavelen < orig / s.high_freq_factor) expect = 1.0;
        else if (wavelen > orig / s.low_freq_factor) expect = factor;
        else {
          const double sm = (orig / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
          expect = 1.0 / ((1 - sm) / factor + sm);
        }
        if (!(std::fabs(expect - factors[i]) <= 1e-3 * expect))  // NaN-safe
          throw InputError(file, "tensor 'rope_freqs.weight': entry " + std::to_string(i) + " = " +
                                     format_number(factors[i]) + " does not follow the llama3 RoPE scaling rule (factor " +
                                     format_number(factor) + ", expected " + format_number(expect) + ")");
      }
    }
  }

  // The converter permuted Q/K rows of llama-arch models for ggml's interleaved RoPE; qwen2, qwen3,
  // phi3, glm4 and chatglm are stored in Hugging Face order.
  if (c.arch == "llama" || c.arch == "mistral") {
    for (int i = 0; i < int(c.n_layers); ++i) {
      for (const std::string& n : {tensor_names::q_proj(i), tensor_names::q_bias(i)})
        if (has(n)) rope_permuted_heads_[n] = c.n_heads;
      for (const std::string& n : {tensor_names::k_proj(i), tensor_names::k_bias(i)})
        if (has(n)) rope_permuted_heads_[n] = c.n_kv_heads;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// GgufFile: accessors

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

namespace {
const GgufValue& require(const GgufFile& f, const std::string& key) {
  const GgufValue* v = f.find(key);
  if (!v) throw InputError(f.path(), "metadata '" + key + "' is missing");
  return *v;
}
[[noreturn]] void wrong_type(const GgufFile& f, const std::string& key, const GgufValue& v, const char* wanted) {
  std::string found = value_type_name(v.type);
  if (v.type == GgufValue::Type::ARRAY) found += std::string(" of ") + value_type_name(v.array_type);
  throw InputError(f.path(), "metadata '" + key + "': expected " + wanted + ", found " + found);
}
}  // namespace

int64_t GgufFile::get_int(const std::string& key) const {
  const GgufValue& v = require(*this, key);
  if (!is_integer(v.type)) wrong_type(*this, key, v, "an integer");
  if (auto p = std::get_if<uint64_t>(&v.scalar)) {
    if (*p > uint64_t(std::numeric_limits<int64_t>::max()))
      throw InputError(path(), "metadata '" + key + "' = " + std::to_string(*p) + " is out of range");
    return int64_t(*p);
  }
  return std::get<int64_t>(v.scalar);
}

double GgufFile::get_float(const std::string& key) const {
  const GgufValue& v = require(*this, key);
  if (v.type != GgufValue::Type::F32 && v.type != GgufValue::Type::F64 && !is_integer(v.type))
    wrong_type(*this, key, v, "a number");
  return scalar_as_double(v);
}

std::string GgufFile::string_or_empty(const std::string& key) const {
  const GgufValue* v = find(key);
  return v && v->type == GgufValue::Type::STRING ? std::get<std::string>(v->scalar) : std::string();
}

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue& v = require(*this, key);
  if (v.type != GgufValue::Type::STRING) wrong_type(*this, key, v, "a string");
  return std::get<std::string>(v.scalar);
}

const std::vector<std::string>& GgufFile::get_string_array(const std::string& key) const {
  const GgufValue& v = require(*this, key);
  if (v.type != GgufValue::Type::ARRAY || v.array_type != GgufValue::Type::STRING)
    wrong_type(*this, key, v, "an array of strings");
  return v.strings;
}

const std::vector<double>& GgufFile::get_number_array(const std::string& key) const {
  const GgufValue& v = require(*this, key);
  if (v.type != GgufValue::Type::ARRAY || v.array_type == GgufValue::Type::STRING)
    wrong_type(*this, key, v, "an array of numbers");
  return v.numbers;
}

std::vector<std::pair<std::string, std::string>> GgufFile::metadata_summary() const {
  std::vector<std::pair<std::string, std::string>> out;
  out.emplace_back("GGUF.version", std::to_string(version_));
  for (const auto& [key, value] : kv_) out.emplace_back(key, value.to_string());
  return out;
}

std::string GgufFile::fingerprint() const { return sha256_hex(map_->data(), header_bytes_); }

int64_t GgufFile::rope_permutation_heads(const std::string& name) const {
  auto it = rope_permuted_heads_.find(name);
  return it == rope_permuted_heads_.end() ? 0 : it->second;
}

std::vector<float> GgufFile::load_f32(const std::string& name, const std::vector<int64_t>& expected) const {
  const TensorInfo& t = tensor(name);
  if (!expected.empty() && t.shape != expected)
    throw InputError(path(), "tensor " + name + " has shape " + shape_string(t.shape) + ", expected " +
                                 shape_string(expected));
  const int64_t numel = t.numel();
  std::vector<float> out(static_cast<size_t>(numel));  // canonical shape, row-major
  const int64_t heads = rope_permutation_heads(name);
  if (heads == 0) {
    dequantize(t.dtype, t.data, numel, out.data());
    return out;
  }
  // Undo the converter's permutation. For head h it stored HF row h*hd + s*hd/2 + i (s in {0,1},
  // i < hd/2) at row h*hd + 2*i + s, interleaving the two rotate-half halves.
  const int64_t rows = t.shape[0];
  const int64_t row_len = numel / rows;  // 1 for a bias
  if (rows % (2 * heads) != 0)
    throw InputError(path(), "tensor " + name + ": " + std::to_string(rows) + " rows cannot be split into " +
                                 std::to_string(heads) + " heads of even size");
  const int64_t head_dim = rows / heads, half = head_dim / 2;
  auto hf_row = [&](int64_t stored) {
    const int64_t h = stored / head_dim, within = stored % head_dim;
    return h * head_dim + (within % 2) * half + within / 2;
  };
  if (row_len % dtype_block_size(t.dtype) == 0) {
    // Rows are whole blocks: dequantise each straight into its destination.
    const size_t row_bytes = dtype_nbytes(t.dtype, row_len);
    for (int64_t r = 0; r < rows; ++r)
      dequantize(t.dtype, t.data + r * row_bytes, row_len, out.data() + hf_row(r) * row_len);
  } else {
    std::vector<float> stored(out.size());  // [rows, row_len] in file order
    dequantize(t.dtype, t.data, numel, stored.data());
    for (int64_t r = 0; r < rows; ++r)
      std::copy_n(stored.data() + r * row_len, row_len, out.data() + hf_row(r) * row_len);
  }
  return out;
}

}  // namespace hc

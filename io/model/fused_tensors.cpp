#include "io/model/fused_tensors.h"

#include <utility>

#include "common/error.h"
#include "io/model/model_file.h"

namespace hc {

namespace {

// The fused tensor `fused` [sum of rows, cols] (a bias: [sum of rows], cols 0) becomes one view
// per (name, rows), in row order.
void cut(std::map<std::string, TensorInfo>& tensors, const std::string& fused,
         const std::vector<std::pair<std::string, int64_t>>& parts, int64_t cols, const std::string& path,
         std::vector<FusedPart>& out) {
  const TensorInfo whole = tensors.at(fused);
  int64_t rows = 0;
  for (const auto& part : parts) rows += part.second;
  auto shape = [cols](int64_t n) { return cols > 0 ? std::vector<int64_t>{n, cols} : std::vector<int64_t>{n}; };
  const std::vector<int64_t> expected = shape(rows);
  if (whole.shape != expected)
    throw InputError(path, "tensor " + fused + " ('" + whole.file_name + "') has shape " + shape_string(whole.shape) +
                               ", expected " + shape_string(expected) + " for this config");
  // A bias is cut between single values, which only unquantised types store one by one.
  if (cols == 0 && whole.dtype != DType::F32 && whole.dtype != DType::F16 && whole.dtype != DType::BF16)
    throw InputError(path, "tensor " + fused + " ('" + whole.file_name + "') is " + dtype_name(whole.dtype) +
                               "; a fused bias must be F32, F16 or BF16");
  if (whole.nbytes % static_cast<size_t>(rows) != 0)
    throw InputError(path, "tensor " + fused + ": " + std::to_string(whole.nbytes) + " bytes do not split into " +
                               std::to_string(rows) + " rows");
  const size_t row_bytes = whole.nbytes / static_cast<size_t>(rows);
  int64_t first = 0;
  for (const auto& [name, n] : parts) {
    if (tensors.count(name))
      throw InputError(path, "tensor " + name + " is stored both on its own and inside " + fused);
    TensorInfo view = whole;
    view.name = name;
    view.file_name = whole.file_name + " rows " + std::to_string(first) + "-" + std::to_string(first + n - 1);
    view.shape = shape(n);
    view.data = whole.data ? whole.data + static_cast<size_t>(first) * row_bytes : nullptr;
    view.nbytes = static_cast<size_t>(n) * row_bytes;
    tensors.emplace(name, std::move(view));
    out.push_back({name, fused});
    first += n;
  }
  tensors.erase(fused);
}

}  // namespace

std::vector<FusedPart> split_fused_tensors(std::map<std::string, TensorInfo>& tensors, const ModelConfig& c,
                                           const std::string& path) {
  namespace tn = tensor_names;
  // Layers of the fused tensors, collected before the map changes; a name that is not exactly the
  // canonical one (a zero-padded index) is left alone.
  std::vector<int> qkv_layers, qkv_bias_layers, gate_up_layers;
  for (const auto& entry : tensors) {
    const int i = static_cast<int>(tn::layer_of(entry.first));
    if (i < 0) continue;
    if (entry.first == tn::qkv_proj(i)) qkv_layers.push_back(i);
    if (entry.first == tn::qkv_bias(i)) qkv_bias_layers.push_back(i);
    if (entry.first == tn::gate_up_proj(i)) gate_up_layers.push_back(i);
  }
  std::vector<FusedPart> out;
  const int64_t q_rows = c.n_heads * c.head_dim, kv_rows = c.n_kv_heads * c.head_dim;
  for (const int i : qkv_layers)
    cut(tensors, tn::qkv_proj(i), {{tn::q_proj(i), q_rows}, {tn::k_proj(i), kv_rows}, {tn::v_proj(i), kv_rows}},
        c.hidden, path, out);
  for (const int i : qkv_bias_layers)
    cut(tensors, tn::qkv_bias(i), {{tn::q_bias(i), q_rows}, {tn::k_bias(i), kv_rows}, {tn::v_bias(i), kv_rows}}, 0,
        path, out);
  for (const int i : gate_up_layers)
    cut(tensors, tn::gate_up_proj(i), {{tn::gate_proj(i), c.intermediate}, {tn::up_proj(i), c.intermediate}},
        c.hidden, path, out);
  return out;
}

}  // namespace hc

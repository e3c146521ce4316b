#include "io/model/fused_tensors.h"

#include <utility>

#include "common/error.h"
#include "io/model/model_file.h"

namespace hc {

namespace {

// The layer index of "model.layers.<i>.<rest>", or -1 when `name` is not that with this `rest`.
int fused_layer(const std::string& name, const std::string& rest) {
  const std::string prefix = "model.layers.";
  if (name.size() <= prefix.size() + rest.size() + 1 || name.compare(0, prefix.size(), prefix) != 0) return -1;
  if (name.compare(name.size() - rest.size(), rest.size(), rest) != 0) return -1;
  const std::string index = name.substr(prefix.size(), name.size() - rest.size() - 1 - prefix.size());
  if (name[name.size() - rest.size() - 1] != '.' || index.empty() || index.size() > 6 ||
      index.find_first_not_of("0123456789") != std::string::npos)
    return -1;
  return std::stoi(index);
}

// The fused tensor `fused` [sum of rows, cols] becomes one view per (name, rows), in row order.
void cut(std::map<std::string, TensorInfo>& tensors, const std::string& fused,
         const std::vector<std::pair<std::string, int64_t>>& parts, int64_t cols, const std::string& path,
         std::vector<FusedPart>& out) {
  const TensorInfo whole = tensors.at(fused);
  int64_t rows = 0;
  for (const auto& part : parts) rows += part.second;
  const std::vector<int64_t> expected{rows, cols};
  if (whole.shape != expected)
    throw InputError(path, "tensor " + fused + " ('" + whole.file_name + "') has shape " + shape_string(whole.shape) +
                               ", expected " + shape_string(expected) + " for this config");
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
    view.shape = {n, cols};
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
  const std::string qkv_rest = "self_attn.qkv_proj.weight", gate_up_rest = "mlp.gate_up_proj.weight";
  // Layers of the fused tensors, collected before the map changes; a name that is not exactly the
  // canonical one (a zero-padded index) is left alone.
  std::vector<int> qkv_layers, gate_up_layers;
  for (const auto& entry : tensors) {
    const int qkv = fused_layer(entry.first, qkv_rest), gate_up = fused_layer(entry.first, gate_up_rest);
    if (qkv >= 0 && entry.first == tn::qkv_proj(qkv)) qkv_layers.push_back(qkv);
    if (gate_up >= 0 && entry.first == tn::gate_up_proj(gate_up)) gate_up_layers.push_back(gate_up);
  }
  std::vector<FusedPart> out;
  const int64_t q_rows = c.n_heads * c.head_dim, kv_rows = c.n_kv_heads * c.head_dim;
  for (const int i : qkv_layers)
    cut(tensors, tn::qkv_proj(i), {{tn::q_proj(i), q_rows}, {tn::k_proj(i), kv_rows}, {tn::v_proj(i), kv_rows}},
        c.hidden, path, out);
  for (const int i : gate_up_layers)
    cut(tensors, tn::gate_up_proj(i), {{tn::gate_proj(i), c.intermediate}, {tn::up_proj(i), c.intermediate}},
        c.hidden, path, out);
  return out;
}

}  // namespace hc

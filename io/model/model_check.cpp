#include "io/model/model_check.h"

#include <algorithm>

#include "common/error.h"

namespace hc {

std::vector<ExpectedTensor> expected_model_tensors(const ModelConfig& c) {
  namespace tn = tensor_names;
  const int64_t q_rows = c.n_heads * c.head_dim;      // all query heads stacked
  const int64_t kv_rows = c.n_kv_heads * c.head_dim;  // GQA: fewer key/value heads
  std::vector<ExpectedTensor> out;
  out.push_back({tn::embed(), {c.vocab, c.hidden}, true});
  for (int i = 0; i < static_cast<int>(c.n_layers); ++i) {
    out.push_back({tn::attn_norm(i), {c.hidden}, true});
    out.push_back({tn::q_proj(i), {q_rows, c.hidden}, true});
    out.push_back({tn::k_proj(i), {kv_rows, c.hidden}, true});
    out.push_back({tn::v_proj(i), {kv_rows, c.hidden}, true});
    if (c.qkv_bias) {
      out.push_back({tn::q_bias(i), {q_rows}, true});
      out.push_back({tn::k_bias(i), {kv_rows}, true});
      out.push_back({tn::v_bias(i), {kv_rows}, true});
    }
    if (c.qk_norm) {
      out.push_back({tn::q_norm(i), {c.head_dim}, true});
      out.push_back({tn::k_norm(i), {c.head_dim}, true});
    }
    out.push_back({tn::o_proj(i), {c.hidden, q_rows}, true});
    out.push_back({tn::mlp_norm(i), {c.hidden}, true});
    out.push_back({tn::gate_proj(i), {c.intermediate, c.hidden}, true});
    out.push_back({tn::up_proj(i), {c.intermediate, c.hidden}, true});
    out.push_back({tn::down_proj(i), {c.hidden, c.intermediate}, true});
    if (c.post_norms) {
      out.push_back({tn::post_attn_out_norm(i), {c.hidden}, true});
      out.push_back({tn::post_mlp_norm(i), {c.hidden}, true});
    }
  }
  out.push_back({tn::final_norm(), {c.hidden}, true});
  out.push_back({tn::lm_head(), {c.vocab, c.hidden}, !c.tie_embeddings});
  return out;
}

namespace {

// One more than the highest N of the model.layers.N.* tensors (0 when there are none).
int64_t layers_in_tensor_names(const std::map<std::string, TensorInfo>& tensors) {
  int64_t count = 0;
  for (const auto& entry : tensors) count = std::max<int64_t>(count, tensor_names::layer_of(entry.first) + 1);
  return count;
}

}  // namespace

void check_model_tensors(const ModelFile& model) {
  // Before the per-layer list is built: a layer count far beyond the tensors would size it.
  const int64_t present = layers_in_tensor_names(model.tensors());
  if (model.config().n_layers != present)
    throw InputError(model.path(), "the config says " + std::to_string(model.config().n_layers) +
                                       " layers, but the tensors are for " + std::to_string(present));
  for (const ExpectedTensor& e : expected_model_tensors(model.config())) {
    auto it = model.tensors().find(e.name);
    if (it == model.tensors().end()) {
      if (!e.required) continue;
      throw InputError(model.path(), "missing tensor " + e.name + " (expected shape " + shape_string(e.shape) + ")");
    }
    if (it->second.shape != e.shape)
      throw InputError(model.path(), "tensor " + e.name + " has shape " + shape_string(it->second.shape) +
                                         ", expected " + shape_string(e.shape) + " for this config");
  }
}

}  // namespace hc

#include "io/model/model_file.h"

#include "common/error.h"

namespace hc {

const TensorInfo& ModelFile::tensor(const std::string& name) const {
  auto it = tensors().find(name);
  if (it == tensors().end()) throw InputError(path(), "missing tensor " + name);
  return it->second;
}

namespace tensor_names {

namespace {
std::string layer(int i, const char* rest) { return "model.layers." + std::to_string(i) + "." + rest; }
}  // namespace

std::string embed() { return "model.embed_tokens.weight"; }
std::string final_norm() { return "model.norm.weight"; }
std::string lm_head() { return "lm_head.weight"; }
std::string attn_norm(int i) { return layer(i, "input_layernorm.weight"); }
std::string q_proj(int i) { return layer(i, "self_attn.q_proj.weight"); }
std::string k_proj(int i) { return layer(i, "self_attn.k_proj.weight"); }
std::string v_proj(int i) { return layer(i, "self_attn.v_proj.weight"); }
std::string o_proj(int i) { return layer(i, "self_attn.o_proj.weight"); }
std::string q_bias(int i) { return layer(i, "self_attn.q_proj.bias"); }
std::string k_bias(int i) { return layer(i, "self_attn.k_proj.bias"); }
std::string v_bias(int i) { return layer(i, "self_attn.v_proj.bias"); }
std::string q_norm(int i) { return layer(i, "self_attn.q_norm.weight"); }
std::string k_norm(int i) { return layer(i, "self_attn.k_norm.weight"); }
std::string mlp_norm(int i) { return layer(i, "post_attention_layernorm.weight"); }
std::string gate_proj(int i) { return layer(i, "mlp.gate_proj.weight"); }
std::string up_proj(int i) { return layer(i, "mlp.up_proj.weight"); }
std::string down_proj(int i) { return layer(i, "mlp.down_proj.weight"); }
std::string qkv_proj(int i) { return layer(i, "self_attn.qkv_proj.weight"); }
std::string qkv_bias(int i) { return layer(i, "self_attn.qkv_proj.bias"); }
std::string gate_up_proj(int i) { return layer(i, "mlp.gate_up_proj.weight"); }
std::string post_attn_out_norm(int i) { return layer(i, "post_self_attn_layernorm.weight"); }
std::string post_mlp_norm(int i) { return layer(i, "post_mlp_layernorm.weight"); }

int64_t layer_of(const std::string& name) {
  const std::string prefix = "model.layers.";
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size() || dot - prefix.size() > 6) return -1;
  const std::string index = name.substr(prefix.size(), dot - prefix.size());
  if (index.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stoll(index);
}

}  // namespace tensor_names

}  // namespace hc

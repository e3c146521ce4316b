#include "calib/llama_weights.h"

#include "common/error.h"

namespace hc {

LlamaWeights load_llama_weights(const ModelFile& model) {
  namespace tn = tensor_names;
  const ModelConfig& c = model.config();
  c.validate(model.path());
  const int64_t q_rows = c.n_heads * c.head_dim;      // query heads stacked
  const int64_t kv_rows = c.n_kv_heads * c.head_dim;  // GQA: fewer key/value heads

  LlamaWeights w;
  w.config = c;
  w.embed = model.load_f32(tn::embed(), {c.vocab, c.hidden});
  w.final_norm = model.load_f32(tn::final_norm(), {c.hidden});
  if (!c.tie_embeddings) w.lm_head = model.load_f32(tn::lm_head(), {c.vocab, c.hidden});
  w.layers.resize(static_cast<size_t>(c.n_layers));
  for (int i = 0; i < static_cast<int>(c.n_layers); ++i) {
    LlamaLayerWeights& L = w.layers[static_cast<size_t>(i)];
    L.attn_norm = model.load_f32(tn::attn_norm(i), {c.hidden});
    L.wq = model.load_f32(tn::q_proj(i), {q_rows, c.hidden});
    L.wk = model.load_f32(tn::k_proj(i), {kv_rows, c.hidden});
    L.wv = model.load_f32(tn::v_proj(i), {kv_rows, c.hidden});
    if (c.qkv_bias) {
      L.bq = model.load_f32(tn::q_bias(i), {q_rows});
      L.bk = model.load_f32(tn::k_bias(i), {kv_rows});
      L.bv = model.load_f32(tn::v_bias(i), {kv_rows});
    }
    if (c.qk_norm) {
      L.q_norm = model.load_f32(tn::q_norm(i), {c.head_dim});
      L.k_norm = model.load_f32(tn::k_norm(i), {c.head_dim});
    }
    L.wo = model.load_f32(tn::o_proj(i), {c.hidden, q_rows});
    L.mlp_norm = model.load_f32(tn::mlp_norm(i), {c.hidden});
    L.w_gate = model.load_f32(tn::gate_proj(i), {c.intermediate, c.hidden});
    L.w_up = model.load_f32(tn::up_proj(i), {c.intermediate, c.hidden});
    L.w_down = model.load_f32(tn::down_proj(i), {c.hidden, c.intermediate});
    if (c.post_norms) {
      L.post_attn_norm = model.load_f32(tn::post_attn_out_norm(i), {c.hidden});
      L.post_mlp_norm = model.load_f32(tn::post_mlp_norm(i), {c.hidden});
    }
  }
  return w;
}

}  // namespace hc

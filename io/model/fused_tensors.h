#pragma once
// Fused projections split into the engine's tensors at open. Phi-3 stores q, k and v as one
// self_attn.qkv_proj [q_rows + 2 kv_rows, hidden] (rows: q, then k, then v) and gate and up as
// one mlp.gate_up_proj [2 intermediate, hidden] (rows: gate, then up); its GGUF files call them
// blk.N.attn_qkv and blk.N.ffn_up. llama.cpp's chatglm files (GLM-4) hold the same two, and the
// q/k/v biases fused as blk.N.attn_qkv.bias [q_rows + 2 kv_rows], split the same way. The rows of a row-major tensor are contiguous bytes (a GGUF row
// is whole quantisation blocks), so each part is a TensorInfo viewing its rows of the same
// mapping: nothing is copied, and every check, loader and backend sees q/k/v and gate/up.
#include <map>
#include <string>
#include <vector>

#include "io/model/model_config.h"
#include "io/model/tensor.h"

namespace hc {

struct FusedPart {
  std::string part;   // canonical name of the view, e.g. model.layers.0.self_attn.k_proj.weight
  std::string fused;  // canonical name of the tensor it was cut from
};

// Replaces every fused tensor in `tensors` by its parts. Throws InputError(path, ...) naming the
// tensor when a fused tensor's shape does not fit the config or a part is also stored on its own.
// Returns what was cut from what (readers that track per-tensor files copy their entry).
std::vector<FusedPart> split_fused_tensors(std::map<std::string, TensorInfo>& tensors, const ModelConfig& config,
                                           const std::string& path);

}  // namespace hc

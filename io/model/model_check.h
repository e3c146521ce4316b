#pragma once
// The tensors the Llama-family graph reads, with the shapes the config implies, and a check
// that a model file has all of them. Both readers (safetensors directory, GGUF) and the engine
// use it, so a missing or misshapen tensor is reported once, at open, with file, name and shapes.
#include <cstdint>
#include <string>
#include <vector>

#include "io/model/model_config.h"
#include "io/model/model_file.h"

namespace hc {

struct ExpectedTensor {
  std::string name;            // canonical Hugging Face name
  std::vector<int64_t> shape;  // [out_features, in_features] for Linear weights
  bool required = true;        // false only for lm_head.weight of a tied model
};

// Every tensor the graph needs for `c`, in load order (embedding, layers, final norm, lm_head).
std::vector<ExpectedTensor> expected_model_tensors(const ModelConfig& c);

// Throws InputError(model.path(), ...) naming the tensor and the expected and actual shapes for the
// first tensor that is missing or misshapen. An optional tensor (tied lm_head) is shape-checked only
// when present.
void check_model_tensors(const ModelFile& model);

}  // namespace hc

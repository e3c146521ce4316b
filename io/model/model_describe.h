#pragma once
// Human-readable description of a model file (GGUF or HF directory) for `headcal inspect`.
#include <string>

#include "io/model/model_config.h"
#include "io/model/model_file.h"

namespace hc {

struct DescribeOptions {
  bool tensors = false;   // one line per tensor: canonical name, dtype, shape (and the stored name)
  bool metadata = false;  // the file's key/value metadata (GGUF KV pairs, config.json fields)
};

// Multi-line "key: value" text: format, arch, name, layers, heads, KV heads, head_dim, hidden,
// intermediate, vocab, context length, RoPE theta and scaling, tensor count, dtype counts,
// parameter count, fingerprint; then the optional sections.
std::string describe_model(const ModelFile& model, const DescribeOptions& options = {});

// "none", "linear (factor 2)", "llama3 (factor 8, low_freq_factor 1, high_freq_factor 4, original 8192)".
std::string describe_rope_scaling(const RopeScaling& scaling);

}  // namespace hc

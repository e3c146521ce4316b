#pragma once
// Hugging Face config.json -> ModelConfig for the Llama family (llama, mistral, qwen2, qwen3) and
// GLM-4 (glm, glm4).
// Absent optional fields take the transformers defaults; anything the engine cannot run
// faithfully (another model_type, yarn/dynamic RoPE, o_proj or MLP biases, non-SiLU MLP) is an
// InputError naming config.json and the field, never a silent approximation.
#include <string>
#include <utility>
#include <vector>

#include "io/model/model_config.h"

namespace hc {

// Parses config.json text. `source` names the file in errors; `fallback_name` is used as the
// model name when the config has no "_name_or_path". The result is validated.
ModelConfig parse_hf_config(const std::string& json_text, const std::string& source,
                            const std::string& fallback_name);

// Reads and parses `<dir>/config.json` (name falls back to the directory's name).
ModelConfig read_hf_config(const std::string& config_path, const std::string& fallback_name);

// Top-level config.json fields in file order, values as compact JSON (long ones shortened),
// for `headcal inspect`.
std::vector<std::pair<std::string, std::string>> hf_config_fields(const std::string& json_text,
                                                                  const std::string& source);

}  // namespace hc

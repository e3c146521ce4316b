#include "fuzz/targets.h"

#include "common/error.h"

#include "io/calibration/atlas.h"
#include "io/calibration/grid.h"
#include "io/calibration/minference_json.h"
#include "io/util/mapped_file.h"
#include "io/model/model_file.h"
#include "io/calibration/layer_weights.h"
#include "io/calibration/profile.h"
#include "io/prompt/prompt.h"
#include "io/prompt/prompt_set.h"
#include "io/tokenizer/tokenizer.h"

namespace hc::fuzz {

namespace {

// A model opened, every tensor dequantised, and its tokenizer used: what record/validate read.
void read_model(const std::string& path, const std::string&) {
  auto model = open_model(path);
  for (const auto& [name, info] : model->tensors()) model->load_f32(name);
  (void)model->fingerprint();
  try {  // most tiny fixtures have no tokenizer: that refusal does not make the model input bad
    auto tok = load_tokenizer(path);
    tok->decode(tok->encode("Hello, world! 123 \xc3\xa9t\xc3\xa9", "fuzz text"));
  } catch (const InputError& e) {
    if (std::string(e.what()).find("no tokenizer") == std::string::npos) throw;
  }
}

// A GGUF file's tokenizer alone (tokenizer.ggml.*), as `headcal tokenize` reads it: the model
// target's corpus is mostly mutants of GGUF files without one, so this target starts from the one
// fixture that has a tokenizer and mutates only that.
void read_gguf_tokenizer(const std::string& path, const std::string&) {
  auto tok = load_tokenizer(path);
  tok->decode(tok->encode("Hello, world! 123 \xc3\xa9t\xc3\xa9 <|end|>", "fuzz text"));
}

void read_hf_folder(const std::string&, const std::string& dir) { read_model(dir, dir); }

void read_tokenizer(const std::string& path, const std::string&) {
  auto tok = load_tokenizer(path);
  tok->decode(tok->encode("Hello, world! 123 \xc3\xa9t\xc3\xa9 <|endoftext|>", "fuzz text"));
}

void read_tokens(const std::string& path, const std::string&) { (void)read_token_file(path); }

void read_profile_file(const std::string& path, const std::string&) { (void)read_profile(path); }
void read_layer_weights_file(const std::string& path, const std::string&) {
  const LayerWeights w = read_layer_weights(path);
  for (int64_t l = 0; l < w.model_layers; ++l) (void)w.weight_of(l);
}

void read_grid(const std::string& path, const std::string&) { (void)read_grid_file(path, 4096); }

// An import for SmolLM2's shape (30 layers x 9 heads), as `headcal import --model` gives it.
void read_minference(const std::string& path, const std::string&) {
  MInferenceImportOptions options;
  options.model.name = "fuzz";
  options.model.arch = "llama";
  options.model.layers = 30;
  options.model.heads = 9;
  options.model.kv_heads = 3;
  options.model.head_dim = 64;
  options.tokens = 4096;
  options.prompt = "fuzz";
  (void)import_minference(read_whole_file(path), path, options);
}

// An atlas as search and report read it: every prompt's tables at open, then each prompt's layers.
void read_atlas(const std::string& path, const std::string&) {
  const Atlas atlas = Atlas::open(path);
  for (size_t p = 0; p < atlas.prompt_count(); ++p)
    for (int64_t layer : atlas.recorded_layers()) (void)atlas.read_layer(layer, p);
}

// A prompt set as record/validate take it, for a model of 1000 ids and a 4096-token context
// (entries that need text fail for want of a tokenizer: bad input for this model).
void read_prompt_set_file(const std::string& path, const std::string&) {
  const PromptSet set = read_prompt_set(path);
  (void)build_prompt_set(set, nullptr, 1000, 4096, false);
}

// A text prompt (--prompt) as record and validate read it: the file's UTF-8 checked, the text
// tokenized by a small BPE tokenizer and cut to 64 tokens.
void read_prompt_text(const std::string& path, const std::string&) {
  static const std::unique_ptr<Tokenizer> tokenizer = load_tokenizer("tests/data/good_tokenizer_mini_gpt2.json");
  PromptSpec spec;
  spec.prompt_file = path;
  spec.length = 64;
  (void)build_prompt(spec, *tokenizer, 4096);
}

}  // namespace

const std::vector<Target>& all_targets() {
  static const std::vector<Target> targets = {
      {"gguf", "model.gguf", "",
       {"tests/data/good_tiny_llama.gguf", "tests/data/good_tiny_qwen2.gguf", "tests/data/good_tiny_llama3.gguf",
        "tests/data/good_tiny_llama_tokenizer.gguf", "tests/data/good_tiny_phi3.gguf", "tests/data/good_tiny_glm4.gguf",
        "tests/data/good_tiny_chatglm.gguf"},
       read_model},
      {"gguf_tokenizer", "model.gguf", "", {"tests/data/good_tiny_llama_tokenizer.gguf"}, read_gguf_tokenizer},
      {"hf_config", "config.json", "tests/data/good_hf_tiny_llama",
       {"tests/data/good_hf_tiny_llama/config.json", "tests/data/good_hf_tiny_llama3/config.json",
        "tests/data/good_hf_tiny_qwen2/config.json", "tests/data/good_hf_tiny_phi3/config.json"},
       read_hf_folder},
      {"safetensors", "model.safetensors", "tests/data/good_hf_tiny_llama",
       {"tests/data/good_hf_tiny_llama/model.safetensors"}, read_hf_folder},
      {"hf_index", "model.safetensors.index.json", "tests/data/good_hf_tiny_qwen2",
       {"tests/data/good_hf_tiny_qwen2/model.safetensors.index.json"}, read_hf_folder},
      {"tokenizer_json", "tokenizer.json", "",
       {"tests/data/good_tokenizer_mini_gpt2.json", "tests/data/good_tokenizer_mini_llama3.json",
        "tests/data/good_tokenizer_mini_qwen2.json", "tests/data/good_tokenizer_mini_smollm.json"},
       read_tokenizer},
      {"tokens_txt", "tokens.txt", "", {"tests/data/good_tokens_ids.txt"}, read_tokens},
      {"tokens_npy", "tokens.npy", "",
       {"tests/data/good_tokens_i32.npy", "tests/data/good_tokens_i64_2d.npy", "tests/data/good_tokens_u16.npy"},
       read_tokens},
      {"tokens_h5", "tokens.h5", "", {"tests/data/good_tokens.h5"}, read_tokens},
      {"profile_yaml", "profile.yaml", "", {"profiles/smollm2-135m-instruct/profile.yaml"}, read_profile_file},
      {"layer_weights", "weights.yaml", "", {"profiles/qwen2.5-coder-0.5b-instruct/layer-weights.yaml"},
       read_layer_weights_file},
      {"grid_yaml", "grid.yaml", "", {"tests/data/good_grid.yaml"}, read_grid},
      {"minference_json", "config.json", "", {"profiles/smollm2-135m-instruct/minference.json"}, read_minference},
      {"atlas", "atlas.h5", "", {"tests/data/good_atlas_two_prompts.h5"}, read_atlas, /*named_only=*/true},
      {"prompt_set", "set.yaml", "tests/data/good_prompt_set", {"tests/data/good_prompt_set/set.yaml"},
       read_prompt_set_file},
      {"prompt_text", "prompt.txt", "", {"tests/data/good_prompt_text.txt"}, read_prompt_text},
  };
  return targets;
}

}  // namespace hc::fuzz

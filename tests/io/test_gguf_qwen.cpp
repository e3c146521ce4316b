// The real Qwen2.5-Coder-0.5B-Instruct GGUF (scripts/get-model.sh qwen2.5-coder-0.5b): the qwen2
// config from its metadata, its tensors (F32, Q5_0, Q8_0, Q4_K, Q6_K) against the `gguf` package's
// dequantisation (checksums from scripts/make_gguf_fixtures.py), and its tokenizer. Skipped with a
// message where the file is absent; HEADCAL_QWEN_MODEL names it, else the cache is searched.
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "catch.h"
#include "support/gguf_sums.h"
#include "support/qwen_model.h"
#include "io/model/gguf.h"
#include "io/tokenizer/tokenizer.h"

using namespace hc;
namespace tn = hc::tensor_names;

namespace {

// Empty when the test should be skipped; fails the test when the variable names a missing file.
std::string qwen_or_skip() {
  const std::string path = hc::test::qwen_gguf_path();
  if (path.empty()) {
    if (const char* env = std::getenv("HEADCAL_QWEN_MODEL"))
      FAIL("HEADCAL_QWEN_MODEL is set to '" << env << "' but no file is there");
    WARN("skipped: Qwen2.5-Coder GGUF not found (run scripts/get-model.sh qwen2.5-coder-0.5b or set HEADCAL_QWEN_MODEL)");
  }
  return path;
}

}  // namespace

TEST_CASE("Qwen2.5-Coder GGUF: qwen2 config from the metadata", "[io][gguf][model][qwen]") {
  const std::string path = qwen_or_skip();
  if (path.empty()) return;
  GgufFile f(path);
  const ModelConfig& c = f.config();
  CHECK(c.arch == "qwen2");
  CHECK(c.n_layers == 24);
  CHECK(c.n_heads == 14);
  CHECK(c.n_kv_heads == 2);
  CHECK(c.head_dim == 64);
  CHECK(c.hidden == 896);
  CHECK(c.intermediate == 4864);
  CHECK(c.vocab == 151936);
  CHECK(c.max_context == 32768);
  CHECK(c.rope_theta == 1e6);
  CHECK(c.rope_scaling.type == RopeScalingType::None);
  CHECK(c.rms_eps == Approx(1e-6).epsilon(1e-6));
  CHECK(c.qkv_bias);
  CHECK_FALSE(c.tie_embeddings);  // the file stores output.weight (Q8_0) beside token_embd (Q5_0)
  CHECK(c.bos_id == 151643);
  CHECK(c.eos_id == 151645);

  CHECK(f.tensors().size() == 291);
  CHECK(f.tensor(tn::embed()).dtype == DType::Q5_0);
  CHECK(f.tensor(tn::embed()).shape == std::vector<int64_t>{151936, 896});
  CHECK(f.tensor(tn::lm_head()).dtype == DType::Q8_0);
  CHECK(f.tensor(tn::q_proj(0)).dtype == DType::Q5_0);
  CHECK(f.tensor(tn::k_proj(0)).shape == std::vector<int64_t>{128, 896});
  CHECK(f.tensor(tn::q_bias(23)).shape == std::vector<int64_t>{896});
  CHECK(f.tensor(tn::k_bias(23)).shape == std::vector<int64_t>{128});
  CHECK(f.tensor(tn::down_proj(0)).dtype == DType::Q6_K);
  // qwen2 files keep Hugging Face row order: nothing to un-permute.
  CHECK(f.rope_permutation_heads(tn::q_proj(0)) == 0);
  CHECK(f.rope_permutation_heads(tn::k_bias(0)) == 0);
}

TEST_CASE("Qwen2.5-Coder GGUF: every tensor matches the gguf package's dequantisation", "[io][gguf][model][qwen]") {
  const std::string path = qwen_or_skip();
  if (path.empty()) return;
  const std::string sums_path = hc::test::data_path("good_qwen2.5_coder.sums");
  GgufFile f(path);
  const std::map<std::string, int> by_dtype = hc::test::check_against_sums(f, sums_path);
  CHECK(by_dtype == std::map<std::string, int>{{"F32", 121}, {"Q4_K", 12}, {"Q5_0", 133}, {"Q6_K", 12}, {"Q8_0", 13}});
}

TEST_CASE("Qwen2.5-Coder GGUF tokenizer: qwen2 pre-split, special tokens", "[tokenizer][model][qwen]") {
  const std::string path = qwen_or_skip();
  if (path.empty()) return;
  const auto tok = load_tokenizer(path);
  CHECK(tok->vocab_size() == 151936);
  CHECK_FALSE(tok->add_bos());  // tokenizer.ggml.add_bos_token = false
  CHECK(tok->description().find("qwen2") != std::string::npos);
  // Ids checked against the file's own token list: "Hello" 9707, "," 11, "Ġworld" 1879, "!" 0.
  CHECK(tok->encode("Hello, world!") == std::vector<int32_t>{9707, 11, 1879, 0});
  // qwen2 splits digits one by one ("1" is 16 ... "5" is 20).
  CHECK(tok->encode("12345") == std::vector<int32_t>{16, 17, 18, 19, 20});
  CHECK(tok->encode("<|im_start|>") == std::vector<int32_t>{151644});
  CHECK(tok->encode("<|im_end|>") == std::vector<int32_t>{151645});
  // Pieces "def", " foo", "():", " return", each one token of the list.
  CHECK(tok->encode("def foo(): return") == std::vector<int32_t>{750, 15229, 4555, 470});
}

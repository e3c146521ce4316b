// The GGUF tokenizer reader (tokenizer.ggml.*) on good_tiny_llama_tokenizer.gguf, whose metadata
// scripts/make_gguf_fixtures.py converts from good_tokenizer_mini_gpt2.json: the two files must
// give the same tokenizer, id for id.
#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "catch.h"
#include "common/error.h"
#include "io/model/model_file.h"
#include "io/tokenizer/tokenizer.h"

namespace {

const char* kGguf = "good_tiny_llama_tokenizer.gguf";
const char* kJson = "good_tokenizer_mini_gpt2.json";

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

TEST_CASE("GGUF gpt2 tokenizer: vocabulary, special tokens and BOS policy as in its tokenizer.json", "[tokenizer]") {
  auto g = hc::load_tokenizer(hc::test::data_path(kGguf));
  auto j = hc::load_tokenizer(hc::test::data_path(kJson));
  REQUIRE(g->vocab_size() == 1201);
  REQUIRE(g->vocab_size() == j->vocab_size());
  for (int32_t id = 0; id < g->vocab_size(); ++id) {
    INFO("id " << id);
    REQUIRE(g->token_text(id) == j->token_text(id));
  }
  CHECK(g->bos_id() == 0);
  CHECK(g->eos_id() == 1);
  CHECK(g->token_text(0) == "<|begin|>");
  CHECK(g->token_text(1) == "<|end|>");
  CHECK_FALSE(g->add_bos());  // tokenizer.ggml.add_bos_token = false, as the JSON has no post-processor
  CHECK(g->add_bos() == j->add_bos());
  CHECK(g->description().find("byte-level BPE") != std::string::npos);
}

TEST_CASE("GGUF gpt2 tokenizer: encode/decode round-trips and gives the JSON tokenizer's ids", "[tokenizer]") {
  auto g = hc::load_tokenizer(hc::test::data_path(kGguf));
  auto j = hc::load_tokenizer(hc::test::data_path(kJson));
  const std::vector<std::string> texts = {
      "Hello, world!",
      "The quick brown fox jumps over the lazy dog.",
      "  two spaces\nand a newline\t then a tab",
      "numbers 12345 and 3.14159, it's 'quoted'",
      "caf\xc3\xa9 na\xc3\xafve \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x98\x80",  // café naïve 中文 😀
      "<|begin|>special<|end|> and a <user_word> added",
      "",
  };
  for (const std::string& text : texts) {
    INFO("text: \"" << text << "\"");
    const auto ids = g->encode(text, "text");
    CHECK(ids == j->encode(text, "text"));
    CHECK(g->decode(ids) == text);
    CHECK(ids.empty() == text.empty());
  }
  // Added tokens are matched whole: CONTROL for the special ones, USER_DEFINED for <user_word>.
  const auto ids = g->encode("<|begin|>x<|end|><user_word>", "text");
  REQUIRE(ids.size() == 4);
  CHECK(ids[0] == 0);
  CHECK(ids[2] == 1);
  CHECK(ids[3] == 1200);
}

TEST_CASE("GGUF gpt2 tokenizer matches the reference ids on the mini fixture's text", "[tokenizer]") {
  auto g = hc::load_tokenizer(hc::test::data_path(kGguf));
  auto ref = nlohmann::json::parse(read_all(hc::test::data_path("good_tokenizer_mini_ids.json")));
  const std::string text = ref["gpt2"]["text"].get<std::string>();
  const auto want = ref["gpt2"]["ids"].get<std::vector<int32_t>>();
  REQUIRE(want.size() > 10000);
  const auto got = g->encode(text, "text");
  CHECK(got == want);
  CHECK(g->decode(got) == text);
}

TEST_CASE("the tokenizer fixture is a model whose vocabulary is its token list", "[tokenizer]") {
  auto model = hc::open_model(hc::test::data_path(kGguf));
  CHECK(model->config().vocab == 1201);
  CHECK(model->tensors().at("model.embed_tokens.weight").shape.at(0) == 1201);
}

// Tokenizer exactness against the Hugging Face `tokenizers` package (fixtures made by
// scripts/make_tokenizer_fixture.py), the SentencePiece-style path on a hand-built vocabulary,
// and the Unicode tables.
#include <nlohmann/json.hpp>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "catch.h"
#include "common/error.h"
#include "io/tokenizer/bpe.h"
#include "io/tokenizer/tokenizer.h"
#include "io/tokenizer/unicode.h"

namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE(in.good());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<int32_t> read_ids(const std::string& path) {
  std::string bytes = read_all(path);
  REQUIRE(bytes.size() % 4 == 0);
  std::vector<int32_t> ids(bytes.size() / 4);  // [tokens] int32 little-endian
  std::memcpy(ids.data(), bytes.data(), bytes.size());
  return ids;
}

// First index where the two differ, or -1.
long first_difference(const std::vector<int32_t>& a, const std::vector<int32_t>& b) {
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    if (a[i] != b[i]) return static_cast<long>(i);
  return a.size() == b.size() ? -1 : static_cast<long>(n);
}

std::unique_ptr<hc::Tokenizer> smollm2_or_skip() {
  std::string path = hc::test::smollm2_gguf_path();
  if (path.empty()) {
    if (std::getenv("HEADCAL_MODEL")) FAIL("HEADCAL_MODEL is set but the SmolLM2 GGUF was not found");
    return nullptr;
  }
  return hc::load_tokenizer(path);
}

std::string describe_mismatch(const hc::Tokenizer& tok, const std::vector<int32_t>& got,
                              const std::vector<int32_t>& want, long at) {
  std::ostringstream os;
  os << "first difference at token " << at << " (got " << got.size() << " tokens, want " << want.size() << ")";
  auto window = [&](const std::vector<int32_t>& v) {
    std::vector<int32_t> w;
    for (long i = std::max(0L, at - 3); i < std::min<long>(static_cast<long>(v.size()), at + 4); ++i) w.push_back(v[i]);
    std::ostringstream s;
    for (int32_t id : w) s << id << " ";
    s << "= \"" << tok.decode(w) << "\"";
    return s.str();
  };
  os << "\n got:  " << window(got) << "\n want: " << window(want);
  return os.str();
}

}  // namespace

TEST_CASE("SmolLM2 tokenizer matches the tokenizers package on the 1 MB mixed corpus", "[tokenizer]") {
  auto tok = smollm2_or_skip();
  if (!tok) {
    WARN("skipped: SmolLM2 GGUF not found (set HEADCAL_MODEL)");
    return;
  }
  const std::string corpus = read_all(hc::test::data_path("good_tokenizer_corpus.txt"));
  REQUIRE(corpus.size() >= 1000000);
  const std::vector<int32_t> want = read_ids(hc::test::data_path("good_tokenizer_corpus_ids.bin"));
  std::vector<int32_t> got = tok->encode(corpus, "corpus");
  long at = first_difference(got, want);
  INFO((at < 0 ? std::string("identical") : describe_mismatch(*tok, got, want, at)));
  CHECK(at == -1);
  // Byte-level BPE is lossless except for the bytes that have no token in this vocabulary
  // (SmolLM2 lacks 21 of the 256, e.g. 0x1D): the reference drops those, and so do we.
  std::string kept;
  for (char ch : corpus) {
    std::string as_token;
    hc::unicode::append_utf8(as_token, hc::byte_to_codepoint(static_cast<uint8_t>(ch)));
    if (tok->token_id(as_token) >= 0) kept.push_back(ch);
  }
  CHECK(kept.size() < corpus.size());
  CHECK(tok->decode(got) == kept);
}

TEST_CASE("SmolLM2 tokenizer matches the reference on edge cases, one text at a time", "[tokenizer]") {
  auto tok = smollm2_or_skip();
  if (!tok) {
    WARN("skipped: SmolLM2 GGUF not found (set HEADCAL_MODEL)");
    return;
  }
  auto cases = nlohmann::json::parse(read_all(hc::test::data_path("good_tokenizer_cases.json")));
  REQUIRE(cases.size() > 50);
  for (const auto& c : cases) {
    const std::string text = c["text"].get<std::string>();
    const auto want = c["ids"].get<std::vector<int32_t>>();
    auto got = tok->encode(text);
    long at = first_difference(got, want);
    INFO("text: \"" << text << "\" " << (at < 0 ? std::string() : describe_mismatch(*tok, got, want, at)));
    CHECK(at == -1);
  }
}

TEST_CASE("SmolLM2 GGUF tokenizer: config, special tokens, BOS policy", "[tokenizer]") {
  auto tok = smollm2_or_skip();
  if (!tok) {
    WARN("skipped: SmolLM2 GGUF not found (set HEADCAL_MODEL)");
    return;
  }
  CHECK(tok->vocab_size() == 49152);
  CHECK_FALSE(tok->add_bos());  // tokenizer.ggml.add_bos_token = false
  CHECK(tok->bos_id() == 1);
  CHECK(tok->description().find("smollm") != std::string::npos);
  CHECK(tok->encode("<|im_start|>") == std::vector<int32_t>{1});
  CHECK(tok->encode("x", true, "t").front() == 1);
  // Digits are split one by one by SmolLM2's pre-tokenizer.
  auto ids = tok->encode("2026");
  CHECK(ids.size() == 4);
}

TEST_CASE("byte-level BPE from tokenizer.json matches the reference for every pre-split family", "[tokenizer]") {
  auto ref = nlohmann::json::parse(read_all(hc::test::data_path("good_tokenizer_mini_ids.json")));
  for (const char* family : {"gpt2", "smollm", "llama3", "qwen2"}) {
    SECTION(family) {
      auto tok = hc::load_tokenizer(hc::test::data_path(std::string("good_tokenizer_mini_") + family + ".json"));
      auto* bpe = dynamic_cast<hc::ByteLevelBpe*>(tok.get());
      REQUIRE(bpe != nullptr);
      CHECK(std::string(hc::pre_split_name(bpe->pattern())) == family);
      const std::string text = ref[family]["text"].get<std::string>();
      const auto want = ref[family]["ids"].get<std::vector<int32_t>>();
      REQUIRE(want.size() > 10000);
      auto got = tok->encode(text);
      long at = first_difference(got, want);
      INFO(family << ": " << (at < 0 ? std::string("identical") : describe_mismatch(*tok, got, want, at)));
      CHECK(at == -1);
      // Only the llama3 fixture's post-processor prepends a BOS.
      CHECK(tok->add_bos() == (std::string(family) == "llama3"));
    }
  }
}

TEST_CASE("pre-split patterns give the regex's pieces on hand-checked strings", "[tokenizer]") {
  auto pieces = [](hc::PreSplit p, const std::string& s) {
    std::vector<std::pair<uint32_t, uint32_t>> ranges;
    hc::pre_split(p, s, ranges);
    std::vector<std::string> out;
    for (auto [a, b] : ranges) out.push_back(s.substr(a, b - a));
    return out;
  };
  using V = std::vector<std::string>;
  CHECK(pieces(hc::PreSplit::Gpt2, "Hello  world's 123") == V{"Hello", " ", " world", "'s", " 123"});
  CHECK(pieces(hc::PreSplit::Gpt2, "a\n\nb") == V{"a", "\n", "\n", "b"});
  CHECK(pieces(hc::PreSplit::Smollm, "a 12b") == V{"a", " ", "1", "2", "b"});
  CHECK(pieces(hc::PreSplit::Llama3, "12345 HE'LL\n\n x") == V{"123", "45", " HE", "'LL", "\n\n", " x"});
  CHECK(pieces(hc::PreSplit::Qwen2, "12 \"quote") == V{"1", "2", " \"", "quote"});
}

TEST_CASE("invalid UTF-8 is an InputError naming the offset, never a crash", "[tokenizer]") {
  auto tok = hc::load_tokenizer(hc::test::data_path("good_tokenizer_mini_gpt2.json"));
  for (const std::string& bad : {std::string("ok \xC0\x80"), std::string("ok \xED\xA0\x80"), std::string("ok \xF5\x80\x80\x80"),
                                std::string("ok \xE2\x82"), std::string("ok \x80")}) {
    try {
      tok->encode(bad, "input.txt");
      FAIL("no error for invalid UTF-8");
    } catch (const hc::InputError& e) {
      CHECK(std::string(e.what()).find("input.txt") != std::string::npos);
      CHECK(std::string(e.what()).find("offset 3") != std::string::npos);
    }
  }
  CHECK_THROWS_AS(tok->decode({0, 999999}), hc::InputError);
}

TEST_CASE("Unicode tables and UTF-8 decoding", "[tokenizer]") {
  using namespace hc::unicode;
  CHECK(is_letter('a'));
  CHECK(is_letter(0x4E2D));   // 中
  CHECK(is_letter(0x1D400));  // 𝐀, supplementary plane
  CHECK(is_number('7'));
  CHECK(is_number(0x0663));   // ٣ Arabic-Indic digit
  CHECK(is_number(0x216B));   // Ⅻ, Nl
  CHECK(is_number(0x00BD));   // ½, No
  CHECK(is_space(0x3000));
  CHECK(is_space(0x85));
  CHECK_FALSE(is_space(0x1C));  // str.isspace() says yes; White_Space does not
  CHECK_FALSE(is_letter(0x301));  // combining acute is Mn
  CHECK(classes(0x1F600) == 0);   // emoji: none of the classes
  CHECK(is_letter(0x1C89));       // new in Unicode 16.0, which the reference's regex engine follows
  CHECK(is_digit_split(0x0663));
  CHECK(is_digit_split(0x11DE0));  // Unicode 17.0 digit: HF's Digits (Rust) splits it, \p{N} is not yet
  CHECK_FALSE(is_number(0x11DE0));
  uint32_t cp = 0;
  CHECK(decode("\xF0\x9F\x98\x80", 0, &cp) == 4);
  CHECK(cp == 0x1F600);
  CHECK(decode("\xC0\x80", 0, &cp) == 0);
  CHECK(decode("\xED\xA0\x80", 0, &cp) == 0);
  CHECK(first_invalid("abc\xE2\x82") == 3);
  CHECK(first_invalid("abc \xE2\x82\xAC") == std::string_view::npos);
}

namespace {

// A SentencePiece-style vocabulary small enough to work out by hand:
// 0 <unk>, 1 <s>, 2 </s>, 3..258 <0x00>..<0xFF>, then the pieces below with their scores.
hc::TokenizerData spm_data(bool with_bytes) {
  hc::TokenizerData d;
  d.source = "synthetic-spm";
  d.model = "llama";
  auto add = [&](const std::string& t, float score, hc::TokenType type) {
    d.tokens.push_back(t);
    d.scores.push_back(score);
    d.types.push_back(static_cast<int32_t>(type));
  };
  add("<unk>", 0, hc::TokenType::Unknown);
  add("<s>", 0, hc::TokenType::Control);
  add("</s>", 0, hc::TokenType::Control);
  if (with_bytes)
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      add(name, 0, hc::TokenType::Byte);
    }
  const std::vector<std::pair<std::string, float>> pieces = {
      {"\xE2\x96\x81", -1}, {"a", -2}, {"b", -3}, {"c", -4}, {"ab", -5}, {"bc", -0.5f},
      {"\xE2\x96\x81" "a", -6}, {"\xE2\x96\x81" "ab", -7}, {"x", -2}, {"y", -2}, {"z", -2}, {"xy", -2}, {"yz", -2}};
  for (auto& [t, s] : pieces) add(t, s, hc::TokenType::Normal);
  d.bos_id = 1;
  d.eos_id = 2;
  d.unk_id = 0;
  d.add_bos = true;
  d.add_space_prefix = true;
  return d;
}

}  // namespace

TEST_CASE("SentencePiece-style BPE: highest score first, leftmost on ties, byte fallback", "[tokenizer]") {
  auto tok = hc::Tokenizer::create(spm_data(true));
  auto id = [&](const std::string& t) { return tok->token_id(t); };
  const std::string sp = "\xE2\x96\x81";
  // "abc" -> "▁abc": bc (-0.5) beats ab (-5) and ▁a (-6); then ▁a; "▁abc" is no piece.
  CHECK(tok->encode("abc") == std::vector<int32_t>{1, id(sp + "a"), id("bc")});
  // "ab" -> "▁ab": ab (-5) first, then ▁ + ab = "▁ab" (-7).
  CHECK(tok->encode("ab") == std::vector<int32_t>{1, id(sp + "ab")});
  // "xyz": xy and yz tie at -2; the leftmost pair merges first.
  CHECK(tok->encode("xyz", false, "t") == std::vector<int32_t>{id(sp), id("xy"), id("z")});
  // "é" is no piece: its UTF-8 bytes C3 A9 fall back to <0xC3> <0xA9>.
  CHECK(tok->encode("a é", false, "t") ==
        std::vector<int32_t>{id(sp + "a"), id(sp), id("<0xC3>"), id("<0xA9>")});
  // Control tokens in the text are matched; the stretch after them gets its own "▁" prefix.
  CHECK(tok->encode("<s>ab", false, "t") == std::vector<int32_t>{1, id(sp + "ab")});
  CHECK(tok->decode({id(sp + "a"), id("bc"), id("<0x21>")}) == " abc!");
  CHECK(tok->description().find("SentencePiece") != std::string::npos);

  auto no_bytes = hc::Tokenizer::create(spm_data(false));
  CHECK(no_bytes->encode("\xC3\xA9", false, "t") == std::vector<int32_t>{no_bytes->token_id(sp), 0});

  auto no_prefix = spm_data(true);
  no_prefix.add_space_prefix = false;
  auto tok2 = hc::Tokenizer::create(no_prefix);
  CHECK(tok2->encode("ab", false, "t") == std::vector<int32_t>{tok2->token_id("ab")});
}

TEST_CASE("malformed tokenizer data is an InputError", "[tokenizer]") {
  auto d = spm_data(true);
  d.scores.pop_back();
  CHECK_THROWS_AS(hc::Tokenizer::create(d), hc::InputError);
  d = spm_data(true);
  d.bos_id = 100000;
  CHECK_THROWS_AS(hc::Tokenizer::create(d), hc::InputError);
  d = spm_data(true);
  d.model = "bert";
  CHECK_THROWS_AS(hc::Tokenizer::create(d), hc::InputError);
  hc::TokenizerData b;
  b.source = "synthetic-bpe";
  b.model = "gpt2";
  b.pre = "gpt2";
  b.tokens = {"a", "b", "ab"};
  b.merges = {"a c"};
  CHECK_THROWS_AS(hc::Tokenizer::create(b), hc::InputError);
  b.merges = {"a b"};
  b.pre = "tekken";
  CHECK_THROWS_AS(hc::Tokenizer::create(b), hc::InputError);
  CHECK_THROWS_AS(hc::tokenizer_data_from_hf_json("{not json", "x.json"), hc::InputError);
  CHECK_THROWS_AS(hc::tokenizer_data_from_hf_json(R"({"model":{"type":"WordPiece","vocab":{}}})", "x.json"),
                  hc::InputError);
}

TEST_CASE("load_tokenizer: Hugging Face directory with tokenizer.json, clear errors otherwise", "[tokenizer]") {
  const std::string dir = hc::test::make_temp_dir("tokenizer_dir");
  {
    std::ofstream out(dir + "/tokenizer.json", std::ios::binary);
    out << read_all(hc::test::data_path("good_tokenizer_mini_llama3.json"));
  }
  auto from_dir = hc::load_tokenizer(dir);
  auto from_file = hc::load_tokenizer(hc::test::data_path("good_tokenizer_mini_llama3.json"));
  CHECK(from_dir->encode("Hello 12345 world") == from_file->encode("Hello 12345 world"));
  CHECK(from_dir->encode("x").front() == 0);  // the post-processor's BOS <|begin|>

  const std::string empty_dir = hc::test::make_temp_dir("tokenizer_empty_dir");
  try {
    hc::load_tokenizer(empty_dir);
    FAIL("no error for a directory without tokenizer.json");
  } catch (const hc::InputError& e) {
    CHECK(std::string(e.what()).find("no tokenizer.json") != std::string::npos);
  }
  CHECK_THROWS_AS(hc::load_tokenizer(dir + "/missing.gguf"), hc::InputError);
}

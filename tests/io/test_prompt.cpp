// Prompt sources, generators and the shared prompt options (library and CLI).
#include <algorithm>
#include <cstdio>
#include <regex>

#include "catch.h"
#include "common/error.h"
#include "io/prompt/prompt.h"
#include "io/tokenizer/tokenizer.h"

namespace {

const std::string kMini = hc::test::data_path("good_tokenizer_mini_gpt2.json");

const hc::Tokenizer& mini() {
  static auto tok = hc::load_tokenizer(kMini);
  return *tok;
}

// A SentencePiece-style vocabulary of SmolLM2's size (49152), so token files can be checked
// against a real vocabulary bound without the model. Pieces: the 256 byte tokens, "▁", "t<i>".
const hc::Tokenizer& big_vocab() {
  static auto tok = [] {
    hc::TokenizerData d;
    d.source = "synthetic";
    d.model = "llama";
    for (int i = 0; i < 49152; ++i) {
      char name[16];
      if (i < 256) std::snprintf(name, sizeof name, "<0x%02X>", i);
      else std::snprintf(name, sizeof name, "t%d", i);
      d.tokens.push_back(i == 256 ? "\xE2\x96\x81" : name);
      d.scores.push_back(0);
      d.types.push_back(static_cast<int32_t>(i < 256 ? hc::TokenType::Byte : hc::TokenType::Normal));
    }
    return hc::Tokenizer::create(d);
  }();
  return *tok;
}

hc::PromptSpec generated(const std::string& name, int64_t n, uint64_t seed) {
  hc::PromptSpec s;
  s.generator = name;
  s.length = n;
  s.seed = seed;
  return s;
}

// Expects an InputError whose message contains every one of `parts`.
template <class F>
void expect_input_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    FAIL("no InputError");
  } catch (const hc::InputError& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) {
      INFO("message: " << msg << "\nexpected to contain: " << p);
      CHECK(msg.find(p) != std::string::npos);
    }
  }
}

size_t count_of(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("kv_retrieval: exact length, reproducible, ends with the question about a surviving key", "[prompt]") {
  for (int64_t n : {300, 777, 1024, 4097}) {
    auto a = hc::build_prompt(generated("kv_retrieval", n, 7), mini(), 0);
    auto b = hc::build_prompt(generated("kv_retrieval", n, 7), mini(), 0);
    auto c = hc::build_prompt(generated("kv_retrieval", n, 8), mini(), 0);
    CHECK(static_cast<int64_t>(a.tokens.size()) == n);
    CHECK(a.tokens == b.tokens);
    CHECK(a.sha256 == b.sha256);
    CHECK(a.sha256.size() == 64);
    CHECK(a.tokens != c.tokens);
    const std::string text = mini().decode(a.tokens);
    const std::string question = "The value associated with the specified key is:";
    CHECK(text.rfind(question) == text.size() - question.size());
    CHECK(text.rfind("Extract the value corresponding to the specified key", 0) == 0);
    // The answer is in the prompt, right after its key, and the key is asked for.
    REQUIRE(a.answer.size() == 36);
    size_t at = text.find(a.answer);
    REQUIRE(at != std::string::npos);
    REQUIRE(at >= 40);
    const std::string key = text.substr(at - 40, 36);  // "KEY": "VALUE"
    CHECK(text.substr(at - 4, 4) == "\": \"");
    CHECK(count_of(text, key) == 2);
    CHECK(text.find("Key: \"" + key + "\"") != std::string::npos);
  }
}

TEST_CASE("kv_retrieval: depth chooses which surviving pair is asked", "[prompt]") {
  auto first = hc::build_prompt([] { auto s = generated("kv_retrieval", 2000, 3); s.depth = 0; return s; }(), mini(), 0);
  auto last = hc::build_prompt([] { auto s = generated("kv_retrieval", 2000, 3); s.depth = 1; return s; }(), mini(), 0);
  const std::string t1 = mini().decode(first.tokens), t2 = mini().decode(last.tokens);
  CHECK(t1.find(first.answer) < t1.size() / 4);       // the first pair
  CHECK(t2.find(last.answer) > t2.size() * 3 / 4);    // the last whole pair before the question
  CHECK(first.tokens.size() == 2000);
}

TEST_CASE("passkey: exact length, the key at the requested depth", "[prompt]") {
  for (double depth : {0.0, 0.25, 0.5, 1.0}) {
    auto s = generated("passkey", 1001, 11);
    s.depth = depth;
    auto p = hc::build_prompt(s, mini(), 0);
    REQUIRE(p.tokens.size() == 1001);
    const std::string text = mini().decode(p.tokens);
    CHECK(count_of(text, p.answer) == 2);
    CHECK(p.answer.size() == 5);
    size_t needle = text.find("The pass key is " + p.answer);
    REQUIRE(needle != std::string::npos);
    const size_t head = text.find("information there.") + 18;
    const size_t tail = text.rfind("\nWhat is the pass key?");
    const double filler_chars = static_cast<double>(tail - head) - 59;  // minus the needle sentence
    const double where = static_cast<double>(needle - 1 - head) / filler_chars;
    INFO("depth " << depth << " found at " << where);
    CHECK(std::abs(where - depth) < 0.02);
    CHECK(text.substr(text.size() - 15) == "The pass key is");
  }
  // Same seed, same key; another seed, another key.
  CHECK(hc::build_prompt(generated("passkey", 500, 1), mini(), 0).answer ==
        hc::build_prompt(generated("passkey", 500, 1), mini(), 0).answer);
  CHECK(hc::build_prompt(generated("passkey", 500, 1), mini(), 0).answer !=
        hc::build_prompt(generated("passkey", 500, 2), mini(), 0).answer);
}

namespace {

struct Needle {
  std::string key, value;
  size_t at;  // character offset in the decoded prompt
};

// The needles of a decoded multi_needle prompt, in the order they appear.
std::vector<Needle> needles_in(const std::string& text) {
  static const std::regex re("The special magic number for ([A-Za-z]+) is ([0-9]{7})\\.");
  std::vector<Needle> out;
  for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it)
    out.push_back({(*it)[1].str(), (*it)[2].str(), static_cast<size_t>(it->position(0))});
  return out;
}

}  // namespace

TEST_CASE("multi_needle: exact length, reproducible, every needle once and in the order asked", "[prompt]") {
  const std::string question = "The special magic numbers are:";
  for (int64_t n : {203, 777, 1024, 3001, 8191}) {
    INFO("N = " << n);
    auto a = hc::build_prompt(generated("multi_needle", n, 7), mini(), 0);
    auto b = hc::build_prompt(generated("multi_needle", n, 7), mini(), 0);
    auto c = hc::build_prompt(generated("multi_needle", n, 8), mini(), 0);
    REQUIRE(static_cast<int64_t>(a.tokens.size()) == n);
    CHECK(static_cast<int64_t>(c.tokens.size()) == n);
    CHECK(a.tokens == b.tokens);
    CHECK(a.sha256 == b.sha256);
    CHECK(a.answer == b.answer);
    CHECK(a.tokens != c.tokens);
    CHECK(a.answer != c.answer);
    const std::string text = mini().decode(a.tokens);
    CHECK(text.rfind("Some special magic numbers are hidden", 0) == 0);
    CHECK(text.rfind(question) == text.size() - question.size());
    const std::vector<Needle> found = needles_in(text);
    REQUIRE(found.size() == 4);
    std::string answer, listed;
    for (size_t i = 0; i < found.size(); ++i) {
      answer += (i ? ", " : "") + found[i].value;
      listed += (i == 0 ? "" : i + 1 == found.size() ? " and " : ", ") + found[i].key;
      CHECK(count_of(text, found[i].value) == 1);
      for (size_t j = 0; j < i; ++j) CHECK(found[j].key != found[i].key);
    }
    // The answer lists the values in the order of the needles' depth, and so does the question.
    CHECK(a.answer == answer);
    CHECK(text.find("What are the special magic numbers for " + listed + ", in that order?") != std::string::npos);
  }
}

TEST_CASE("multi_needle: needles spread over the haystack, one per slice; --needles sets how many", "[prompt]") {
  for (uint64_t seed : {1, 2, 3}) {
    for (int count : {1, 3, 4, 7}) {
      auto s = generated("multi_needle", 6000, seed);
      s.needles = count;
      auto p = hc::build_prompt(s, mini(), 0);
      REQUIRE(p.tokens.size() == 6000);
      const std::string text = mini().decode(p.tokens);
      const std::vector<Needle> found = needles_in(text);
      REQUIRE(found.size() == static_cast<size_t>(count));
      const size_t begin = text.find("the numbers afterwards.") + 23;
      const size_t end = text.rfind("\nWhat are the special magic numbers");
      REQUIRE(begin < end);
      // Relative depth of each needle in the haystack (needle text discounted): needle i sits in
      // slice i of count equal slices.
      size_t needle_chars = 0;
      for (const Needle& f : found) needle_chars += 1 + 40 + f.key.size() + 1;  // " The ... for K is 1234567."
      const double hay = static_cast<double>(end - begin - needle_chars);
      size_t before = 0;
      for (size_t i = 0; i < found.size(); ++i) {
        const double depth = static_cast<double>(found[i].at - 1 - begin - before) / hay;
        INFO("seed " << seed << ", " << count << " needles, needle " << i << " at depth " << depth);
        CHECK(depth > static_cast<double>(i) / count);
        CHECK(depth < static_cast<double>(i + 1) / count);
        before += 1 + 40 + found[i].key.size() + 1;
      }
    }
  }
}

TEST_CASE("multi_needle: bad input is a clear InputError", "[prompt]") {
  expect_input_error([&] { hc::build_prompt(generated("multi_needle", 60, 0), mini(), 0); },
                     {"--length 60", "too short for multi_needle"});
  auto depth = generated("multi_needle", 1000, 0);
  depth.depth = 0.5;
  expect_input_error([&] { hc::build_prompt(depth, mini(), 0); }, {"--depth", "multi_needle"});
  auto many = generated("multi_needle", 1000, 0);
  many.needles = 49;
  expect_input_error([&] { hc::build_prompt(many, mini(), 0); }, {"--needles", "[1, 48]", "49"});
  auto other = generated("passkey", 1000, 0);
  other.needles = 3;
  expect_input_error([&] { hc::build_prompt(other, mini(), 0); }, {"--needles", "multi_needle only"});
  // Many needles need more room: 48 needles do not fit in 300 tokens.
  many.needles = 48;
  many.length = 300;
  expect_input_error([&] { hc::build_prompt(many, mini(), 0); }, {"too short for multi_needle"});
  many.length = 4000;
  CHECK(needles_in(mini().decode(hc::build_prompt(many, mini(), 0).tokens)).size() == 48);
}

TEST_CASE("text generator repeats or cuts a text to exactly N tokens", "[prompt]") {
  const std::string file = hc::test::data_path("good_prompt_short.txt");
  auto once = mini().encode_continuation("The quick brown fox", "t");
  for (int64_t n : {5, 63, 64, 1000}) {
    auto s = generated("text", n, 0);
    s.prompt_file = file;
    auto p = hc::build_prompt(s, mini(), 0);
    REQUIRE(static_cast<int64_t>(p.tokens.size()) == n);
    const size_t k = std::min<size_t>(once.size(), static_cast<size_t>(n));
    CHECK(std::equal(once.begin(), once.begin() + static_cast<std::ptrdiff_t>(k), p.tokens.begin()));
  }
  auto s = generated("text", 1000, 0);
  s.prompt_file = file;
  const std::string text = mini().decode(hc::build_prompt(s, mini(), 0).tokens);
  CHECK(count_of(text, "The quick brown fox") >= 10);
  // No file: built-in filler.
  CHECK(hc::build_prompt(generated("text", 333, 0), mini(), 0).tokens.size() == 333);
}

TEST_CASE("random generator: uniform ids in the vocabulary, reproducible", "[prompt]") {
  auto a = hc::build_prompt(generated("random", 257, 4), big_vocab(), 0);
  REQUIRE(a.tokens.size() == 257);
  CHECK(a.tokens == hc::build_prompt(generated("random", 257, 4), big_vocab(), 0).tokens);
  CHECK(a.tokens != hc::build_prompt(generated("random", 257, 5), big_vocab(), 0).tokens);
  CHECK(*std::min_element(a.tokens.begin(), a.tokens.end()) >= 0);
  CHECK(*std::max_element(a.tokens.begin(), a.tokens.end()) < 49152);
  CHECK(*std::max_element(a.tokens.begin(), a.tokens.end()) > 40000);  // spread over the whole range
}

TEST_CASE("--prompt FILE: own length, or cut in the middle keeping head and question", "[prompt]") {
  hc::PromptSpec s;
  s.prompt_file = hc::test::data_path("good_prompt_short.txt");
  auto whole = hc::build_prompt(s, mini(), 0);
  REQUIRE(whole.tokens.size() > 20);
  s.length = 15;
  auto cut = hc::build_prompt(s, mini(), 0);
  REQUIRE(cut.tokens.size() == 15);
  CHECK(std::equal(cut.tokens.begin(), cut.tokens.begin() + 8, whole.tokens.begin()));
  CHECK(std::equal(cut.tokens.end() - 7, cut.tokens.end(), whole.tokens.end() - 7));
  CHECK(mini().decode(cut.tokens).find("over?") != std::string::npos);
  s.length = 100000;
  expect_input_error([&] { hc::build_prompt(s, mini(), 0); }, {"good_prompt_short.txt", "fewer than --length 100000"});
}

TEST_CASE("cut_middle and tokens_sha256", "[prompt]") {
  std::vector<int32_t> v{0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
  CHECK(hc::cut_middle(v, 5) == std::vector<int32_t>{0, 1, 2, 8, 9});
  CHECK(hc::cut_middle(v, 4) == std::vector<int32_t>{0, 1, 8, 9});
  CHECK(hc::cut_middle(v, 1) == std::vector<int32_t>{0});
  CHECK(hc::cut_middle(v, 10) == v);
  // sha256 of the bytes 01 00 00 00 ff ff ff ff (python: hashlib.sha256(...).hexdigest()).
  CHECK(hc::tokens_sha256({1, -1}) == "b15348c8f462384c01e83b6d499c6faf3f96808f5aa07c6bab4b65b36b4445d4");
}

TEST_CASE("token files: .txt, .npy (int32, int64 one row, uint16), HDF5", "[prompt]") {
  const std::vector<int64_t> want{1, 17, 42, 49151, 0, 12345, 7, 7, 7, 300};
  for (const char* f : {"good_tokens_ids.txt", "good_tokens_i32.npy", "good_tokens_i64_2d.npy", "good_tokens_u16.npy",
                        "good_tokens.h5"}) {
    INFO(f);
    CHECK(hc::read_token_file(hc::test::data_path(f)) == want);
  }
  CHECK(hc::read_token_file(hc::test::data_path("good_tokens.h5") + ":/other/ids") ==
        std::vector<int64_t>{1, 17, 42, 49151});
  hc::PromptSpec s;
  s.tokens_file = hc::test::data_path("good_tokens_i32.npy");
  auto p = hc::build_prompt(s, big_vocab(), 8192);
  CHECK(p.tokens == std::vector<int32_t>(want.begin(), want.end()));
  CHECK(p.sha256 == hc::tokens_sha256(p.tokens));
  s.length = 4;
  CHECK(hc::build_prompt(s, big_vocab(), 8192).tokens == std::vector<int32_t>{1, 17, 7, 300});
}

TEST_CASE("bad prompt input: a clear InputError for each case", "[prompt]") {
  auto tokens = [](const std::string& f) {
    hc::PromptSpec s;
    s.tokens_file = hc::test::data_path(f);
    return hc::build_prompt(s, big_vocab(), 8192);
  };
  expect_input_error([&] { tokens("bad_tokens_empty.txt"); }, {"bad_tokens_empty.txt", "no token ids"});
  expect_input_error([&] { tokens("bad_tokens_out_of_vocab.txt"); }, {"49152", "index 3", "outside the model's vocabulary"});
  expect_input_error([&] { tokens("bad_tokens_negative.txt"); }, {"-3", "outside"});
  expect_input_error([&] { tokens("bad_tokens_not_a_number.txt"); }, {"line 1", "'three'"});
  expect_input_error([&] { tokens("bad_tokens_float.npy"); }, {"bad_tokens_float.npy", "not an integer type"});
  expect_input_error([&] { tokens("bad_tokens_out_of_vocab.npy"); }, {"60000"});
  expect_input_error([&] { tokens("bad_tokens_truncated.npy"); }, {"truncated"});
  expect_input_error([&] { tokens("bad_tokens_float.h5"); }, {"bad_tokens_float.h5", "not of an integer type"});
  expect_input_error([&] { tokens("good_tokens.h5:/nope"); }, {"no dataset '/nope'"});
  expect_input_error([&] { tokens("bad_prompt_not_utf8.txt.h5"); }, {"cannot open"});

  auto text = [](const std::string& f) {
    hc::PromptSpec s;
    s.prompt_file = hc::test::data_path(f);
    return hc::build_prompt(s, mini(), 0);
  };
  expect_input_error([&] { text("bad_prompt_empty.txt"); }, {"bad_prompt_empty.txt", "empty"});
  expect_input_error([&] { text("bad_prompt_not_utf8.txt"); }, {"bad_prompt_not_utf8.txt", "not valid UTF-8", "offset 17"});
  expect_input_error([&] { text("no_such_prompt.txt"); }, {"no_such_prompt.txt", "cannot open"});

  // Longer than the context: an error, or a warning with allow_longer.
  auto s = generated("passkey", 1000, 0);
  expect_input_error([&] { hc::build_prompt(s, mini(), 512); }, {"1000 tokens", "context of 512", "--allow-longer"});
  s.allow_longer = true;
  auto p = hc::build_prompt(s, mini(), 512);
  CHECK(p.tokens.size() == 1000);
  REQUIRE(p.warnings.size() == 1);
  CHECK(p.warnings[0].find("context of 512") != std::string::npos);

  expect_input_error([&] { hc::build_prompt(hc::PromptSpec{}, mini(), 0); }, {"no prompt given"});
  expect_input_error([&] { hc::build_prompt(generated("kv_retrieval", 0, 0), mini(), 0); }, {"needs --length"});
  expect_input_error([&] { hc::build_prompt(generated("kv_retrieval", 20, 0), mini(), 0); }, {"too short"});
  expect_input_error([&] { hc::build_prompt(generated("passkey", 20, 0), mini(), 0); }, {"too short"});
  expect_input_error([&] { hc::build_prompt(generated("lorem", 100, 0), mini(), 0); }, {"unknown generator"});
  auto two = generated("passkey", 100, 0);
  two.tokens_file = hc::test::data_path("good_tokens_ids.txt");
  expect_input_error([&] { hc::build_prompt(two, mini(), 0); }, {"one prompt source"});
}

TEST_CASE("CLI: tokenize and prompt options exit 0 on good input and 2 on bad", "[prompt][cli]") {
  using hc::test::run_headcal;
  const std::string model = "--model '" + kMini + "'";
  auto r = run_headcal("tokenize " + model + " --text '" + hc::test::data_path("good_prompt_short.txt") + "'");
  CHECK(r.exit_code == 0);
  CHECK(r.output.find(" tokens") != std::string::npos);
  r = run_headcal("tokenize " + model + " --ids --text '" + hc::test::data_path("good_prompt_short.txt") + "'");
  CHECK(r.exit_code == 0);
  auto want = mini().encode("The quick brown fox", "t");
  CHECK(r.output.find(std::to_string(want[0]) + " " + std::to_string(want[1])) == 0);
  r = run_headcal("tokenize " + model + " --generate kv_retrieval --length 300 --seed 5");
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("300 tokens") != std::string::npos);
  CHECK(r.output.find("sha256: " + hc::build_prompt(generated("kv_retrieval", 300, 5), mini(), 0).sha256) !=
        std::string::npos);
  r = run_headcal("tokenize " + model + " --generate passkey --length 400 --depth 0.3");
  CHECK(r.exit_code == 0);
  r = run_headcal("tokenize " + model + " --generate multi_needle --length 511 --seed 3 --needles 5");
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("511 tokens") != std::string::npos);
  auto five = generated("multi_needle", 511, 3);
  five.needles = 5;
  CHECK(r.output.find("sha256: " + hc::build_prompt(five, mini(), 0).sha256) != std::string::npos);

  for (const std::string& bad :
       {std::string("--text '") + hc::test::data_path("bad_prompt_not_utf8.txt") + "'",
        std::string("--text '") + hc::test::data_path("bad_prompt_empty.txt") + "'",
        std::string("--prompt '") + hc::test::data_path("bad_prompt_empty.txt") + "'",
        std::string("--tokens '") + hc::test::data_path("bad_tokens_out_of_vocab.txt") + "'",
        std::string("--tokens '") + hc::test::data_path("bad_tokens_float.npy") + "'",
        std::string("--generate passkey"), std::string("--generate nonsense --length 10"),
        std::string("--generate passkey --length 100 --depth 2"), std::string("--generate kv_retrieval --length 10"),
        std::string("--generate multi_needle --length 10"), std::string("--generate multi_needle --length 500 --depth 0.5"),
        std::string("--generate multi_needle --length 500 --needles 0"),
        std::string("--generate passkey --length 500 --needles 3")}) {
    r = run_headcal("tokenize " + model + " " + bad);
    INFO(bad << "\n" << r.output);
    CHECK(r.exit_code == 2);
    CHECK(!r.output.empty());
  }
  r = run_headcal("bench-tokenizer " + model + " --runs 1");
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("M tokens/s") != std::string::npos);
}

TEST_CASE("CLI: prompts longer than the model's context need --allow-longer", "[prompt][cli]") {
  const std::string path = hc::test::smollm2_gguf_path();
  if (path.empty()) {
    if (std::getenv("HEADCAL_MODEL")) FAIL("HEADCAL_MODEL is set but the SmolLM2 GGUF was not found");
    WARN("skipped: SmolLM2 GGUF not found (set HEADCAL_MODEL)");
    return;
  }
  auto r = hc::test::run_headcal("tokenize --model '" + path + "' --generate passkey --length 9000");
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("--allow-longer") != std::string::npos);
  r = hc::test::run_headcal("tokenize --model '" + path + "' --generate passkey --length 9000 --allow-longer");
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("warning") != std::string::npos);
  CHECK(r.output.find("9000 tokens") != std::string::npos);
  r = hc::test::run_headcal("tokenize --model '" + path + "' --generate kv_retrieval --length 8192 --seed 1");
  CHECK(r.exit_code == 0);
  CHECK(r.output.find("8192 tokens") != std::string::npos);
}

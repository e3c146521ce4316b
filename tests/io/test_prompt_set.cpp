// Prompt-set files: parsing, the checks that name the file and the entry, and building.
#include <cstdio>
#include <fstream>
#include <string>

#include "catch.h"
#include "common/error.h"
#include "io/prompt/prompt_set.h"

namespace {

std::string write(const std::string& dir, const std::string& name, const std::string& text) {
  const std::string path = dir + "/" + name;
  std::ofstream(path) << text;
  return path;
}

const char* kHeader = "format: headcal-prompt-set\nversion: 1\n";

}  // namespace

TEST_CASE("prompt set: entries, defaults, relative paths and the length override", "[prompt_set]") {
  const std::string dir = hc::test::make_temp_dir("pset");
  write(dir, "ids.txt", "1 2 3 4 5 6 7 8 9 10 11 12\n");
  write(dir, "a.txt", "hello");
  const std::string path = write(dir, "set.yaml", std::string(kHeader) +
                                                      "name: mixed\nlength: 8\nprompts:\n"
                                                      "  - {name: ids, tokens: ids.txt, weight: 2}\n"
                                                      "  - {generate: random, seed: 4, length: 5}\n"
                                                      "  - {name: txt, text: a.txt}\n");
  hc::PromptSet set = hc::read_prompt_set(path);
  CHECK(set.name == "mixed");
  REQUIRE(set.entries.size() == 3);
  CHECK(set.entries[0].name == "ids");
  CHECK(set.entries[0].weight == 2.0);
  CHECK(set.entries[0].spec.tokens_file == dir + "/ids.txt");
  CHECK(set.entries[0].spec.length == 8);  // the set's length
  CHECK(set.entries[1].name == "prompt_1");
  CHECK(set.entries[1].spec.generator == "random");
  CHECK(set.entries[1].spec.length == 5);
  CHECK(set.entries[1].spec.seed == 4);
  CHECK(set.entries[2].spec.prompt_file == dir + "/a.txt");
  const std::string needles = write(dir, "needles.yaml", std::string(kHeader) +
                                                         "prompts:\n  - {generate: multi_needle, length: 900, needles: 7}\n");
  CHECK(hc::read_prompt_set(needles).entries[0].spec.needles == 7);
  CHECK(hc::prompt_set_needs_tokenizer(set));

  // Token files and random ids need no tokenizer.
  set.entries.pop_back();
  CHECK_FALSE(hc::prompt_set_needs_tokenizer(set));
  std::vector<hc::SetPrompt> built = hc::build_prompt_set(set, nullptr, 100, 0, false);
  REQUIRE(built.size() == 2);
  CHECK(built[0].prompt.tokens.size() == 8);  // 12 ids cut to 8 (head and tail kept)
  CHECK(built[0].prompt.tokens.front() == 1);
  CHECK(built[0].prompt.tokens.back() == 12);
  CHECK(built[1].prompt.tokens.size() == 5);
  const std::string sha = hc::prompt_set_sha256(built);
  CHECK(sha.size() == 64);
  CHECK(hc::describe_prompt_set(set, built).find("2 prompts, 5-8 tokens") != std::string::npos);

  // --length overrides every entry; the set's identity changes with its ids.
  hc::override_prompt_set_length(set, 6);
  built = hc::build_prompt_set(set, nullptr, 100, 0, false);
  CHECK(built[0].prompt.tokens.size() == 6);
  CHECK(built[1].prompt.tokens.size() == 6);
  CHECK(hc::prompt_set_sha256(built) != sha);

  // A weight change alone changes the set's sha256 too.
  std::vector<hc::SetPrompt> reweighted = built;
  reweighted[0].weight = 3;
  CHECK(hc::prompt_set_sha256(reweighted) != hc::prompt_set_sha256(built));
}

TEST_CASE("prompt set: bad files name the file and the entry", "[prompt_set]") {
  const std::string dir = hc::test::make_temp_dir("pset_bad");
  write(dir, "ids.txt", "1 2 3\n");
  auto fails = [&](const std::string& body, const std::string& needle) {
    const std::string path = write(dir, "bad.yaml", body);
    return hc::test::throws_input_error_containing([&] { hc::read_prompt_set(path); }, needle);
  };
  const std::string h = kHeader;
  CHECK(fails(h + "prompts:\n  - {name: x, generate: nonsense, length: 4}\n", "prompts[0] (x): unknown generator"));
  CHECK(fails(h + "prompts:\n  - {name: x, text: missing.txt}\n", "no such file"));
  CHECK(fails(h + "prompts:\n  - {name: x, tokens: ids.txt, weight: 0}\n", "'weight' must be > 0"));
  CHECK(fails(h + "prompts:\n  - {name: x, tokens: ids.txt, weight: -1}\n", "'weight' must be > 0"));
  CHECK(fails(h + "prompts:\n  - {name: x, tokens: ids.txt, weight: nan}\n", "finite number"));
  CHECK(fails(h + "prompts:\n  - {name: x, tokens: ids.txt}\n  - {name: x, tokens: ids.txt}\n", "used twice"));
  CHECK(fails(h + "prompts:\n  - {name: x, tokens: ids.txt, colour: red}\n", "unknown key 'colour'"));
  CHECK(fails(h + "prompts:\n  - {name: x}\n", "exactly one source"));
  CHECK(fails(h + "prompts:\n  - {name: x, tokens: ids.txt, generate: random, length: 3}\n", "exactly one source"));
  CHECK(fails(h + "prompts:\n  - {name: x, generate: kv_retrieval}\n", "needs a length"));
  CHECK(fails(h + "prompts:\n  - {name: x, generate: random, length: 0}\n", "'length' must be an integer"));
  CHECK(fails(h + "prompts:\n  - {name: x, generate: passkey, length: 9, depth: 2}\n", "'depth' must be in [0, 1]"));
  CHECK(fails(h + "prompts: []\n", "non-empty list"));
  CHECK(fails(h + "prompts:\n  - {name: x, generate: multi_needle, length: 900, needles: 49}\n", "'needles'"));
  CHECK(fails("format: headcal-grid\nversion: 1\nprompts:\n  - {tokens: ids.txt}\n", "format must be"));
  CHECK(fails("format: headcal-prompt-set\nversion: 7\nprompts:\n  - {tokens: ids.txt}\n", "version"));
  CHECK(fails(h + "extra: 1\nprompts:\n  - {tokens: ids.txt}\n", "unknown top-level key 'extra'"));
  CHECK(fails(h + "prompts:\n  - {name: x, tokens: ids.txt\n", "bad.yaml"));  // malformed YAML
  CHECK(hc::test::throws_input_error_containing([&] { hc::read_prompt_set(dir + "/none.yaml"); }, "none.yaml"));

  // Building: beyond the model's context, ids outside the vocabulary: the file and entry are named.
  const std::string path = write(dir, "long.yaml", h + "prompts:\n  - {name: big, generate: random, length: 64}\n");
  const hc::PromptSet set = hc::read_prompt_set(path);
  CHECK(hc::test::throws_input_error_containing([&] { hc::build_prompt_set(set, nullptr, 100, 32, false); },
                                                "long.yaml: prompts[0] (big): --length: 64 tokens are more than the model's context"));
  CHECK(hc::build_prompt_set(set, nullptr, 100, 32, true).at(0).prompt.tokens.size() == 64);
  const std::string ids = write(dir, "ids.yaml", h + "prompts:\n  - {name: ids, tokens: ids.txt}\n");
  CHECK(hc::test::throws_input_error_containing(
      [&] { hc::build_prompt_set(hc::read_prompt_set(ids), nullptr, 3, 0, false); }, "ids.yaml: prompts[0] (ids)"));
}

TEST_CASE("prompt set: the shipped sets parse and name existing files", "[prompt_set]") {
  for (const char* name : {"default-calibration.yaml", "held-out.yaml"}) {
    const hc::PromptSet set = hc::read_prompt_set(std::string(HEADCAL_SOURCE_DIR) + "/prompts/" + name);
    CHECK(set.entries.size() >= 3);
    double weight = 0;
    for (const hc::PromptSetEntry& e : set.entries) weight += e.weight;
    CHECK(weight > 0);
  }
}

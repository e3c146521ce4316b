// Prompt sources and generators. Generated prompts are built as token sequences piece by piece
// (each piece starts where the model's pre-split starts a new piece anyway), so their length can
// be made exact without re-tokenizing, and the same (generator, N, seed, depth) always gives the
// same ids.
#include "io/prompt/prompt.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "common/error.h"
#include "io/util/mapped_file.h"
#include "io/util/sha256.h"
#include "io/tokenizer/tokenizer.h"

namespace hc {

namespace {

std::string read_text_file(const std::string& path) {
  std::string text = read_whole_file(path, "cannot open the prompt file");
  if (text.empty()) throw InputError(path, "the prompt file is empty");
  return text;
}

// Uniform double in [0, 1) from the generator's raw bits (std distributions differ between
// standard libraries; the bits of mt19937_64 do not).
double unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * (1.0 / 9007199254740992.0); }

std::string uuid4(std::mt19937_64& rng) {
  uint64_t hi = rng(), lo = rng();
  hi = (hi & ~0xF000ULL) | 0x4000ULL;                                // version 4
  lo = (lo & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;           // RFC 4122 variant
  char buf[40];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(hi >> 32),
                static_cast<unsigned>((hi >> 16) & 0xFFFF), static_cast<unsigned>(hi & 0xFFFF),
                static_cast<unsigned>(lo >> 48), static_cast<unsigned long long>(lo & 0xFFFFFFFFFFFFULL));
  return buf;
}

void append(std::vector<int32_t>& dst, const std::vector<int32_t>& src) { dst.insert(dst.end(), src.begin(), src.end()); }

std::string too_short(const PromptSpec& spec, const std::string& what, size_t need) {
  return spec.length_option + " " + std::to_string(spec.length) + " is too short for " + what +
         ": its fixed text alone takes " + std::to_string(need) + " tokens";
}

// MInference calibrates on this task (InfiniteBench kv_retrieval): a JSON object of random UUID
// keys and values, and a question about one key. The object is cut in the middle to reach N
// tokens; the asked key is one whose pair survives the cut whole.
Prompt kv_retrieval(const PromptSpec& spec, const Tokenizer& tok) {
  const int64_t n = spec.length;
  std::mt19937_64 rng(spec.seed);
  const std::string src = "kv_retrieval";
  std::vector<int32_t> head;  // [BOS] + instruction
  if (tok.add_bos()) head.push_back(tok.bos_id());
  append(head, tok.encode(
                   "Extract the value corresponding to the specified key in the JSON object below.\n\nJSON data:\n{\n",
                   false, src));
  struct Pair {
    std::string key, value;
    size_t begin, end;  // token range in the full sequence
  };
  std::vector<Pair> pairs;
  std::vector<int32_t> full = head;
  // Enough pairs that the instruction and the pairs alone reach N: the cut then always falls
  // inside the object, whatever the question's length.
  while (static_cast<int64_t>(full.size()) < n || pairs.size() < 2) {
    Pair p{uuid4(rng), uuid4(rng), full.size(), 0};
    append(full, tok.encode_continuation("\"" + p.key + "\": \"" + p.value + "\",\n", src));
    p.end = full.size();
    pairs.push_back(std::move(p));
  }
  const size_t body_end = full.size();
  const size_t keep_front = static_cast<size_t>(n - n / 2);  // the cut keeps [0, keep_front) ...
  // ... and the last n/2 tokens; the question (after the object) must fit in those.
  std::vector<size_t> whole;  // pairs entirely inside what the cut keeps, in order
  const double depth = spec.depth >= 0 ? spec.depth : unit(rng);
  // The question's length depends a little on the key; take the longest candidate as the bound.
  auto question = [&](const Pair& p) {
    return tok.encode_continuation("}\n\nKey: \"" + p.key + "\"\nThe value associated with the specified key is:", src);
  };
  size_t q_max = 0;
  for (const Pair& p : pairs) q_max = std::max(q_max, question(p).size());
  const size_t keep_back = static_cast<size_t>(n / 2);
  if (head.size() + 1 > keep_front || q_max > keep_back)
    throw InputError(src, too_short(spec, "kv_retrieval", head.size() + q_max));
  for (size_t i = 0; i < pairs.size(); ++i) {
    // The full sequence ends at body_end + (question length <= q_max); the back part kept is its
    // last keep_back tokens, so this test holds whatever the question's length.
    const bool in_front = pairs[i].end <= keep_front;
    const bool in_back = pairs[i].begin + keep_back >= body_end + q_max;
    if (in_front || in_back) whole.push_back(i);
  }
  if (whole.empty()) throw InputError(src, too_short(spec, "kv_retrieval (no key/value pair survives the cut)", head.size() + q_max));
  const size_t pick = whole[std::min(whole.size() - 1, static_cast<size_t>(std::floor(depth * whole.size())))];
  std::vector<int32_t> tail = question(pairs[pick]);
  full.resize(body_end);
  append(full, tail);
  Prompt out;
  out.tokens = cut_middle(full, static_cast<size_t>(n));
  out.answer = pairs[pick].value;
  out.description = "kv_retrieval: " + std::to_string(pairs.size()) + " UUID key/value pairs" +
                    (full.size() > static_cast<size_t>(n) ? " cut in the middle" : "") + ", asks pair " +
                    std::to_string(pick + 1) + " (key " + pairs[pick].key + "), seed " + std::to_string(spec.seed);
  return out;
}

// A pass key hidden in repeated filler at relative depth `depth` (default 0.5) of the filler.
Prompt passkey(const PromptSpec& spec, const Tokenizer& tok) {
  const int64_t n = spec.length;
  const std::string src = "passkey";
  std::mt19937_64 rng(spec.seed);
  const int key = 10000 + static_cast<int>(rng() % 90000);
  const double depth = spec.depth >= 0 ? spec.depth : 0.5;
  std::vector<int32_t> head;
  if (tok.add_bos()) head.push_back(tok.bos_id());
  append(head, tok.encode("There is an important info hidden inside a lot of irrelevant text. Find it and memorize it. "
                          "I will quiz you about the important information there.",
                          false, src));
  const std::string k = std::to_string(key);
  const std::vector<int32_t> needle =
      tok.encode_continuation(" The pass key is " + k + ". Remember it. " + k + " is the pass key.", src);
  const std::vector<int32_t> tail = tok.encode_continuation("\nWhat is the pass key? The pass key is", src);
  const std::vector<int32_t> unit_tokens = tok.encode_continuation(
      " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.", src);
  const size_t fixed = head.size() + needle.size() + tail.size();
  if (static_cast<size_t>(n) < fixed) throw InputError(src, too_short(spec, "passkey", fixed));
  const size_t budget = static_cast<size_t>(n) - fixed;  // filler tokens
  std::vector<int32_t> filler;  // [budget]
  while (filler.size() < budget) append(filler, unit_tokens);
  filler.resize(budget);
  const size_t before = static_cast<size_t>(std::llround(depth * static_cast<double>(budget)));
  Prompt out;
  out.tokens = head;
  out.tokens.insert(out.tokens.end(), filler.begin(), filler.begin() + static_cast<std::ptrdiff_t>(before));
  append(out.tokens, needle);
  out.tokens.insert(out.tokens.end(), filler.begin() + static_cast<std::ptrdiff_t>(before), filler.end());
  append(out.tokens, tail);
  out.answer = k;
  char d[32];
  std::snprintf(d, sizeof d, "%.3f", depth);
  out.description = "passkey: key " + k + " at depth " + d + " (after " + std::to_string(before) + " of " +
                    std::to_string(budget) + " filler tokens), seed " + std::to_string(spec.seed);
  return out;
}

// Several needles ("The special magic number for <city> is <7-digit number>.") in a haystack of
// plain sentences, and a question asking for all of them: retrieval of several facts spread over
// the context, as in RULER's multi-query needle task. The haystack is drawn sentence by sentence
// from a fixed set of everyday prose; the needles go between sentences, needle i at a random depth
// inside the i-th of `needles` equal slices of the haystack, so they are spread over the context
// and come in the order the question asks for them. Exactly N tokens: the haystack is cut to the
// tokens left after the fixed text.
const char* const kHaystackSentences[] = {
    "The morning train was late again, and the platform filled with people holding paper cups.",
    "A small bakery on the corner sells bread that is still warm at seven o'clock.",
    "Most of the garden was given over to beans, though a few roses grew along the fence.",
    "She read the letter twice before folding it back into its envelope.",
    "The river rose after a week of rain and covered the lower path by the mill.",
    "He kept his tools in a wooden box that had belonged to his grandfather.",
    "On clear evenings the whole valley could be seen from the top of the hill.",
    "The library stayed open late on Thursdays, when students came to study for their exams.",
    "Nobody in the village could remember who had planted the old oak by the church.",
    "The soup needed more salt, but nobody wanted to say so at the table.",
    "A cold wind came off the sea and rattled the shutters all night.",
    "They walked along the harbour, watching the fishing boats come in one by one.",
    "The meeting went on for an hour longer than planned, and little was decided.",
    "Her brother had a habit of humming while he worked, always the same tune.",
    "The museum had a room full of clocks, each of them showing a different time.",
    "In autumn the leaves in the park turned yellow and then a deep shade of red.",
    "The children built a raft from planks and rope and floated it on the pond.",
    "A stray cat sat on the wall every afternoon, waiting for the fishmonger to close.",
    "He wrote his notes in pencil so that he could change his mind later.",
    "The road to the farm was narrow and lined with tall hedges on both sides.",
    "When the power failed, the family played cards by candlelight until midnight.",
    "The market was busiest on Saturdays, when farmers came in from the country.",
    "She planted tomatoes by the kitchen door, where the sun stayed longest.",
    "The old bridge was closed for repairs, so everyone crossed by the ferry.",
    "A painter had set up his easel near the fountain and was sketching the square.",
    "The guests arrived early and helped to carry chairs out into the garden.",
    "Snow fell quietly through the night, and by morning the streets were white.",
    "The teacher asked the class to write a short story about a journey.",
    "There was a smell of coffee and fresh paint in the new office.",
    "The dog ran ahead along the beach and came back with a piece of driftwood.",
    "His uncle told long stories about the years he had spent working on ships.",
    "The lamps along the avenue came on one after another as the light faded.",
};

const char* const kNeedleKeys[] = {
    "Amsterdam", "Athens",   "Bangkok",  "Barcelona", "Berlin",   "Bogota",    "Brussels", "Budapest",
    "Cairo",     "Chicago",  "Dublin",   "Edinburgh", "Florence", "Geneva",    "Hamburg",  "Helsinki",
    "Istanbul",  "Jakarta",  "Kyoto",    "Lagos",     "Lima",     "Lisbon",    "London",   "Madrid",
    "Manila",    "Melbourne", "Montreal", "Moscow",   "Mumbai",   "Nairobi",   "Naples",   "Oslo",
    "Paris",     "Prague",   "Santiago", "Seoul",     "Shanghai", "Stockholm", "Sydney",   "Tokyo",
    "Toronto",   "Valencia", "Vancouver", "Venice",   "Vienna",   "Warsaw",    "Zagreb",   "Zurich",
};
constexpr size_t kNumNeedleKeys = sizeof(kNeedleKeys) / sizeof(kNeedleKeys[0]);

Prompt multi_needle(const PromptSpec& spec, const Tokenizer& tok) {
  const int64_t n = spec.length;
  const std::string src = "multi_needle";
  if (spec.depth >= 0)
    throw InputError("--depth applies to passkey and kv_retrieval; multi_needle spreads its needles over the "
                     "context itself (change --seed to move them)");
  const int count = spec.needles == 0 ? 4 : spec.needles;
  if (count < 1 || static_cast<size_t>(count) > kNumNeedleKeys)
    throw InputError("--needles must be in [1, " + std::to_string(kNumNeedleKeys) + "], not " + std::to_string(count));
  const size_t k = static_cast<size_t>(count);
  std::mt19937_64 rng(spec.seed);
  // k distinct keys (a partial Fisher-Yates shuffle) and k distinct 7-digit values.
  std::vector<size_t> order(kNumNeedleKeys);
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (size_t i = 0; i < k; ++i) std::swap(order[i], order[i + rng() % (order.size() - i)]);
  std::vector<std::string> keys, values;
  while (values.size() < k) {
    const std::string v = std::to_string(1000000 + rng() % 9000000);
    if (std::find(values.begin(), values.end(), v) == values.end()) values.push_back(v);
  }
  for (size_t i = 0; i < k; ++i) keys.push_back(kNeedleKeys[order[i]]);
  std::vector<double> depths(k);  // needle i inside slice [i/k, (i+1)/k), away from its edges
  for (size_t i = 0; i < k; ++i) depths[i] = (static_cast<double>(i) + 0.1 + 0.8 * unit(rng)) / static_cast<double>(k);

  std::vector<int32_t> head;
  if (tok.add_bos()) head.push_back(tok.bos_id());
  append(head, tok.encode("Some special magic numbers are hidden inside the following text. Make sure to memorize "
                          "them. I will quiz you about the numbers afterwards.",
                          false, src));
  std::vector<std::vector<int32_t>> needles;
  size_t fixed = head.size();
  for (size_t i = 0; i < k; ++i) {
    needles.push_back(tok.encode_continuation(" The special magic number for " + keys[i] + " is " + values[i] + ".", src));
    fixed += needles.back().size();
  }
  std::string listed;  // "A", "A and B", "A, B and C"
  for (size_t i = 0; i < k; ++i) listed += (i == 0 ? "" : i + 1 == k ? " and " : ", ") + keys[i];
  const std::vector<int32_t> tail = tok.encode_continuation(
      "\nWhat are the special magic numbers for " + listed + ", in that order? The special magic numbers are:", src);
  fixed += tail.size();
  if (static_cast<size_t>(n) < fixed) throw InputError(src, too_short(spec, "multi_needle", fixed));
  const size_t budget = static_cast<size_t>(n) - fixed;  // haystack tokens

  // The haystack: random sentences (never the same one twice in a row), cut to the budget; the
  // token offsets where sentences start are where needles may go.
  const size_t num_sentences = sizeof(kHaystackSentences) / sizeof(kHaystackSentences[0]);
  std::vector<std::vector<int32_t>> sentences;
  for (const char* sentence : kHaystackSentences) sentences.push_back(tok.encode_continuation(std::string(" ") + sentence, src));
  std::vector<int32_t> hay;
  std::vector<size_t> starts;
  size_t last = num_sentences;
  while (hay.size() < budget) {
    size_t pick = rng() % num_sentences;
    if (pick == last) pick = (pick + 1) % num_sentences;
    last = pick;
    starts.push_back(hay.size());
    append(hay, sentences[pick]);
  }
  hay.resize(budget);
  starts.push_back(budget);  // after the (possibly cut) last sentence
  std::vector<size_t> at(k);  // haystack offset of each needle: the sentence start nearest its depth
  for (size_t i = 0; i < k; ++i) {
    const double want = depths[i] * static_cast<double>(budget);
    size_t best = 0;
    for (size_t s : starts)
      if (std::abs(static_cast<double>(s) - want) < std::abs(static_cast<double>(best) - want)) best = s;
    at[i] = std::max(best, i > 0 ? at[i - 1] : size_t{0});
  }

  Prompt out;
  out.tokens = head;
  size_t from = 0;
  for (size_t i = 0; i < k; ++i) {
    out.tokens.insert(out.tokens.end(), hay.begin() + static_cast<std::ptrdiff_t>(from),
                      hay.begin() + static_cast<std::ptrdiff_t>(at[i]));
    append(out.tokens, needles[i]);
    from = at[i];
  }
  out.tokens.insert(out.tokens.end(), hay.begin() + static_cast<std::ptrdiff_t>(from), hay.end());
  append(out.tokens, tail);
  std::string where;
  for (size_t i = 0; i < k; ++i) {
    out.answer += (i ? ", " : "") + values[i];
    char d[16];
    std::snprintf(d, sizeof d, "%.3f", budget ? static_cast<double>(at[i]) / static_cast<double>(budget) : 0.0);
    where += (i ? ", " : "") + keys[i] + " " + values[i] + " at " + d;
  }
  out.description = "multi_needle: " + std::to_string(k) + " needles in " + std::to_string(budget) +
                    " haystack tokens (" + where + "), seed " + std::to_string(spec.seed);
  return out;
}

// A text repeated (separated by a blank line) or cut at its end to N tokens.
Prompt repeated_text(const PromptSpec& spec, const Tokenizer& tok) {
  const int64_t n = spec.length;
  std::string name = spec.prompt_file;
  std::string text;
  if (name.empty()) {
    name = "built-in filler";
    text = "The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
  } else {
    text = read_text_file(name);
  }
  std::vector<int32_t> body = tok.encode_continuation(text, name);
  if (body.empty()) throw InputError(name, "the text has no tokens");
  const std::vector<int32_t> separator = tok.encode_continuation("\n\n", name);
  Prompt out;
  if (tok.add_bos()) out.tokens.push_back(tok.bos_id());
  size_t copies = 0;
  while (static_cast<int64_t>(out.tokens.size()) < n) {
    if (copies > 0) append(out.tokens, separator);
    append(out.tokens, body);
    ++copies;
  }
  out.tokens.resize(static_cast<size_t>(n));
  out.description = "text: " + name + " (" + std::to_string(body.size()) + " tokens) repeated " +
                    std::to_string(copies) + (copies == 1 ? " time" : " times") + " and cut to length";
  return out;
}

// Uniform random ids over the whole vocabulary: for timing runs, where content does not matter.
Prompt random_ids(const PromptSpec& spec, int32_t vocab) {
  Prompt out;
  out.tokens = random_token_ids(spec.length, vocab, spec.seed);
  out.description = "random: uniform ids over the vocabulary of " + std::to_string(vocab) + ", seed " +
                    std::to_string(spec.seed);
  return out;
}

void check_ids(const std::vector<int64_t>& ids, const std::string& file, int32_t vocab) {
  for (size_t i = 0; i < ids.size(); ++i)
    if (ids[i] < 0 || ids[i] >= vocab)
      throw InputError(file, "token id " + std::to_string(ids[i]) + " at index " + std::to_string(i) +
                                 " is outside the model's vocabulary [0, " + std::to_string(vocab) + ")");
}

// --length on a file's own tokens: cut from the middle when longer; shorter is an error.
void fit_length(Prompt& p, const PromptSpec& spec, const std::string& file, const char* hint) {
  const int64_t n = spec.length;
  if (n <= 0 || static_cast<int64_t>(p.tokens.size()) == n) return;
  if (static_cast<int64_t>(p.tokens.size()) < n)
    throw InputError(file, "has " + std::to_string(p.tokens.size()) + " tokens, fewer than " + spec.length_option +
                               " " + std::to_string(n) + hint);
  const size_t had = p.tokens.size();
  p.tokens = cut_middle(p.tokens, static_cast<size_t>(n));
  p.description += ", cut in the middle from " + std::to_string(had);
}

}  // namespace

std::vector<int32_t> cut_middle(const std::vector<int32_t>& tokens, size_t n) {
  if (n >= tokens.size()) return tokens;
  std::vector<int32_t> out(tokens.begin(), tokens.begin() + static_cast<std::ptrdiff_t>(n - n / 2));
  out.insert(out.end(), tokens.end() - static_cast<std::ptrdiff_t>(n / 2), tokens.end());
  return out;
}

std::string tokens_sha256(const std::vector<int32_t>& tokens) {
  Sha256 h;
  for (int32_t t : tokens) {
    const uint32_t u = static_cast<uint32_t>(t);
    const uint8_t le[4] = {static_cast<uint8_t>(u), static_cast<uint8_t>(u >> 8), static_cast<uint8_t>(u >> 16),
                           static_cast<uint8_t>(u >> 24)};
    h.update(le, 4);
  }
  return h.hex_digest();
}

std::vector<int32_t> random_token_ids(int64_t n, int64_t vocab, uint64_t seed) {
  if (n <= 0 || vocab <= 0) throw InputError("random prompt", "length and vocabulary must be positive");
  std::mt19937_64 rng(seed);
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int32_t& t : ids) t = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
  return ids;
}

std::string kv_retrieval_text(size_t bytes, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string text = "{\n";
  while (text.size() < bytes) text += "\"" + uuid4(rng) + "\": \"" + uuid4(rng) + "\",\n";
  text.resize(bytes);
  return text;
}

Prompt build_prompt(const PromptSpec& spec, const Tokenizer& tok, int64_t max_context) {
  return build_prompt(spec, &tok, tok.vocab_size(), max_context);
}

Prompt build_prompt(const PromptSpec& spec, const Tokenizer* tokenizer, int32_t vocab, int64_t max_context) {
  // Text needs the tokenizer; token files and random ids need only the vocabulary size.
  auto tok = [&]() -> const Tokenizer& {
    if (!tokenizer)
      throw InputError("this model has no tokenizer: give the prompt as --tokens FILE, or --generate random --length N");
    return *tokenizer;
  };
  const bool generate = !spec.generator.empty();
  const int sources = (generate ? 1 : 0) + (!spec.tokens_file.empty() ? 1 : 0) +
                      (!spec.prompt_file.empty() && !generate ? 1 : 0);
  if (sources == 0) throw InputError("no prompt given: use --prompt FILE, --tokens FILE or --generate NAME");
  if (sources > 1) throw InputError("give one prompt source: --prompt, --tokens and --generate exclude each other "
                                    "(--prompt goes with --generate text only)");
  if (spec.length < 0) throw InputError(spec.length_option + " must be positive, not " + std::to_string(spec.length));
  if (spec.depth > 1) throw InputError("--depth must be in [0, 1], not " + std::to_string(spec.depth));
  if (generate && spec.length == 0) throw InputError("--generate " + spec.generator + " needs --length N");
  if (spec.needles != 0 && spec.generator != "multi_needle")
    throw InputError("--needles goes with --generate multi_needle only");
  if (!spec.prompt_file.empty() && generate && spec.generator != "text")
    throw InputError("--prompt goes with --generate text only (not " + spec.generator + ")");
  Prompt out;
  // `source`: what set the length (--length, or the prompt's file), named in the error.
  auto over_context = [&](int64_t n, const std::string& source) {
    if (max_context <= 0 || n <= max_context) return;
    const std::string msg = std::to_string(n) + " tokens are more than the model's context of " +
                            std::to_string(max_context);
    if (!spec.allow_longer) throw InputError(source, msg + " (pass --allow-longer to run anyway)");
    out.warnings.push_back(msg + "; positions beyond it were never trained");
  };
  over_context(spec.length, spec.length_option);  // fail before generating a long prompt for nothing

  Prompt built;
  if (generate) {
    if (spec.generator == "kv_retrieval") built = kv_retrieval(spec, tok());
    else if (spec.generator == "passkey") built = passkey(spec, tok());
    else if (spec.generator == "multi_needle") built = multi_needle(spec, tok());
    else if (spec.generator == "text") built = repeated_text(spec, tok());
    else if (spec.generator == "random") built = random_ids(spec, vocab);
    else throw InputError("--generate " + spec.generator + ": unknown generator (kv_retrieval, passkey, multi_needle, text, random)");
    HC_ASSERT(static_cast<int64_t>(built.tokens.size()) == spec.length, "generator length");
  } else if (!spec.tokens_file.empty()) {
    const std::vector<int64_t> ids = read_token_file(spec.tokens_file);
    if (ids.empty()) throw InputError(spec.tokens_file, "the token file holds no token ids");
    check_ids(ids, spec.tokens_file, vocab);
    built.tokens.assign(ids.begin(), ids.end());
    built.description = "token file " + spec.tokens_file + ", " + std::to_string(ids.size()) + " tokens";
    fit_length(built, spec, spec.tokens_file, "");
  } else {
    const std::string text = read_text_file(spec.prompt_file);
    built.tokens = tok().encode(text, spec.prompt_file);
    built.description = "text file " + spec.prompt_file + ", " + std::to_string(built.tokens.size()) + " tokens";
    fit_length(built, spec, spec.prompt_file, " (--generate text --prompt FILE repeats a text to length)");
  }
  if (built.tokens.empty()) throw InputError(spec.prompt_file, "the prompt has no tokens");
  if (spec.length == 0)
    over_context(static_cast<int64_t>(built.tokens.size()), spec.tokens_file.empty() ? spec.prompt_file : spec.tokens_file);
  built.warnings.insert(built.warnings.begin(), out.warnings.begin(), out.warnings.end());
  built.sha256 = tokens_sha256(built.tokens);
  built.description += " -> " + std::to_string(built.tokens.size()) + " tokens";
  return built;
}

}  // namespace hc

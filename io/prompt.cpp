// Prompt sources and generators. Generated prompts are built as token sequences piece by piece
// (each piece starts where the model's pre-split starts a new piece anyway), so their length can
// be made exact without re-tokenizing, and the same (generator, N, seed, depth) always gives the
// same ids.
#include "io/prompt.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>

#include "common/error.h"
#include "io/mapped_file.h"
#include "io/sha256.h"
#include "io/tokenizer.h"

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

std::string too_short(const std::string& what, size_t need, int64_t n) {
  return "--length " + std::to_string(n) + " is too short for " + what + ": its fixed text alone takes " +
         std::to_string(need) + " tokens";
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
    throw InputError(src, too_short("kv_retrieval", head.size() + q_max, n));
  for (size_t i = 0; i < pairs.size(); ++i) {
    // The full sequence ends at body_end + (question length <= q_max); the back part kept is its
    // last keep_back tokens, so this test holds whatever the question's length.
    const bool in_front = pairs[i].end <= keep_front;
    const bool in_back = pairs[i].begin + keep_back >= body_end + q_max;
    if (in_front || in_back) whole.push_back(i);
  }
  if (whole.empty()) throw InputError(src, too_short("kv_retrieval (no key/value pair survives the cut)", head.size() + q_max, n));
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
  if (static_cast<size_t>(n) < fixed) throw InputError(src, too_short("passkey", fixed, n));
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
void fit_length(Prompt& p, int64_t n, const std::string& file, const char* hint) {
  if (n <= 0 || static_cast<int64_t>(p.tokens.size()) == n) return;
  if (static_cast<int64_t>(p.tokens.size()) < n)
    throw InputError(file, "has " + std::to_string(p.tokens.size()) + " tokens, fewer than --length " +
                               std::to_string(n) + hint);
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
  if (spec.length < 0) throw InputError("--length must be positive, not " + std::to_string(spec.length));
  if (spec.depth > 1) throw InputError("--depth must be in [0, 1], not " + std::to_string(spec.depth));
  if (generate && spec.length == 0) throw InputError("--generate " + spec.generator + " needs --length N");
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
  over_context(spec.length, "--length");  // fail before generating a long prompt for nothing

  Prompt built;
  if (generate) {
    if (spec.generator == "kv_retrieval") built = kv_retrieval(spec, tok());
    else if (spec.generator == "passkey") built = passkey(spec, tok());
    else if (spec.generator == "text") built = repeated_text(spec, tok());
    else if (spec.generator == "random") built = random_ids(spec, vocab);
    else throw InputError("--generate " + spec.generator + ": unknown generator (kv_retrieval, passkey, text, random)");
    HC_ASSERT(static_cast<int64_t>(built.tokens.size()) == spec.length, "generator length");
  } else if (!spec.tokens_file.empty()) {
    const std::vector<int64_t> ids = read_token_file(spec.tokens_file);
    if (ids.empty()) throw InputError(spec.tokens_file, "the token file holds no token ids");
    check_ids(ids, spec.tokens_file, vocab);
    built.tokens.assign(ids.begin(), ids.end());
    built.description = "token file " + spec.tokens_file + ", " + std::to_string(ids.size()) + " tokens";
    fit_length(built, spec.length, spec.tokens_file, "");
  } else {
    const std::string text = read_text_file(spec.prompt_file);
    built.tokens = tok().encode(text, spec.prompt_file);
    built.description = "text file " + spec.prompt_file + ", " + std::to_string(built.tokens.size()) + " tokens";
    fit_length(built, spec.length, spec.prompt_file, " (--generate text --prompt FILE repeats a text to length)");
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

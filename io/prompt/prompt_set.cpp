#include "io/prompt/prompt_set.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "common/error.h"
#include "io/util/mapped_file.h"
#include "io/util/sha256.h"
#include "io/util/yaml_util.h"

namespace fs = std::filesystem;

namespace hc {

namespace {

// Set lengths and seeds beyond these are typos, not prompts (the largest context headcal targets
// is 1M tokens; 2^24 leaves room for --allow-longer experiments).
constexpr int64_t kMaxSetLength = int64_t(1) << 24;
constexpr size_t kMaxSetEntries = 1024;

const std::set<std::string> kGenerators = {"kv_retrieval", "passkey", "multi_needle", "text", "random"};

std::string scalar(const YAML::Node& node, const std::string& where, const char* key) {
  if (!node.IsScalar()) throw InputError(where, std::string("'") + key + "' must be a scalar");
  return node.Scalar();
}

int64_t parse_int(const YAML::Node& node, const std::string& where, const char* key, int64_t lo, int64_t hi) {
  const std::string text = scalar(node, where, key);
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || *end != '\0' || errno != 0 || v < lo || v > hi)
    throw InputError(where, std::string("'") + key + "' must be an integer in [" + std::to_string(lo) + ", " +
                                std::to_string(hi) + "], not '" + text + "'");
  return v;
}

double parse_number(const YAML::Node& node, const std::string& where, const char* key) {
  const std::string text = scalar(node, where, key);
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || *end != '\0' || errno != 0 || !std::isfinite(v))
    throw InputError(where, std::string("'") + key + "' must be a finite number, not '" + text + "'");
  return v;
}

// A file named by the set, resolved against the set's folder; it must be a regular file.
std::string resolve_file(const YAML::Node& node, const std::string& where, const char* key, const std::string& folder) {
  const std::string name = scalar(node, where, key);
  if (name.empty()) throw InputError(where, std::string("'") + key + "' is empty");
  fs::path p(name);
  // A tokens entry may name an HDF5 dataset after ':' (FILE.h5:/dataset): check the file part.
  std::string file_part = name;
  if (std::string(key) == "tokens") {
    const auto colon = name.find(':');
    if (colon != std::string::npos && colon > 0) file_part = name.substr(0, colon);
  }
  fs::path resolved = fs::path(file_part).is_absolute() ? fs::path(file_part) : fs::path(folder) / file_part;
  std::error_code ec;
  if (!fs::is_regular_file(resolved, ec))
    throw InputError(where, std::string("'") + key + "': no such file " + resolved.string());
  std::string out = resolved.string();
  if (file_part.size() != name.size()) out += name.substr(file_part.size());
  return out;
}

PromptSet parse_impl(const std::string& text, const std::string& source, const std::string& folder) {
  YAML::Node root = load_yaml_text(text, source);
  if (!root.IsMap()) throw InputError(source, "expected a YAML mapping with format, version, prompts");
  for (auto it = root.begin(); it != root.end(); ++it) {
    const std::string key = it->first.as<std::string>();
    if (key != "format" && key != "version" && key != "name" && key != "length" && key != "prompts")
      throw InputError(source, "unknown top-level key '" + key + "' (format, version, name, length, prompts)");
  }
  if (!root["format"] || !root["format"].IsScalar() || root["format"].Scalar() != kPromptSetFormat)
    throw InputError(source, std::string("format must be '") + kPromptSetFormat + "'");
  if (!root["version"] || !root["version"].IsScalar() || root["version"].Scalar() != "1")
    throw InputError(source, "unsupported prompt-set version (this headcal reads version 1)");

  PromptSet set;
  set.source = source;
  set.name = root["name"] ? scalar(root["name"], source, "name") : fs::path(source).stem().string();
  const int64_t default_length = root["length"] ? parse_int(root["length"], source, "length", 1, kMaxSetLength) : 0;
  const YAML::Node list = root["prompts"];
  if (!list || !list.IsSequence() || list.size() == 0) throw InputError(source, "'prompts' must be a non-empty list");
  if (list.size() > kMaxSetEntries)
    throw InputError(source, "'prompts' has " + std::to_string(list.size()) + " entries, more than " +
                                 std::to_string(kMaxSetEntries));

  std::set<std::string> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node e = list[i];
    std::string where = source + ": prompts[" + std::to_string(i) + "]";
    if (!e.IsMap()) throw InputError(where, "expected a mapping (name, text | tokens | generate, length, weight, ...)");
    PromptSetEntry entry;
    entry.name = e["name"] ? scalar(e["name"], where, "name") : "prompt_" + std::to_string(i);
    where += " (" + entry.name + ")";
    if (entry.name.empty()) throw InputError(where, "'name' is empty");
    for (auto it = e.begin(); it != e.end(); ++it) {
      const std::string key = it->first.as<std::string>();
      if (key != "name" && key != "text" && key != "tokens" && key != "generate" && key != "length" &&
          key != "weight" && key != "seed" && key != "depth" && key != "needles")
        throw InputError(where, "unknown key '" + key +
                                    "' (name, text, tokens, generate, length, weight, seed, depth, needles)");
    }
    if (!names.insert(entry.name).second) throw InputError(where, "the name '" + entry.name + "' is used twice");

    PromptSpec& spec = entry.spec;
    if (e["generate"]) {
      spec.generator = scalar(e["generate"], where, "generate");
      if (!kGenerators.count(spec.generator))
        throw InputError(where, "unknown generator '" + spec.generator +
                                    "' (kv_retrieval, passkey, multi_needle, text, random)");
    }
    if (e["text"]) spec.prompt_file = resolve_file(e["text"], where, "text", folder);
    if (e["tokens"]) spec.tokens_file = resolve_file(e["tokens"], where, "tokens", folder);
    const int sources = (e["generate"] ? 1 : 0) + (e["tokens"] ? 1 : 0) + (e["text"] && !e["generate"] ? 1 : 0);
    if (sources != 1) throw InputError(where, "give exactly one source: text, tokens or generate");
    if (e["text"] && e["generate"] && spec.generator != "text")
      throw InputError(where, "'text' goes with 'generate: text' only (not " + spec.generator + ")");
    if (spec.generator == "text" && !e["text"]) throw InputError(where, "'generate: text' needs 'text: FILE'");

    spec.length = e["length"] ? parse_int(e["length"], where, "length", 1, kMaxSetLength) : default_length;
    if (!spec.generator.empty() && spec.length == 0)
      throw InputError(where, "a generated prompt needs a length (the entry's or the set's 'length')");
    if (e["weight"]) {
      entry.weight = parse_number(e["weight"], where, "weight");
      if (!(entry.weight > 0)) throw InputError(where, "'weight' must be > 0");
    }
    if (e["seed"]) spec.seed = static_cast<uint64_t>(parse_int(e["seed"], where, "seed", 0, INT64_MAX));
    if (e["needles"]) spec.needles = static_cast<int>(parse_int(e["needles"], where, "needles", 1, 48));
    if (e["depth"]) {
      spec.depth = parse_number(e["depth"], where, "depth");
      if (spec.depth < 0 || spec.depth > 1) throw InputError(where, "'depth' must be in [0, 1]");
    }
    set.entries.push_back(std::move(entry));
  }
  return set;
}

}  // namespace

PromptSet parse_prompt_set_yaml(const std::string& text, const std::string& source, const std::string& folder) {
  try {
    return parse_impl(text, source, folder);
  } catch (const YAML::Exception& e) {
    throw InputError(source, std::string("malformed prompt set: ") + e.what());
  }
}

PromptSet read_prompt_set(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) throw InputError(path, "no such prompt-set file");
  const std::string folder = fs::path(path).parent_path().string();
  return parse_prompt_set_yaml(read_whole_file(path, "cannot open the prompt-set file"), path,
                               folder.empty() ? "." : folder);
}

void override_prompt_set_length(PromptSet& set, int64_t n) {
  if (n <= 0) return;
  for (PromptSetEntry& e : set.entries) e.spec.length = n;
}

bool prompt_set_needs_tokenizer(const PromptSet& set) {
  for (const PromptSetEntry& e : set.entries)
    if (!e.spec.prompt_file.empty() || (!e.spec.generator.empty() && e.spec.generator != "random")) return true;
  return false;
}

std::vector<SetPrompt> build_prompt_set(const PromptSet& set, const Tokenizer* tokenizer, int32_t vocab,
                                        int64_t max_context, bool allow_longer) {
  std::vector<SetPrompt> out;
  out.reserve(set.entries.size());
  for (size_t i = 0; i < set.entries.size(); ++i) {
    const PromptSetEntry& e = set.entries[i];
    PromptSpec spec = e.spec;
    spec.allow_longer = allow_longer;
    try {
      out.push_back({e.name, e.weight, build_prompt(spec, tokenizer, vocab, max_context)});
    } catch (const InputError& err) {
      throw InputError(set.source, "prompts[" + std::to_string(i) + "] (" + e.name + "): " + err.what());
    }
  }
  return out;
}

std::string prompt_set_sha256(const std::vector<SetPrompt>& prompts) {
  Sha256 h;
  for (const SetPrompt& p : prompts) {
    h.update(p.name);
    h.update("\n" + std::to_string(p.weight) + "\n");
    h.update(p.prompt.sha256);
    h.update("\n");
  }
  return h.hex_digest();
}

std::string describe_prompt_set(const PromptSet& set, const std::vector<SetPrompt>& prompts) {
  size_t lo = SIZE_MAX, hi = 0;
  for (const SetPrompt& p : prompts) {
    lo = std::min(lo, p.prompt.tokens.size());
    hi = std::max(hi, p.prompt.tokens.size());
  }
  std::string out = "prompt set " + set.name + " (" + set.source + "): " + std::to_string(prompts.size()) + " prompts, ";
  out += lo == hi ? std::to_string(hi) + " tokens each" : std::to_string(lo) + "-" + std::to_string(hi) + " tokens";
  return out;
}

}  // namespace hc

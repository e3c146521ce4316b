// Hugging Face tokenizer.json -> TokenizerData, for BPE models with a ByteLevel pre-tokenizer
// family. Anything outside what ByteLevelBpe reproduces exactly is an InputError naming the
// field, never a silent approximation.
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/tokenizer/tokenizer.h"

namespace hc {

namespace {

using nlohmann::json;

// The Split patterns of the Llama 3 and Qwen2 tokenizer.json files.
const char* const kLlama3Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const char* const kQwen2Pattern =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

bool get_bool(const json& j, const char* key, bool fallback) {
  auto it = j.find(key);
  return it == j.end() || it->is_null() ? fallback : it->get<bool>();
}

// ByteLevel with add_prefix_space false; returns its use_regex.
bool byte_level_regex(const json& j, const std::string& src) {
  if (get_bool(j, "add_prefix_space", true))
    throw InputError(src, "pre_tokenizer ByteLevel with add_prefix_space=true is not supported");
  return get_bool(j, "use_regex", true);
}

std::string pre_split_of(const json& pre, const std::string& src) {
  const std::string unsupported = "pre_tokenizer " + pre.dump().substr(0, 200) +
                                  " is not supported (supported: ByteLevel; Digits + ByteLevel; "
                                  "Split(Llama 3 or Qwen2 pattern) + ByteLevel)";
  if (!pre.is_object()) throw InputError(src, unsupported);
  const std::string type = pre.value("type", "");
  if (type == "ByteLevel" && byte_level_regex(pre, src)) return "gpt2";
  if (type == "Sequence") {
    const json& seq = pre.at("pretokenizers");
    if (seq.size() == 2 && seq[1].value("type", "") == "ByteLevel") {
      const json& first = seq[0];
      const std::string t0 = first.value("type", "");
      if (t0 == "Digits" && get_bool(first, "individual_digits", false) && byte_level_regex(seq[1], src))
        return "smollm";
      if (t0 == "Split" && !byte_level_regex(seq[1], src) && first.value("behavior", "") == "Isolated" &&
          !get_bool(first, "invert", false) && first.contains("pattern") && first["pattern"].contains("Regex")) {
        const std::string re = first["pattern"]["Regex"].get<std::string>();
        if (re == kLlama3Pattern) return "llama3";
        if (re == kQwen2Pattern) return "qwen2";
      }
    }
  }
  throw InputError(src, unsupported);
}

// True when the post-processor prepends a special token (TemplateProcessing "single" starting
// with a SpecialToken); `bos` receives its text.
bool template_prepends(const json& post, std::string& bos) {
  if (!post.is_object()) return false;
  const std::string type = post.value("type", "");
  if (type == "Sequence") {
    for (const json& p : post.value("processors", json::array()))
      if (template_prepends(p, bos)) return true;
    return false;
  }
  if (type != "TemplateProcessing") return false;
  const json& single = post.value("single", json::array());
  if (single.empty() || !single[0].contains("SpecialToken")) return false;
  bos = single[0]["SpecialToken"].value("id", "");
  return !bos.empty();
}

}  // namespace

TokenizerData tokenizer_data_from_hf_json(const std::string& json_text, const std::string& source) {
  json root;
  try {
    root = json::parse(json_text);
  } catch (const json::exception& e) {
    throw InputError(source, std::string("not valid JSON: ") + e.what());
  }
  TokenizerData d;
  d.source = source;
  d.model = "gpt2";
  try {
    const json& model = root.at("model");
    if (model.value("type", "BPE") != "BPE")
      throw InputError(source, "model type '" + model.value("type", "") + "' is not supported (BPE only)");
    if (get_bool(model, "byte_fallback", false))
      throw InputError(source, "BPE with byte_fallback (SentencePiece-converted vocabularies) is read from GGUF only");
    if (!model.value("continuing_subword_prefix", json()).is_null() || !model.value("end_of_word_suffix", json()).is_null())
      throw InputError(source, "BPE continuing_subword_prefix / end_of_word_suffix are not supported");
    if (!model.value("dropout", json()).is_null()) throw InputError(source, "BPE dropout is not supported");
    d.ignore_merges = get_bool(model, "ignore_merges", false);
    if (!root.value("normalizer", json()).is_null())
      throw InputError(source, "normalizer " + root["normalizer"].dump() + " is not supported");
    d.pre = pre_split_of(root.at("pre_tokenizer"), source);

    // Vocabulary: model.vocab plus added_tokens, by id; every id below the largest must be used.
    const json& vocab = model.at("vocab");
    int64_t max_id = -1;
    for (auto it = vocab.begin(); it != vocab.end(); ++it) max_id = std::max<int64_t>(max_id, it.value().get<int64_t>());
    const json added = root.value("added_tokens", json::array());
    for (const json& a : added) max_id = std::max<int64_t>(max_id, a.at("id").get<int64_t>());
    if (max_id < 0 || max_id >= INT32_MAX) throw InputError(source, "model.vocab is empty or its ids are out of range");
    // Contiguous ids: the largest is below the number of entries, which bounds the tables by the file.
    const int64_t entries = static_cast<int64_t>(vocab.size() + added.size());
    if (max_id >= entries)
      throw InputError(source, "token id " + std::to_string(max_id) + " is beyond the " + std::to_string(entries) +
                                   " tokens the file defines (ids must be contiguous)");
    d.tokens.assign(static_cast<size_t>(max_id + 1), std::string());
    std::vector<bool> used(d.tokens.size(), false);
    d.types.assign(d.tokens.size(), static_cast<int32_t>(TokenType::Normal));
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      int64_t id = it.value().get<int64_t>();
      if (id < 0) throw InputError(source, "model.vocab: negative id for '" + it.key() + "'");
      d.tokens[static_cast<size_t>(id)] = it.key();
      used[static_cast<size_t>(id)] = true;
    }
    for (const json& a : added) {
      int64_t id = a.at("id").get<int64_t>();
      const std::string content = a.at("content").get<std::string>();
      if (id < 0) throw InputError(source, "added_tokens: negative id for '" + content + "'");
      if (get_bool(a, "lstrip", false) || get_bool(a, "rstrip", false) || get_bool(a, "single_word", false))
        throw InputError(source, "added token '" + content + "' uses lstrip/rstrip/single_word, which is not supported");
      d.tokens[static_cast<size_t>(id)] = content;
      used[static_cast<size_t>(id)] = true;
      d.types[static_cast<size_t>(id)] =
          static_cast<int32_t>(get_bool(a, "special", false) ? TokenType::Control : TokenType::UserDefined);
      d.added_ids.push_back(static_cast<int32_t>(id));
    }
    for (size_t i = 0; i < used.size(); ++i)
      if (!used[i]) throw InputError(source, "token id " + std::to_string(i) + " has no token (ids must be contiguous)");

    for (const json& m : model.at("merges")) {
      if (m.is_string()) d.merges.push_back(m.get<std::string>());
      else if (m.is_array() && m.size() == 2) d.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
      else throw InputError(source, "model.merges: entry " + m.dump() + " is neither \"a b\" nor [a, b]");
    }
    if (model.contains("unk_token") && !model["unk_token"].is_null()) {
      const std::string unk = model["unk_token"].get<std::string>();
      for (size_t i = 0; i < d.tokens.size(); ++i)
        if (d.tokens[i] == unk) d.unk_id = static_cast<int32_t>(i);
    }
    std::string bos;
    if (template_prepends(root.value("post_processor", json()), bos)) {
      for (size_t i = 0; i < d.tokens.size(); ++i)
        if (d.tokens[i] == bos) d.bos_id = static_cast<int32_t>(i);
      if (d.bos_id < 0) throw InputError(source, "post_processor prepends '" + bos + "', which is not a token");
      d.add_bos = true;
    }
  } catch (const json::exception& e) {
    throw InputError(source, std::string("malformed tokenizer.json: ") + e.what());
  }
  return d;
}

}  // namespace hc

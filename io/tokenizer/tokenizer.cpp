#include "io/tokenizer/tokenizer.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <filesystem>

#include "common/error.h"
#include "io/tokenizer/bpe.h"
#include "io/model/gguf.h"
#include "io/util/mapped_file.h"
#include "io/tokenizer/unicode.h"

namespace hc {

namespace fs = std::filesystem;

Tokenizer::Tokenizer(TokenizerData data) : data_(std::move(data)) {
  const std::string& src = data_.source;
  const size_t n = data_.tokens.size();
  if (n == 0) throw InputError(src, "the tokenizer has an empty vocabulary");
  if (n > static_cast<size_t>(INT32_MAX)) throw InputError(src, "vocabulary too large");
  if (!data_.types.empty() && data_.types.size() != n)
    throw InputError(src, "token_type has " + std::to_string(data_.types.size()) + " entries for " +
                              std::to_string(n) + " tokens");
  auto check_id = [&](int32_t id, const char* what) {
    if (id < -1 || id >= static_cast<int32_t>(n))
      throw InputError(src, std::string(what) + " id " + std::to_string(id) + " is outside the vocabulary of " +
                                std::to_string(n));
  };
  check_id(data_.bos_id, "BOS");
  check_id(data_.eos_id, "EOS");
  check_id(data_.unk_id, "unknown-token");
  if (data_.add_bos && data_.bos_id < 0) throw InputError(src, "the tokenizer adds a BOS token but names none");

  vocab_index_.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) vocab_index_.emplace(data_.tokens[i], static_cast<int32_t>(i));

  if (data_.added_ids.empty() && !data_.types.empty())
    for (size_t i = 0; i < n; ++i) {
      auto t = static_cast<TokenType>(data_.types[i]);
      if (t == TokenType::Control || t == TokenType::UserDefined || t == TokenType::Unknown)
        data_.added_ids.push_back(static_cast<int32_t>(i));
    }
  added_by_first_byte_.assign(256, {});
  for (int32_t id : data_.added_ids) {
    check_id(id, "added token");
    const std::string& text = data_.tokens[static_cast<size_t>(id)];
    if (text.empty()) continue;
    added_by_first_byte_[static_cast<uint8_t>(text[0])].push_back(id);
    has_added_ = true;
  }
  for (auto& bucket : added_by_first_byte_)  // longest first: the reference matches leftmost-longest
    std::stable_sort(bucket.begin(), bucket.end(), [&](int32_t a, int32_t b) {
      return data_.tokens[static_cast<size_t>(a)].size() > data_.tokens[static_cast<size_t>(b)].size();
    });
}

int32_t Tokenizer::token_id(const std::string& text) const {
  auto it = vocab_index_.find(text);
  return it == vocab_index_.end() ? -1 : it->second;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, const std::string& source) const {
  return encode(text, data_.add_bos, source);
}

std::vector<int32_t> Tokenizer::encode_continuation(std::string_view text, const std::string& source) const {
  return encode_impl(text, false, false, source);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos, const std::string& source) const {
  return encode_impl(text, add_bos, true, source);
}

std::vector<int32_t> Tokenizer::encode_impl(std::string_view text, bool add_bos, bool at_start,
                                            const std::string& source) const {
  if (text.size() > UINT32_MAX)  // piece offsets are 32-bit
    throw InputError(source, "text of " + std::to_string(text.size()) + " bytes is too large to tokenize at once (4 GiB at most)");
  size_t bad = unicode::first_invalid(text);
  if (bad != std::string_view::npos) {
    char hex[8];
    std::snprintf(hex, sizeof hex, "0x%02X", static_cast<unsigned>(static_cast<uint8_t>(text[bad])));
    throw InputError(source, "not valid UTF-8 (byte " + std::string(hex) + " at offset " + std::to_string(bad) +
                                 "); headcal tokenizes UTF-8 text only");
  }
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_bos) out.push_back(data_.bos_id);
  size_t stretch = 0;  // start of the text not yet tokenized
  bool after_special = at_start;
  if (has_added_) {
    for (size_t pos = 0; pos < text.size();) {
      const auto& bucket = added_by_first_byte_[static_cast<uint8_t>(text[pos])];
      int32_t hit = -1;
      for (int32_t id : bucket) {
        const std::string& t = data_.tokens[static_cast<size_t>(id)];
        if (text.compare(pos, t.size(), t) == 0) {
          hit = id;
          break;
        }
      }
      if (hit < 0) {
        ++pos;
        continue;
      }
      if (pos > stretch) encode_plain(text.substr(stretch, pos - stretch), after_special, out);
      out.push_back(hit);
      after_special = true;
      pos += data_.tokens[static_cast<size_t>(hit)].size();
      stretch = pos;
    }
  }
  if (stretch < text.size()) encode_plain(text.substr(stretch), after_special, out);
  return out;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size())
      throw InputError(data_.source, "token id " + std::to_string(id) + " is outside the vocabulary of " +
                                         std::to_string(vocab_size()));
    decode_token(id, out);
  }
  return out;
}

std::unique_ptr<Tokenizer> Tokenizer::create(TokenizerData data) {
  if (data.model == "gpt2") return std::make_unique<ByteLevelBpe>(std::move(data));
  if (data.model == "llama") return std::make_unique<SentencePieceBpe>(std::move(data));
  throw InputError(data.source, "tokenizer model '" + data.model +
                                    "' is not supported (supported: gpt2 byte-level BPE, llama SentencePiece BPE)");
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& model_path) {
  std::error_code ec;
  fs::path p(model_path);
  if (!fs::exists(p, ec)) throw InputError(model_path, "no such file or directory");
  fs::path json_path;
  if (fs::is_directory(p, ec)) {
    json_path = p / "tokenizer.json";
    if (!fs::exists(json_path, ec))
      throw InputError(model_path, "no tokenizer.json in this model directory (SentencePiece tokenizer.model "
                                   "files are read from GGUF only)");
  } else if (p.extension() == ".json") {
    json_path = p;
  }
  if (!json_path.empty()) {
    return Tokenizer::create(tokenizer_data_from_hf_json(read_whole_file(json_path.string()), json_path.string()));
  }
  GgufFile gguf(model_path);
  return Tokenizer::create(tokenizer_data_from_gguf(gguf));
}

}  // namespace hc

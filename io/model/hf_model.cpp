#include "io/model/hf_model.h"

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "io/model/fused_tensors.h"
#include "io/model/hf_config.h"
#include "io/util/mapped_file.h"
#include "io/model/model_check.h"
#include "io/util/sha256.h"

namespace fs = std::filesystem;

namespace hc {

namespace {

constexpr const char* kConfigName = "config.json";
constexpr const char* kSingleName = "model.safetensors";
constexpr const char* kIndexName = "model.safetensors.index.json";
// config.json and the index are a few KB (the index of a 405B model is ~100 KB); a bigger file
// is not a config, and reading it whole would only waste memory.
constexpr std::uintmax_t kMaxJsonBytes = 64ull << 20;

std::string read_small_file(const fs::path& p) {
  std::error_code ec;
  const std::uintmax_t size = fs::file_size(p, ec);
  if (ec) throw InputError(p.string(), "cannot read: " + ec.message());
  if (size > kMaxJsonBytes)
    throw InputError(p.string(), "is " + std::to_string(size) + " bytes, too large for a JSON config");
  return read_whole_file(p.string());
}

std::string directory_name(const std::string& dir) {
  std::error_code ec;
  fs::path p = fs::absolute(fs::path(dir), ec).lexically_normal();  // "x/./" and "." resolve to a real name
  if (p.filename().empty()) p = p.parent_path();                     // "model/" has an empty filename
  return p.filename().string();
}

// A weight_map value must name a file in the model directory itself.
bool is_plain_file_name(const std::string& s) {
  return !s.empty() && s != "." && s != ".." && s.find('/') == std::string::npos && s.find('\\') == std::string::npos;
}

}  // namespace

HfModel::HfModel(const std::string& dir) : dir_(dir) {
  const fs::path root(dir);
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw InputError(dir, "not a directory");

  const fs::path config_path = root / kConfigName;
  config_path_ = config_path.string();
  if (!fs::exists(config_path, ec))
    throw InputError(dir, "no config.json: a Hugging Face model directory needs config.json next to its "
                          ".safetensors files");
  config_text_ = read_small_file(config_path);
  config_ = parse_hf_config(config_text_, config_path_, directory_name(dir));

  // Each shard mapped once; tensors_ points into the mappings.
  auto open_shard = [&](const std::string& file_name) -> size_t {
    for (size_t i = 0; i < shards_.size(); ++i)
      if (fs::path(shards_[i]->path()).filename() == file_name) return i;
    shards_.push_back(std::make_unique<SafetensorsFile>((root / file_name).string()));
    return shards_.size() - 1;
  };
  auto add_tensor = [&](const std::string& name, size_t shard) {
    auto it = shards_[shard]->tensors().find(name);
    HC_ASSERT(it != shards_[shard]->tensors().end(), name);
    tensors_[name] = it->second;
    shard_index_[name] = shard;
  };

  const fs::path index_path = root / kIndexName;
  const fs::path single_path = root / kSingleName;
  if (fs::exists(index_path, ec)) {
    const std::string index_file = index_path.string();
    nlohmann::json index;
    try {
      index = nlohmann::json::parse(read_small_file(index_path));
    } catch (const nlohmann::json::exception&) {
      throw InputError(index_file, "malformed JSON");
    }
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      throw InputError(index_file, "no \"weight_map\" object");
    // Sorted shard names, so the fingerprint does not depend on JSON key order.
    std::set<std::string> shard_names;
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      if (!it.value().is_string() || !is_plain_file_name(it.value().get<std::string>()))
        throw InputError(index_file, "weight_map entry for tensor " + it.key() +
                                         " must be the file name of a shard in the same directory");
      shard_names.insert(it.value().get<std::string>());
    }
    if (shard_names.empty()) throw InputError(index_file, "weight_map is empty");
    for (const std::string& shard : shard_names) {
      const fs::path shard_path = root / shard;
      if (!fs::exists(shard_path, ec))
        throw InputError(shard_path.string(), "missing shard (listed in " + std::string(kIndexName) + ")");
      open_shard(shard);
    }
    for (auto it = index["weight_map"].begin(); it != index["weight_map"].end(); ++it) {
      const size_t shard = open_shard(it.value().get<std::string>());
      if (!shards_[shard]->tensors().count(it.key()))
        throw InputError(shards_[shard]->path(),
                         "tensor " + it.key() + " is listed in " + std::string(kIndexName) + " but not in this shard");
      add_tensor(it.key(), shard);
    }
  } else if (fs::exists(single_path, ec)) {
    const size_t shard = open_shard(kSingleName);
    for (const auto& [name, info] : shards_[shard]->tensors()) add_tensor(name, shard);
  } else {
    // No index: accept the .safetensors files present, as long as no tensor name repeats.
    std::set<std::string> found;
    for (const auto& entry : fs::directory_iterator(root, ec))
      if (entry.path().extension() == ".safetensors") found.insert(entry.path().filename().string());
    if (found.empty())
      throw InputError(dir, "no model.safetensors or model.safetensors.index.json (and no other .safetensors file)");
    for (const std::string& file : found) {
      const size_t shard = open_shard(file);
      for (const auto& [name, info] : shards_[shard]->tensors()) {
        if (tensors_.count(name))
          throw InputError(shards_[shard]->path(), "tensor " + name + " is also in " +
                                                       shards_[shard_index_[name]]->path() +
                                                       " (several shards and no index to choose)");
        add_tensor(name, shard);
      }
    }
  }

  for (const FusedPart& p : split_fused_tensors(tensors_, config_, dir_)) shard_index_[p.part] = shard_index_.at(p.fused);
  check_model_tensors(*this);
}

const std::string& HfModel::shard_of(const std::string& name) const {
  auto it = shard_index_.find(name);
  if (it == shard_index_.end()) throw InputError(dir_, "missing tensor " + name);
  return shards_[it->second]->path();
}

std::vector<float> HfModel::load_f32(const std::string& name, const std::vector<int64_t>& expected) const {
  const TensorInfo& info = tensor(name);
  if (!expected.empty() && info.shape != expected)
    throw InputError(shard_of(name), "tensor " + name + " has shape " + shape_string(info.shape) + ", expected " +
                                         shape_string(expected));
  std::vector<float> out(static_cast<size_t>(info.numel()));  // canonical shape, row-major
  convert_to_f32(info.dtype, info.data, info.numel(), out.data());
  return out;
}

std::string HfModel::fingerprint() const {
  // config.json + every shard's length prefix and JSON header: names, dtypes, shapes, offsets.
  // Hashing the weights themselves would read gigabytes for an identity check.
  Sha256 hash;
  hash.update(config_text_);
  for (const auto& shard : shards_) hash.update(shard->header_data(), shard->header_bytes());
  return hash.hex_digest();
}

std::vector<std::pair<std::string, std::string>> HfModel::metadata_summary() const {
  std::vector<std::pair<std::string, std::string>> out;
  std::string shard_list;
  for (const auto& shard : shards_)
    shard_list += (shard_list.empty() ? "" : ", ") + fs::path(shard->path()).filename().string();
  out.emplace_back("safetensors.shards", std::to_string(shards_.size()) + " (" + shard_list + ")");
  out.emplace_back("safetensors.tensors", std::to_string(tensors_.size()));
  std::map<std::string, size_t> dtype_counts;
  for (const auto& [name, info] : tensors_) ++dtype_counts[dtype_name(info.dtype)];
  std::string dtypes;
  for (const auto& [dtype, count] : dtype_counts)
    dtypes += (dtypes.empty() ? "" : ", ") + dtype + " x" + std::to_string(count);
  out.emplace_back("safetensors.dtypes", dtypes);
  for (auto& [key, value] : hf_config_fields(config_text_, config_path_)) out.emplace_back("config." + key, value);
  return out;
}

}  // namespace hc

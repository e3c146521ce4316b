#pragma once
// A Hugging Face model directory: config.json plus model.safetensors, or
// model.safetensors.index.json whose weight_map spreads the tensors over several shards.
// Tensor names in the files are already the canonical names; fused projections (Phi-3's qkv_proj,
// gate_up_proj) are split into them at open (fused_tensors.h).
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "io/model/model_file.h"
#include "io/model/safetensors.h"

namespace hc {

class HfModel : public ModelFile {
 public:
  // Reads config.json, maps every shard, and checks that every tensor the graph needs is present
  // with the shape the config implies. Throws InputError naming the file (and tensor) on any problem.
  explicit HfModel(const std::string& dir);

  const std::string& path() const override { return dir_; }
  std::string format() const override { return "safetensors"; }
  const ModelConfig& config() const override { return config_; }
  const std::map<std::string, TensorInfo>& tensors() const override { return tensors_; }
  std::vector<std::pair<std::string, std::string>> metadata_summary() const override;
  std::vector<float> load_f32(const std::string& name, const std::vector<int64_t>& expected = {}) const override;
  std::string fingerprint() const override;

  // The shard file that holds `name` (throws InputError when the tensor is absent).
  const std::string& shard_of(const std::string& name) const;
  size_t shard_count() const { return shards_.size(); }

 private:
  std::string dir_;
  std::string config_path_;
  std::string config_text_;  // raw config.json bytes: fingerprinted and shown by inspect
  ModelConfig config_;
  std::vector<std::unique_ptr<SafetensorsFile>> shards_;  // sorted by file name
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, size_t> shard_index_;  // tensor name -> index into shards_
};

}  // namespace hc

// GLM's fused gate_up_proj read as gate_proj and up_proj (io/model/fused_tensors.h): gate rows
// first, views of the stored rows, and a fused tensor that disagrees with the config named.
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <string>
#include <vector>

#include "catch.h"
#include "common/error.h"
#include "hf_test_helpers.h"
#include "io/model/fused_tensors.h"
#include "io/model/hf_model.h"
#include "io/model/model_file.h"
#include "support/test_support.h"

namespace fs = std::filesystem;

namespace {

using hc::test::contains;
using hc::test::input_error_of;

}  // namespace

TEST_CASE("glm: gate_up_proj of an odd width splits gate first", "[io][fused]") {
  hc::ModelConfig c;
  c.arch = "glm";
  c.n_layers = 1;
  c.n_heads = 2;
  c.n_kv_heads = 1;
  c.head_dim = 2;
  c.hidden = 3;
  c.intermediate = 5;
  std::vector<uint16_t> stored(10 * 3);  // [2 x 5, 3] bf16
  hc::TensorInfo t;
  t.name = t.file_name = hc::tensor_names::gate_up_proj(0);
  t.dtype = hc::DType::BF16;
  t.shape = {10, 3};
  t.data = reinterpret_cast<const uint8_t*>(stored.data());
  t.nbytes = stored.size() * 2;
  std::map<std::string, hc::TensorInfo> tensors{{t.name, t}};
  const auto parts = hc::split_fused_tensors(tensors, c, "dir");
  REQUIRE(parts.size() == 2);
  CHECK(tensors.count(hc::tensor_names::gate_up_proj(0)) == 0);
  const hc::TensorInfo& gate = tensors.at(hc::tensor_names::gate_proj(0));
  const hc::TensorInfo& up = tensors.at(hc::tensor_names::up_proj(0));
  CHECK(gate.shape == std::vector<int64_t>{5, 3});
  CHECK(up.shape == std::vector<int64_t>{5, 3});
  CHECK(gate.data == t.data);
  CHECK(up.data == t.data + 5 * 3 * 2);
  CHECK(gate.nbytes == 30);
  CHECK(up.nbytes == 30);
}

TEST_CASE("a GLM directory whose gate_up_proj disagrees with intermediate_size", "[io][fused][hf]") {
  const std::string dir = hc::test::make_temp_dir("glm_fused") + "/good_hf_tiny_glm";
  fs::copy(hc::test::data_path("good_hf_tiny_glm"), dir, fs::copy_options::recursive);
  REQUIRE_NOTHROW(hc::HfModel(dir));
  std::ifstream in(dir + "/config.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  const auto at = text.find("\"intermediate_size\": 96");
  REQUIRE(at != std::string::npos);
  text.replace(at, 23, "\"intermediate_size\": 95");
  std::ofstream(dir + "/config.json") << text;
  const std::string msg = input_error_of([&] { hc::HfModel m(dir); });
  CHECK(contains(msg, dir));
  CHECK(contains(msg, "model.layers.0.mlp.gate_up_proj.weight"));
  CHECK(contains(msg, "has shape [192, 64], expected [190, 64]"));
}

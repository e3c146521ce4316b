// GLM's fused gate_up_proj read as gate_proj and up_proj, and chatglm GGUF's fused q/k/v bias
// as q/k/v biases (io/model/fused_tensors.h): gate rows (q values) first, views of the stored
// rows, and a fused tensor that disagrees with the config named.
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

TEST_CASE("chatglm: the fused qkv bias of odd sizes splits q, k, v; misfits and quantised biases named",
          "[io][fused]") {
  namespace tn = hc::tensor_names;
  hc::ModelConfig c;
  c.arch = "glm";
  c.n_layers = 1;
  c.n_heads = 3;  // q 3 x 3 values, k and v 1 x 3 each
  c.n_kv_heads = 1;
  c.head_dim = 3;
  c.hidden = 5;
  c.intermediate = 7;
  std::vector<float> stored(15);  // [9 + 3 + 3] f32
  for (size_t i = 0; i < stored.size(); ++i) stored[i] = float(i);
  hc::TensorInfo t;
  t.name = tn::qkv_bias(0);
  t.file_name = "blk.0.attn_qkv.bias";
  t.dtype = hc::DType::F32;
  t.shape = {15};
  t.data = reinterpret_cast<const uint8_t*>(stored.data());
  t.nbytes = stored.size() * 4;
  std::map<std::string, hc::TensorInfo> tensors{{t.name, t}};
  const auto parts = hc::split_fused_tensors(tensors, c, "m.gguf");
  REQUIRE(parts.size() == 3);
  CHECK(parts[1].part == tn::k_bias(0));
  CHECK(parts[1].fused == tn::qkv_bias(0));
  CHECK(tensors.count(tn::qkv_bias(0)) == 0);
  const hc::TensorInfo& q = tensors.at(tn::q_bias(0));
  const hc::TensorInfo& k = tensors.at(tn::k_bias(0));
  const hc::TensorInfo& v = tensors.at(tn::v_bias(0));
  CHECK(q.shape == std::vector<int64_t>{9});
  CHECK(k.shape == std::vector<int64_t>{3});
  CHECK(v.shape == std::vector<int64_t>{3});
  CHECK(q.data == t.data);
  CHECK(k.data == t.data + 9 * 4);
  CHECK(v.data == t.data + 12 * 4);
  CHECK(k.nbytes == 12);
  CHECK(v.file_name == "blk.0.attn_qkv.bias rows 12-14");
  CHECK(reinterpret_cast<const float*>(v.data)[0] == 12.0f);

  // One value short of the config's 15; a block-quantised bias, which cannot be cut between values.
  std::map<std::string, hc::TensorInfo> short_bias{{t.name, t}};
  short_bias.at(t.name).shape = {14};
  std::string msg = input_error_of([&] { hc::split_fused_tensors(short_bias, c, "m.gguf"); });
  CHECK(contains(msg, "m.gguf: tensor model.layers.0.self_attn.qkv_proj.bias ('blk.0.attn_qkv.bias') has shape [14], "
                      "expected [15]"));
  std::map<std::string, hc::TensorInfo> quantised{{t.name, t}};
  quantised.at(t.name).dtype = hc::DType::Q8_0;
  msg = input_error_of([&] { hc::split_fused_tensors(quantised, c, "m.gguf"); });
  CHECK(contains(msg, "m.gguf: tensor model.layers.0.self_attn.qkv_proj.bias ('blk.0.attn_qkv.bias') is Q8_0"));
  CHECK(contains(msg, "a fused bias must be F32, F16 or BF16"));
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

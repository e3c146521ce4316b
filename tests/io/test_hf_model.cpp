// Hugging Face model directories: the good fixtures load with exact values, every bad one is an
// InputError naming the file and the defect, and open_model picks the right reader.
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "catch.h"
#include "common/error.h"
#include "hf_test_helpers.h"
#include "io/model/fused_tensors.h"
#include "io/model/hf_model.h"
#include "io/model/model_check.h"
#include "io/model/model_file.h"

namespace fs = std::filesystem;

namespace {

using hc::test::contains;
using hc::test::input_error_of;

// The fixture formula of scripts/make_hf_fixtures.py, recomputed independently.
float fixture_f32(const std::string& name, int64_t i) {
  int byte_sum = 0;
  for (unsigned char ch : name) byte_sum += ch;
  const double phase = (byte_sum % 101) * 0.1;
  return static_cast<float>(std::sin(0.37 * static_cast<double>(i) + phase));
}

// Round a float to a grid with `mantissa_bits` explicit bits and minimum normal exponent `min_exp`,
// to nearest even (nearbyint in the default rounding mode): the value the 16-bit type stores.
double round_to_format(float x, int mantissa_bits, int min_exp) {
  if (x == 0.0f) return x;
  int e;
  std::frexp(x, &e);  // |x| = m * 2^e, m in [0.5, 1): leading bit has weight 2^(e-1)
  const int lead = std::max(e - 1, min_exp);
  const double quantum = std::ldexp(1.0, lead - mantissa_bits);
  return std::nearbyint(static_cast<double>(x) / quantum) * quantum;
}
double fixture_bf16(const std::string& name, int64_t i) { return round_to_format(fixture_f32(name, i), 7, -126); }
double fixture_f16(const std::string& name, int64_t i) { return round_to_format(fixture_f32(name, i), 10, -14); }

// Number of elements whose loaded value differs from the fixture formula.
int64_t mismatches(const hc::ModelFile& m, const std::string& name, const std::function<double(int64_t)>& expect) {
  const auto& info = m.tensor(name);
  std::vector<float> v = m.load_f32(name, info.shape);
  REQUIRE(static_cast<int64_t>(v.size()) == info.numel());
  int64_t bad = 0;
  for (int64_t i = 0; i < info.numel(); ++i)
    if (static_cast<double>(v[static_cast<size_t>(i)]) != expect(i)) ++bad;
  return bad;
}

std::string copy_fixture(const std::string& name, const std::string& tag) {
  std::string dir = hc::test::make_temp_dir(tag) + "/" + name;
  fs::copy(hc::test::data_path(name), dir, fs::copy_options::recursive);
  return dir;
}

}  // namespace

TEST_CASE("good_hf_tiny_llama: bf16 single file, GQA 4:2", "[io][hf]") {
  const std::string dir = hc::test::data_path("good_hf_tiny_llama");
  std::unique_ptr<hc::ModelFile> m = hc::open_model(dir);
  REQUIRE(m->format() == "safetensors");
  CHECK(m->path() == dir);
  const hc::ModelConfig& c = m->config();
  CHECK(c.arch == "llama");
  CHECK(c.name == "headcal/tiny-llama");
  CHECK(c.n_layers == 2);
  CHECK(c.hidden == 32);
  CHECK(c.n_heads == 4);
  CHECK(c.n_kv_heads == 2);
  CHECK(c.head_dim == 8);
  CHECK(c.intermediate == 24);
  CHECK(c.vocab == 64);
  CHECK(c.rms_eps == 1e-5);
  CHECK_FALSE(c.tie_embeddings);
  CHECK_FALSE(c.qkv_bias);
  CHECK(c.bos_id == 1);
  CHECK(c.eos_id == 2);
  CHECK(m->tensors().size() == 2 * 9 + 3);
  for (const auto& [name, info] : m->tensors()) CHECK(info.dtype == hc::DType::BF16);

  namespace tn = hc::tensor_names;
  CHECK(m->tensor(tn::k_proj(1)).shape == std::vector<int64_t>{16, 32});
  CHECK(m->tensor(tn::down_proj(0)).shape == std::vector<int64_t>{32, 24});
  CHECK(m->tensor(tn::lm_head()).shape == std::vector<int64_t>{64, 32});

  // Every value of every tensor, bit for bit (bf16 round-to-nearest-even of the float32 formula).
  int64_t bad = 0;
  for (const auto& [name, info] : m->tensors())
    bad += mismatches(*m, name, [&, n = name](int64_t i) { return fixture_bf16(n, i); });
  CHECK(bad == 0);
  // A value that bf16 must round (not truncate): spot-check one element against a hand computation.
  std::vector<float> q = m->load_f32(tn::q_proj(0));
  CHECK(q[5] == static_cast<float>(fixture_bf16(tn::q_proj(0), 5)));
  CHECK(q[5] != fixture_f32(tn::q_proj(0), 5));

  CHECK_NOTHROW(hc::check_model_tensors(*m));
}

TEST_CASE("good_hf_tiny_qwen2: f16, two shards with an index, biases, tied embeddings", "[io][hf]") {
  const std::string dir = hc::test::data_path("good_hf_tiny_qwen2");
  hc::HfModel m(dir);
  const hc::ModelConfig& c = m.config();
  CHECK(c.arch == "qwen2");
  CHECK(c.name == "good_hf_tiny_qwen2");  // no _name_or_path: the directory's name
  CHECK(c.n_heads == 3);
  CHECK(c.n_kv_heads == 1);
  CHECK(c.head_dim == 8);
  CHECK(c.qkv_bias);
  CHECK(c.tie_embeddings);
  CHECK(c.rope_theta == 1000000.0);
  CHECK(c.eos_id == 47);  // first of the list
  CHECK(m.shard_count() == 2);
  CHECK_FALSE(m.has(hc::tensor_names::lm_head()));
  CHECK(m.has(hc::tensor_names::k_bias(1)));
  CHECK(m.tensor(hc::tensor_names::k_bias(1)).shape == std::vector<int64_t>{8});
  CHECK(contains(m.shard_of(hc::tensor_names::q_proj(0)), "model-00001-of-00002.safetensors"));
  CHECK(contains(m.shard_of(hc::tensor_names::q_proj(1)), "model-00002-of-00002.safetensors"));
  CHECK(contains(m.shard_of(hc::tensor_names::final_norm()), "model-00002-of-00002.safetensors"));

  int64_t bad = 0;
  for (const auto& [name, info] : m.tensors()) {
    CHECK(info.dtype == hc::DType::F16);
    bad += mismatches(m, name, [&, n = name](int64_t i) { return fixture_f16(n, i); });
  }
  CHECK(bad == 0);

  // Absent lm_head is a missing tensor for load_f32 (callers use the embedding when tied).
  std::string msg = input_error_of([&] { m.load_f32(hc::tensor_names::lm_head()); });
  CHECK(contains(msg, dir));
  CHECK(contains(msg, "missing tensor lm_head.weight"));
}

TEST_CASE("good_hf_tiny_llama3: f32, llama3 rope scaling, explicit head_dim", "[io][hf]") {
  std::unique_ptr<hc::ModelFile> m = hc::open_model(hc::test::data_path("good_hf_tiny_llama3"));
  const hc::ModelConfig& c = m->config();
  CHECK(c.head_dim == 16);
  CHECK(c.hidden == 16);
  CHECK(c.n_layers == 1);
  CHECK(c.rope_theta == 500000.0);
  CHECK(c.rope_scaling.type == hc::RopeScalingType::Llama3);
  CHECK(c.rope_scaling.factor == 8.0);
  CHECK(c.rope_scaling.low_freq_factor == 1.0);
  CHECK(c.rope_scaling.high_freq_factor == 4.0);
  CHECK(c.rope_scaling.original_max_position == 256);
  CHECK(c.eos_id == 1);
  CHECK(m->tensor(hc::tensor_names::q_proj(0)).shape == std::vector<int64_t>{32, 16});
  CHECK(m->tensor(hc::tensor_names::o_proj(0)).shape == std::vector<int64_t>{16, 32});
  int64_t bad = 0;
  for (const auto& [name, info] : m->tensors()) {
    CHECK(info.dtype == hc::DType::F32);
    bad += mismatches(*m, name, [&, n = name](int64_t i) { return static_cast<double>(fixture_f32(n, i)); });
  }
  CHECK(bad == 0);
}

TEST_CASE("load_f32 checks the expected shape and names both shapes", "[io][hf]") {
  hc::HfModel m(hc::test::data_path("good_hf_tiny_llama"));
  const std::string name = hc::tensor_names::v_proj(0);
  CHECK(m.load_f32(name, {16, 32}).size() == 512);
  std::string msg = input_error_of([&] { m.load_f32(name, {32, 16}); });
  CHECK(contains(msg, "model.safetensors"));
  CHECK(contains(msg, name));
  CHECK(contains(msg, "[16, 32]"));
  CHECK(contains(msg, "[32, 16]"));
  CHECK(contains(input_error_of([&] { m.load_f32("model.layers.7.mlp.up_proj.weight"); }),
                 "missing tensor model.layers.7.mlp.up_proj.weight"));
}

TEST_CASE("fingerprint: stable, and changes with config.json or a header", "[io][hf]") {
  const std::string fixture = hc::test::data_path("good_hf_tiny_llama");
  const std::string fp = hc::HfModel(fixture).fingerprint();
  CHECK(fp.size() == 64);
  CHECK(fp.find_first_not_of("0123456789abcdef") == std::string::npos);
  CHECK(hc::HfModel(fixture).fingerprint() == fp);
  CHECK(hc::HfModel(hc::test::data_path("good_hf_tiny_qwen2")).fingerprint() != fp);

  const std::string copy = copy_fixture("good_hf_tiny_llama", "hf_fp");
  CHECK(hc::HfModel(copy).fingerprint() == fp);  // same bytes, other place
  std::ofstream(copy + "/config.json", std::ios::app) << "\n";
  CHECK(hc::HfModel(copy).fingerprint() != fp);
}

TEST_CASE("metadata_summary shows shards, dtypes and config.json fields", "[io][hf]") {
  hc::HfModel m(hc::test::data_path("good_hf_tiny_qwen2"));
  std::map<std::string, std::string> kv;
  for (auto& [k, v] : m.metadata_summary()) kv[k] = v;
  CHECK(kv["config.model_type"] == "qwen2");
  CHECK(kv["config.num_hidden_layers"] == "2");
  CHECK(kv["config.eos_token_id"] == "[47,45]");
  CHECK(contains(kv["safetensors.shards"], "2 ("));
  CHECK(kv["safetensors.dtypes"] == "F16 x" + std::to_string(m.tensors().size()));
}

TEST_CASE("bad HF fixtures: InputError naming the file and the defect", "[io][hf]") {
  struct Case {
    const char* fixture;
    std::string file;  // the file the message must name (relative to the fixture)
    std::vector<std::string> parts;
  };
  const std::string q = "model.layers.0.self_attn.q_proj.weight";
  const std::vector<Case> cases = {
      {"bad_hf_no_config", "", {"no config.json"}},
      {"bad_hf_header_len", "model.safetensors", {"header length", "exceeds"}},
      {"bad_hf_json", "model.safetensors", {"header JSON is malformed"}},
      {"bad_hf_offsets", "model.safetensors", {"tensor " + q, "hold 126 bytes but BF16 [8, 8] needs 128"}},
      {"bad_hf_dtype", "model.safetensors", {"tensor model.norm.weight", "dtype F64 is not supported"}},
      {"bad_hf_missing_shard", "model-00002-of-00002.safetensors", {"missing shard"}},
      {"bad_hf_model_type", "config.json", {"model_type 'gpt_neox' is not supported"}},
      {"bad_hf_missing_tensor", "", {"missing tensor model.layers.0.mlp.up_proj.weight", "[12, 8]"}},
      {"bad_hf_shape", "", {"tensor " + q + " has shape [6, 8], expected [8, 8]"}},
      {"bad_hf_truncated", "model.safetensors", {"beyond the", "truncated"}},
  };
  for (const Case& c : cases) {
    INFO(c.fixture);
    const std::string dir = hc::test::data_path(c.fixture);
    std::string msg = input_error_of([&] { hc::open_model(dir); });
    INFO(msg);
    CHECK(contains(msg, dir + (c.file.empty() ? "" : "/" + c.file)));
    for (const std::string& part : c.parts) CHECK(contains(msg, part));
    CHECK(msg.find('\n') == std::string::npos);
  }
}

TEST_CASE("directory layouts: trailing slash, no index with several files, duplicate tensors", "[io][hf]") {
  // A trailing slash still yields the directory's name.
  const std::string qwen = copy_fixture("good_hf_tiny_qwen2", "hf_layout");
  CHECK(hc::HfModel(qwen + "/").config().name == "good_hf_tiny_qwen2");

  // Without the index, the shards present are merged.
  fs::remove(qwen + "/model.safetensors.index.json");
  hc::HfModel merged(qwen);
  CHECK(merged.shard_count() == 2);
  CHECK(merged.tensors().size() == hc::HfModel(hc::test::data_path("good_hf_tiny_qwen2")).tensors().size());

  // The same tensor in two files with no index to choose: refused.
  fs::copy_file(qwen + "/model-00001-of-00002.safetensors", qwen + "/extra.safetensors");
  std::string msg = input_error_of([&] { hc::HfModel m(qwen); });
  CHECK(contains(msg, "model.embed_tokens.weight"));
  CHECK(contains(msg, "is also in"));

  // An index whose weight_map points outside the directory.
  const std::string escape = copy_fixture("good_hf_tiny_qwen2", "hf_escape");
  std::ofstream(escape + "/model.safetensors.index.json")
      << R"({"weight_map":{"model.embed_tokens.weight":"../good_hf_tiny_llama/model.safetensors"}})";
  msg = input_error_of([&] { hc::HfModel m(escape); });
  CHECK(contains(msg, "model.safetensors.index.json"));
  CHECK(contains(msg, "same directory"));

  // An index listing a tensor its shard does not have.
  const std::string lying = copy_fixture("good_hf_tiny_qwen2", "hf_lying");
  std::ofstream(lying + "/model.safetensors.index.json")
      << R"({"weight_map":{"model.norm.weight":"model-00001-of-00002.safetensors"}})";
  msg = input_error_of([&] { hc::HfModel m(lying); });
  CHECK(contains(msg, lying + "/model-00001-of-00002.safetensors"));
  CHECK(contains(msg, "model.norm.weight is listed in model.safetensors.index.json but not in this shard"));

  // No weights at all.
  const std::string empty = hc::test::make_temp_dir("hf_empty");
  fs::copy_file(hc::test::data_path("good_hf_tiny_llama/config.json"), empty + "/config.json");
  CHECK(contains(input_error_of([&] { hc::HfModel m(empty); }), "no model.safetensors"));
}

TEST_CASE("open_model dispatch: directory, lone .safetensors, GGUF magic, anything else", "[io][hf]") {
  const std::string lone = hc::test::data_path("good_hf_tiny_llama/model.safetensors");
  std::string msg = input_error_of([&] { hc::open_model(lone); });
  CHECK(contains(msg, lone));
  CHECK(contains(msg, "pass the directory"));
  CHECK(contains(msg, "config.json"));

  msg = input_error_of([&] { hc::open_model(hc::test::data_path("good_hf_tiny_llama/config.json")); });
  CHECK(contains(msg, "pass the directory"));

  const std::string dir = hc::test::make_temp_dir("hf_dispatch");
  const std::string text = dir + "/notes.txt";
  std::ofstream(text) << "hello, not a model";
  msg = input_error_of([&] { hc::open_model(text); });
  CHECK(contains(msg, text));
  CHECK(contains(msg, "GGUF"));
  CHECK(contains(msg, "config.json"));

  const std::string tiny = dir + "/two_bytes.bin";
  std::ofstream(tiny) << "GG";
  CHECK(contains(input_error_of([&] { hc::open_model(tiny); }), "not a recognised model"));

  CHECK(contains(input_error_of([&] { hc::open_model(dir + "/absent"); }), dir + "/absent"));

  // A file starting with the GGUF magic goes to the GGUF reader, which must refuse the truncation.
  const std::string gguf = dir + "/broken.gguf";
  std::ofstream(gguf, std::ios::binary) << "GGUF\x03";
  msg = input_error_of([&] { hc::open_model(gguf); });
  CHECK(contains(msg, gguf));
  CHECK_FALSE(contains(msg, "not a recognised model"));
}

TEST_CASE("split_fused_tensors: row views of qkv_proj and gate_up_proj, shapes and duplicates checked",
          "[io][hf][phi3]") {
  namespace tn = hc::tensor_names;
  hc::ModelConfig c;
  c.n_heads = 3;  // odd sizes: q 3 x 2 rows, k and v 1 x 2 rows
  c.n_kv_heads = 1;
  c.head_dim = 2;
  c.hidden = 32;
  c.intermediate = 5;
  // Q8_0 rows of 32 values are one 34-byte block each: views must move by whole rows of bytes.
  std::vector<uint8_t> qkv(10 * 34), gate_up(10 * 34);
  auto fused = [](const std::string& name, std::vector<uint8_t>& bytes) {
    hc::TensorInfo t;
    t.name = name;
    t.file_name = "blk.0.fused";
    t.dtype = hc::DType::Q8_0;
    t.shape = {10, 32};
    t.data = bytes.data();
    t.nbytes = bytes.size();
    return t;
  };
  std::map<std::string, hc::TensorInfo> tensors;
  tensors[tn::qkv_proj(0)] = fused(tn::qkv_proj(0), qkv);
  tensors[tn::gate_up_proj(0)] = fused(tn::gate_up_proj(0), gate_up);
  tensors["model.layers.00.self_attn.qkv_proj.weight"] = fused("padded", qkv);  // not canonical: left alone

  const std::vector<hc::FusedPart> parts = hc::split_fused_tensors(tensors, c, "m.gguf");
  CHECK(parts.size() == 5);
  CHECK_FALSE(tensors.count(tn::qkv_proj(0)));
  CHECK_FALSE(tensors.count(tn::gate_up_proj(0)));
  CHECK(tensors.count("model.layers.00.self_attn.qkv_proj.weight"));
  const hc::TensorInfo& q = tensors.at(tn::q_proj(0));
  const hc::TensorInfo& k = tensors.at(tn::k_proj(0));
  const hc::TensorInfo& v = tensors.at(tn::v_proj(0));
  CHECK(q.shape == std::vector<int64_t>{6, 32});
  CHECK(k.shape == std::vector<int64_t>{2, 32});
  CHECK(q.data == qkv.data());
  CHECK(k.data == qkv.data() + 6 * 34);
  CHECK(v.data == qkv.data() + 8 * 34);
  CHECK(v.nbytes == 2 * 34);
  CHECK(v.dtype == hc::DType::Q8_0);
  CHECK(v.file_name == "blk.0.fused rows 8-9");
  CHECK(tensors.at(tn::up_proj(0)).data == gate_up.data() + 5 * 34);
  CHECK(tensors.at(tn::up_proj(0)).shape == std::vector<int64_t>{5, 32});

  // A fused tensor that does not fit the config, and a part stored twice.
  std::map<std::string, hc::TensorInfo> misfit{{tn::gate_up_proj(3), fused(tn::gate_up_proj(3), gate_up)}};
  c.intermediate = 4;
  std::string msg = input_error_of([&] { hc::split_fused_tensors(misfit, c, "m.gguf"); });
  CHECK(contains(msg, "m.gguf: tensor model.layers.3.mlp.gate_up_proj.weight"));
  CHECK(contains(msg, "has shape [10, 32], expected [8, 32]"));
  c.intermediate = 5;
  std::map<std::string, hc::TensorInfo> twice{{tn::qkv_proj(0), fused(tn::qkv_proj(0), qkv)},
                                              {tn::k_proj(0), fused(tn::k_proj(0), qkv)}};
  msg = input_error_of([&] { hc::split_fused_tensors(twice, c, "m.gguf"); });
  CHECK(contains(msg, "tensor model.layers.0.self_attn.k_proj.weight is stored both on its own and inside"));
}

TEST_CASE("phi3 directory: a fused tensor that does not fit config.json is named", "[io][hf][phi3]") {
  const std::string dir = copy_fixture("good_hf_tiny_phi3", "hf_phi3");
  std::ifstream in(dir + "/config.json");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::string kv = "\"num_key_value_heads\": 1";
  REQUIRE(text.find(kv) != std::string::npos);
  text.replace(text.find(kv), kv.size(), "\"num_key_value_heads\": 2");
  std::ofstream(dir + "/config.json") << text;
  const std::string msg = input_error_of([&] { hc::open_model(dir); });
  CHECK(contains(msg, dir));
  CHECK(contains(msg, "tensor model.layers.0.self_attn.qkv_proj.weight"));
  CHECK(contains(msg, "has shape [256, 128], expected [384, 128]"));
}

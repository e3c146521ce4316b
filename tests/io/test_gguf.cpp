// GGUF reader: dequantisation against the `gguf` Python package, the tiny synthetic models of
// scripts/make_gguf_fixtures.py (config, names, shapes, RoPE un-permutation, checksums), every
// bad_* fixture plus crafted corruptions, and the real SmolLM2 file when present.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "catch.h"
#include "support/gguf_sums.h"
#include "common/error.h"
#include "io/model/gguf.h"
#include "io/model/model_describe.h"
#include "io/util/sha256.h"

using namespace hc;
namespace tn = hc::tensor_names;

namespace {

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  REQUIRE(f.good());
}

// Copies of a fixture with bytes overwritten in place, written to `dir` for the reader to reject.
struct PatchedCopies {
  std::vector<uint8_t> bytes;  // the fixture
  std::string dir;

  // Offset of the first occurrence of `text` (a metadata key or tensor name).
  size_t at(const std::string& text) const {
    const auto it = std::search(bytes.begin(), bytes.end(), text.begin(), text.end());
    REQUIRE(it != bytes.end());
    return static_cast<size_t>(it - bytes.begin());
  }
  // A scalar metadata value sits after its key and the 4-byte type.
  size_t value_of(const std::string& key) const { return at(key) + key.size() + 4; }
  std::string patched(const std::string& name, size_t offset, const std::vector<uint8_t>& with) const {
    std::vector<uint8_t> b = bytes;
    std::copy(with.begin(), with.end(), b.begin() + static_cast<std::ptrdiff_t>(offset));
    const std::string path = dir + "/" + name;
    write_bytes(path, b);
    return path;
  }
};

template <typename T>
std::vector<uint8_t> le_bytes(T v) {
  std::vector<uint8_t> out(sizeof(T));
  std::memcpy(out.data(), &v, sizeof(T));
  return out;
}

std::vector<uint8_t> text_bytes(const std::string& s) { return std::vector<uint8_t>(s.begin(), s.end()); }

// Little-endian reader over a fixture file's bytes.
struct Reader {
  std::vector<uint8_t> bytes;
  size_t pos = 0;
  template <typename T>
  T get() {
    REQUIRE(pos + sizeof(T) <= bytes.size());
    T v;
    std::memcpy(&v, bytes.data() + pos, sizeof(T));
    pos += sizeof(T);
    return v;
  }
  std::string str() {
    const uint32_t n = get<uint32_t>();
    REQUIRE(pos + n <= bytes.size());
    std::string s(reinterpret_cast<const char*>(bytes.data() + pos), n);
    pos += n;
    return s;
  }
  const uint8_t* take(size_t n) {
    REQUIRE(pos + n <= bytes.size());
    const uint8_t* p = bytes.data() + pos;
    pos += n;
    return p;
  }
};

// Distance in units in the last place between two finite floats of the same sign region.
int64_t ulp_distance(float a, float b) {
  auto key = [](float f) {
    int32_t i;
    std::memcpy(&i, &f, 4);
    return i < 0 ? int64_t(INT32_MIN) - i : int64_t(i);  // monotone over all floats, -0 == +0
  };
  return std::llabs(key(a) - key(b));
}

DType dtype_of_ggml_id(uint32_t id) {
  switch (id) {
    case 0: return DType::F32;
    case 1: return DType::F16;
    case 30: return DType::BF16;
    case 8: return DType::Q8_0;
    case 2: return DType::Q4_0;
    case 3: return DType::Q4_1;
    case 12: return DType::Q4_K;
    case 14: return DType::Q6_K;
    case 6: return DType::Q5_0;
    case 7: return DType::Q5_1;
    case 13: return DType::Q5_K;
  }
  FAIL("fixture holds ggml type " << id);
  return DType::F32;
}

// Opens `path` expecting an InputError whose message names the file and contains `needle`.
void expect_input_error(const std::string& path, const std::string& needle) {
  INFO("file " << path << ", expecting '" << needle << "'");
  try {
    GgufFile f(path);
    FAIL("opened without error");
  } catch (const InputError& e) {
    const std::string msg = e.what();
    INFO("message: " << msg);
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find(needle) != std::string::npos);
    CHECK(msg.find('\n') == std::string::npos);
  }
}

// Minimal GGUF writer for corruptions the script's fixtures do not cover.
struct GgufBytes {
  std::vector<uint8_t> b;
  template <typename T>
  GgufBytes& put(T v) {
    const size_t at = b.size();
    b.resize(at + sizeof(T));
    std::memcpy(b.data() + at, &v, sizeof(T));
    return *this;
  }
  GgufBytes& str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
    return *this;
  }
  GgufBytes& header(uint32_t version, uint64_t tensors, uint64_t kvs) {
    b.insert(b.end(), {'G', 'G', 'U', 'F'});
    return put(version).put(tensors).put(kvs);
  }
  GgufBytes& kv_u32(const std::string& key, uint32_t v) { return str(key).put<uint32_t>(4).put(v); }
  GgufBytes& kv_f32(const std::string& key, float v) { return str(key).put<uint32_t>(6).put(v); }
  GgufBytes& kv_str(const std::string& key, const std::string& v) { return str(key).put<uint32_t>(8).str(v); }
};

}  // namespace

TEST_CASE("dequantize matches the gguf package on random blocks", "[io][gguf]") {
  Reader r{read_bytes(hc::test::data_path("good_dequant_blocks.bin"))};
  REQUIRE(std::memcmp(r.take(4), "HCDQ", 4) == 0);
  REQUIRE(r.get<uint32_t>() == 1);
  const uint32_t count = r.get<uint32_t>();
  REQUIRE(count == 11);
  std::map<std::string, int> seen;
  for (uint32_t rec = 0; rec < count; ++rec) {
    const DType t = dtype_of_ggml_id(r.get<uint32_t>());
    const uint32_t n = r.get<uint32_t>(), nbytes = r.get<uint32_t>();
    INFO("dtype " << dtype_name(t) << ", " << n << " elements");
    const uint8_t* raw = r.take(nbytes);
    std::vector<float> expected(n);
    std::memcpy(expected.data(), r.take(size_t(n) * 4), size_t(n) * 4);
    CHECK(dtype_nbytes(t, n) == nbytes);
    std::vector<float> got(n, -12345.f);
    dequantize(t, raw, n, got.data());
    int64_t worst = 0;
    size_t exact = 0;
    for (uint32_t i = 0; i < n; ++i) {
      REQUIRE(std::isfinite(got[i]));
      worst = std::max(worst, ulp_distance(got[i], expected[i]));
      exact += got[i] == expected[i];
    }
    CHECK(worst <= 1);
    // Same operation order as ggml: anything but a rare last-bit difference is a layout bug.
    CHECK(exact >= n - n / 64);
    ++seen[dtype_name(t)];
  }
  CHECK(seen.size() == 11);
  for (const char* t : {"Q5_0", "Q5_1", "Q5_K"}) CHECK(seen.count(t) == 1);
}

TEST_CASE("dtype sizes and block sizes", "[io][gguf]") {
  CHECK(dtype_block_size(DType::Q8_0) == 32);
  CHECK(dtype_block_size(DType::Q4_K) == 256);
  CHECK(dtype_block_size(DType::BF16) == 1);
  CHECK(dtype_nbytes(DType::Q8_0, 64) == 68);
  CHECK(dtype_nbytes(DType::Q4_0, 32) == 18);
  CHECK(dtype_nbytes(DType::Q4_1, 96) == 60);
  CHECK(dtype_nbytes(DType::Q4_K, 512) == 288);
  CHECK(dtype_nbytes(DType::Q6_K, 256) == 210);
  CHECK(dtype_block_size(DType::Q5_0) == 32);
  CHECK(dtype_block_size(DType::Q5_1) == 32);
  CHECK(dtype_block_size(DType::Q5_K) == 256);
  CHECK(dtype_nbytes(DType::Q5_0, 64) == 44);
  CHECK(dtype_nbytes(DType::Q5_1, 32) == 24);
  CHECK(dtype_nbytes(DType::Q5_K, 512) == 352);
  CHECK(dtype_nbytes(DType::F16, 7) == 14);
  CHECK_THROWS_AS(dtype_nbytes(DType::Q4_K, 100), InputError);
  CHECK_THROWS_AS(dtype_nbytes(DType::Q8_0, 33), InputError);
}

TEST_CASE("tiny llama GGUF: config, names, shapes, dtypes", "[io][gguf]") {
  const std::string path = hc::test::data_path("good_tiny_llama.gguf");
  GgufFile f(path);
  const ModelConfig& c = f.config();
  CHECK(f.version() == 3);
  CHECK(f.format() == "gguf");
  CHECK(c.arch == "llama");
  CHECK(c.name == "tiny-llama-test");
  CHECK(c.n_layers == 2);
  CHECK(c.n_heads == 4);
  CHECK(c.n_kv_heads == 2);
  CHECK(c.head_dim == 8);
  CHECK(c.hidden == 32);
  CHECK(c.intermediate == 256);
  CHECK(c.vocab == 64);  // no llama.vocab_size: from the token list
  CHECK(c.max_context == 256);
  CHECK(c.rope_theta == 10000.0);
  CHECK(c.rms_eps == Approx(1e-5).epsilon(1e-6));
  CHECK(c.rope_scaling.type == RopeScalingType::None);
  CHECK(c.tie_embeddings);
  CHECK_FALSE(c.qkv_bias);
  CHECK(c.bos_id == 1);
  CHECK(c.eos_id == 2);

  // 1 embed + 2 x 9 per layer + final norm; no lm_head (tied).
  CHECK(f.tensors().size() == 20);
  CHECK_FALSE(f.has(tn::lm_head()));
  const TensorInfo& embed = f.tensor(tn::embed());
  CHECK(embed.file_name == "token_embd.weight");
  CHECK(embed.dtype == DType::Q8_0);
  CHECK(embed.shape == std::vector<int64_t>{64, 32});
  CHECK(f.tensor(tn::q_proj(0)).dtype == DType::F16);
  CHECK(f.tensor(tn::k_proj(0)).dtype == DType::F32);
  CHECK(f.tensor(tn::v_proj(1)).dtype == DType::BF16);
  CHECK(f.tensor(tn::o_proj(1)).dtype == DType::Q4_1);
  CHECK(f.tensor(tn::gate_proj(0)).dtype == DType::Q4_0);
  CHECK(f.tensor(tn::down_proj(0)).dtype == DType::Q4_K);
  CHECK(f.tensor(tn::down_proj(1)).dtype == DType::Q6_K);
  CHECK(f.tensor(tn::down_proj(1)).file_name == "blk.1.ffn_down.weight");
  // GGUF lists ne0 (in_features) first; canonical shapes are [out, in].
  CHECK(f.tensor(tn::k_proj(0)).shape == std::vector<int64_t>{16, 32});
  CHECK(f.tensor(tn::gate_proj(1)).shape == std::vector<int64_t>{256, 32});
  CHECK(f.tensor(tn::down_proj(0)).shape == std::vector<int64_t>{32, 256});
  CHECK(f.tensor(tn::attn_norm(1)).file_name == "blk.1.attn_norm.weight");
  CHECK(f.tensor(tn::mlp_norm(1)).file_name == "blk.1.ffn_norm.weight");
  CHECK(f.tensor(tn::final_norm()).file_name == "output_norm.weight");
  CHECK(f.tensor(tn::up_proj(0)).file_name == "blk.0.ffn_up.weight");

  CHECK(f.rope_permutation_heads(tn::q_proj(0)) == 4);
  CHECK(f.rope_permutation_heads(tn::k_proj(1)) == 2);
  CHECK(f.rope_permutation_heads(tn::v_proj(0)) == 0);

  // Metadata access.
  CHECK(f.get_int("llama.block_count") == 2);
  CHECK(f.get_string("general.architecture") == "llama");
  CHECK(f.get_string_array("tokenizer.ggml.tokens").size() == 64);
  CHECK(f.get_string_array("tokenizer.ggml.tokens")[5] == "t5");
  CHECK(f.find("llama.vocab_size") == nullptr);
  CHECK(f.get_float("llama.rope.freq_base") == 10000.0);
  try {
    f.get_string("llama.block_count");
    FAIL("no error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("llama.block_count") != std::string::npos);
    CHECK(std::string(e.what()).find(path) != std::string::npos);
  }
  CHECK_THROWS_AS(f.get_int("no.such.key"), InputError);
  bool found_arch = false;
  for (const auto& [k, v] : f.metadata_summary()) found_arch |= k == "general.architecture" && v == "\"llama\"";
  CHECK(found_arch);
}

TEST_CASE("tiny llama GGUF: Q/K rows come back in Hugging Face order", "[io][gguf]") {
  GgufFile f(hc::test::data_path("good_tiny_llama.gguf"));
  // The script wrote q[r][c] = r + c/64 and k[r][c] = 100 + r + c/64 in HF order and permuted
  // them exactly as llama.cpp's converter does; layer 0 stores them losslessly (F16, F32).
  const std::vector<float> q = f.load_f32(tn::q_proj(0), {32, 32});
  const std::vector<float> k = f.load_f32(tn::k_proj(0), {16, 32});
  int q_bad = 0, k_bad = 0;
  for (int r = 0; r < 32; ++r)
    for (int col = 0; col < 32; ++col) q_bad += q[r * 32 + col] != float(r + col / 64.0);
  for (int r = 0; r < 16; ++r)
    for (int col = 0; col < 32; ++col) k_bad += k[r * 32 + col] != float(100 + r + col / 64.0);
  CHECK(q_bad == 0);
  CHECK(k_bad == 0);
  // Stored order really is permuted (else the test above proves nothing): the file's second row
  // of head 0 is HF row head_dim/2 = 4.
  const TensorInfo& qi = f.tensor(tn::q_proj(0));
  std::vector<float> stored_row(32);
  dequantize(qi.dtype, qi.data + dtype_nbytes(qi.dtype, 32), 32, stored_row.data());
  CHECK(stored_row[0] == 4.0f);

  hc::test::check_against_sums(f, hc::test::data_path("good_tiny_llama.sums"));
}

TEST_CASE("tiny llama GGUF: load_f32 checks the expected shape", "[io][gguf]") {
  const std::string path = hc::test::data_path("good_tiny_llama.gguf");
  GgufFile f(path);
  try {
    f.load_f32(tn::q_proj(0), {32, 31});
    FAIL("no error");
  } catch (const InputError& e) {
    const std::string msg = e.what();
    CHECK(msg.find(path) != std::string::npos);
    CHECK(msg.find(tn::q_proj(0)) != std::string::npos);
    CHECK(msg.find("[32, 31]") != std::string::npos);
    CHECK(msg.find("[32, 32]") != std::string::npos);
  }
  CHECK_THROWS_AS(f.load_f32("model.layers.7.self_attn.q_proj.weight"), InputError);
}

TEST_CASE("tiny llama GGUF: fingerprint hashes the header, metadata and tensor infos", "[io][gguf]") {
  const std::string path = hc::test::data_path("good_tiny_llama.gguf");
  GgufFile f(path);
  const std::vector<uint8_t> bytes = read_bytes(path);
  REQUIRE(f.header_bytes() > 24);
  REQUIRE(f.header_bytes() <= f.data_offset());
  CHECK(f.data_offset() % f.alignment() == 0);
  CHECK(f.alignment() == 32);
  CHECK(f.fingerprint() == sha256_hex(bytes.data(), f.header_bytes()));
  CHECK(f.fingerprint().size() == 64);
  CHECK(GgufFile(path).fingerprint() == f.fingerprint());
  CHECK(GgufFile(hc::test::data_path("good_tiny_qwen2.gguf")).fingerprint() != f.fingerprint());
}

TEST_CASE("tiny qwen2 GGUF: biases, no permutation, linear RoPE scaling, untied head", "[io][gguf]") {
  GgufFile f(hc::test::data_path("good_tiny_qwen2.gguf"));
  const ModelConfig& c = f.config();
  CHECK(c.arch == "qwen2");
  CHECK(c.qkv_bias);
  CHECK_FALSE(c.tie_embeddings);
  CHECK(f.has(tn::lm_head()));
  CHECK(f.tensor(tn::lm_head()).shape == std::vector<int64_t>{64, 32});
  CHECK(c.vocab == 64);
  CHECK(c.intermediate == 32);
  CHECK(c.rope_theta == 1e6);
  CHECK(c.rope_scaling.type == RopeScalingType::Linear);
  CHECK(c.rope_scaling.factor == 2.0);
  CHECK(f.rope_permutation_heads(tn::q_proj(0)) == 0);
  CHECK(f.tensors().size() == 2 + 2 * 12 + 1);

  const std::vector<float> q = f.load_f32(tn::q_proj(1));
  const std::vector<float> qb = f.load_f32(tn::q_bias(1), {32});
  const std::vector<float> kb = f.load_f32(tn::k_bias(0), {16});
  int bad = 0;
  for (int r = 0; r < 32; ++r) {
    for (int col = 0; col < 32; ++col) bad += q[r * 32 + col] != float(r + col / 64.0);
    bad += qb[r] != r + 0.5f;
  }
  for (int r = 0; r < 16; ++r) bad += kb[r] != r + 0.25f;
  CHECK(bad == 0);
  hc::test::check_against_sums(f, hc::test::data_path("good_tiny_qwen2.sums"));
}

TEST_CASE("llama GGUF with rope_freqs: llama3 RoPE scaling recovered", "[io][gguf]") {
  GgufFile f(hc::test::data_path("good_tiny_llama3.gguf"));
  const RopeScaling& s = f.config().rope_scaling;
  CHECK(s.type == RopeScalingType::Llama3);
  CHECK(s.factor == Approx(8.0).epsilon(1e-6));
  CHECK(s.low_freq_factor == Approx(1.0).epsilon(1e-4));
  CHECK(s.high_freq_factor == Approx(128.0).epsilon(1e-4));
  CHECK(s.original_max_position == 4096);
  CHECK(f.has("rope_freqs.weight"));
  CHECK(describe_rope_scaling(s).find("llama3 (factor 8") == 0);
  // The q_proj of this file also follows the formula, with 4 heads of head_dim 8.
  const std::vector<float> q = f.load_f32(tn::q_proj(1));
  CHECK(q[5 * 32 + 3] == float(5 + 3 / 64.0));
}

TEST_CASE("bad GGUF fixtures fail with a clear InputError", "[io][gguf]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bad_magic.gguf", "not a GGUF file"},
      {"bad_version.gguf", "GGUF version 1 is not supported"},
      {"bad_truncated.gguf", "runs past end of file"},
      {"bad_truncated_header.gguf", "truncated"},
      {"bad_count.gguf", "tensor count 1152921504606846976 is impossible"},
      {"bad_offset.gguf", "tensor 'token_embd.weight': data [offset"},
      {"bad_ndims.gguf", "tensor 'token_embd.weight': n_dims 7 is out of range"},
      {"bad_dtype.gguf", "tensor 'token_embd.weight': unknown tensor type id 99"},
      {"bad_unsupported_dtype.gguf", "unsupported tensor type Q3_K (11) for tensor 'blk.0.ffn_down.weight'"},
      {"bad_arch.gguf", "architecture 'gptneox'"},
      {"bad_missing_tensor.gguf", "missing tensor model.layers.1.mlp.down_proj.weight"},
      {"bad_missing_tensor.gguf", "'blk.1.ffn_down.weight' in GGUF"},
      {"bad_shape.gguf", "model.layers.0.self_attn.q_proj.weight has shape [24, 32], expected [32, 32]"},
      {"bad_shape.gguf", "GGUF 'blk.0.attn_q.weight' dims [32, 24], expected [32, 32]"},
  };
  for (const auto& [file, needle] : cases) expect_input_error(hc::test::data_path(file), needle);
  expect_input_error(hc::test::data_path("no_such_file.gguf"), "cannot open");
}

TEST_CASE("metadata of every GGUF value type", "[io][gguf]") {
  GgufFile f(hc::test::data_path("good_tiny_llama.gguf"));
  CHECK(f.get_int("test.u8") == 200);
  CHECK(f.get_int("test.i8") == -100);
  CHECK(f.get_int("test.u16") == 60000);
  CHECK(f.get_int("test.i16") == -30000);
  CHECK(f.get_int("test.u32") == 4000000000LL);
  CHECK(f.get_int("test.i32") == -2000000000LL);
  CHECK(f.get_float("test.f32") == 0.25);
  CHECK(f.find("test.bool")->type == GgufValue::Type::BOOL);
  CHECK(std::get<bool>(f.find("test.bool")->scalar));
  CHECK(f.find("test.bool")->to_string() == "true");
  CHECK(f.get_string("test.str") == "hello");
  CHECK(f.get_int("test.u64") == (int64_t(1) << 40));
  CHECK(f.get_int("test.i64") == -(int64_t(1) << 40));
  CHECK(f.get_float("test.f64") == -1.5);
  CHECK(f.get_number_array("test.arr_i16") == std::vector<double>{-1, 2, -3});
  CHECK(f.find("test.arr_i16")->array_type == GgufValue::Type::I16);
  CHECK(f.get_number_array("test.arr_f64") == std::vector<double>{0.5, 1e10});
  CHECK(f.get_number_array("test.arr_bool") == std::vector<double>{1, 0});
  CHECK(f.get_string_array("test.arr_str") == std::vector<std::string>{"a", "bc"});
  CHECK(f.find("test.arr_i16")->to_string() == "[-1, 2, -3] (3 i16)");
  CHECK(f.find("test.arr_str")->to_string(1) == "[\"a\", ...] (2 string)");
}

TEST_CASE("metadata values of every type through a real file's getters", "[io][gguf]") {
  GgufFile f(hc::test::data_path("good_tiny_qwen2.gguf"));
  const GgufValue* scaling = f.find("qwen2.rope.scaling.type");
  REQUIRE(scaling != nullptr);
  CHECK(scaling->type == GgufValue::Type::STRING);
  CHECK(scaling->to_string() == "\"linear\"");
  CHECK(f.get_float("qwen2.rope.scaling.factor") == 2.0);
  CHECK(f.get_int("qwen2.vocab_size") == 64);
  CHECK(f.get_float("qwen2.vocab_size") == 64.0);  // integers widen to float
  CHECK_THROWS_AS(f.get_int("qwen2.rope.scaling.factor"), InputError);
  CHECK_THROWS_AS(f.get_number_array("tokenizer.ggml.tokens"), InputError);
  CHECK_THROWS_AS(f.get_string_array("qwen2.vocab_size"), InputError);
}

TEST_CASE("crafted GGUF corruptions fail with a clear InputError", "[io][gguf]") {
  const std::string dir = hc::test::make_temp_dir("gguf");
  auto check = [&](const std::string& name, const GgufBytes& g, const std::string& needle) {
    const std::string path = dir + "/" + name;
    write_bytes(path, g.b);
    expect_input_error(path, needle);
  };
  check("v99.gguf", GgufBytes().header(99, 0, 0), "unsupported GGUF version 99");
  check("big_endian.gguf", GgufBytes().header(0x03000000u, 0, 0), "big-endian");
  check("too_small.gguf", GgufBytes().put<uint16_t>(0x4747), "not a GGUF file");
  check("kv_count.gguf", GgufBytes().header(3, 0, uint64_t(1) << 40), "metadata count");
  {
    GgufBytes g;
    g.header(3, 0, 1).str("general.foo").put<uint32_t>(9).put<uint32_t>(9).put<uint64_t>(1);
    check("nested.gguf", g, "metadata 'general.foo': nested arrays");
  }
  {
    GgufBytes g;
    g.header(3, 0, 1).str("general.foo").put<uint32_t>(9).put<uint32_t>(8).put<uint64_t>(uint64_t(1) << 50);
    check("huge_array.gguf", g, "metadata 'general.foo': array of 1125899906842624 string cannot fit");
  }
  {
    GgufBytes g;
    g.header(3, 0, 1).put<uint64_t>(uint64_t(1) << 62).put<uint64_t>(0).put<uint64_t>(0);
    check("huge_key.gguf", g, "metadata entry 0: key");
  }
  {
    GgufBytes g;
    g.header(3, 0, 1).str("general.foo").put<uint32_t>(77).put<uint32_t>(0);
    check("value_type.gguf", g, "metadata 'general.foo': unknown value type 77");
  }
  {
    GgufBytes g;
    g.header(3, 0, 2).kv_u32("a", 1).kv_u32("a", 2);
    check("dup_key.gguf", g, "metadata 'a': key appears twice");
  }
  {
    GgufBytes g;
    g.header(3, 0, 1).kv_u32("general.alignment", 24);
    check("alignment.gguf", g, "'general.alignment' = 24 is not a power of two");
  }
  {
    // One tensor whose dimensions overflow int64 when multiplied.
    GgufBytes g;
    g.header(3, 1, 0).str("t").put<uint32_t>(2).put<uint64_t>(uint64_t(1) << 40).put<uint64_t>(uint64_t(1) << 40);
    g.put<uint32_t>(0).put<uint64_t>(0);
    check("overflow.gguf", g, "tensor 't': dimension 1 = 1099511627776 makes the element count overflow");
  }
  {
    GgufBytes g;
    g.header(3, 1, 0).str("t").put<uint32_t>(1).put<uint64_t>(0).put<uint32_t>(0).put<uint64_t>(0);
    check("zero_dim.gguf", g, "tensor 't': dimension 0 = 0 is zero");
  }
  {
    GgufBytes g;
    g.header(3, 1, 0).str("t").put<uint32_t>(1).put<uint64_t>(33).put<uint32_t>(8).put<uint64_t>(0);
    check("partial_block.gguf", g, "tensor 't': row length 33 is not a multiple of the Q8_0 block size 32");
  }
  {
    // Two tensors whose data overlap.
    GgufBytes g;
    g.header(3, 2, 0);
    g.str("a").put<uint32_t>(1).put<uint64_t>(16).put<uint32_t>(0).put<uint64_t>(0);
    g.str("b").put<uint32_t>(1).put<uint64_t>(16).put<uint32_t>(0).put<uint64_t>(32);
    g.b.resize(256, 0);
    check("overlap.gguf", g, "data overlaps tensor");
  }
  {
    GgufBytes g;
    g.header(3, 1, 0).str("a").put<uint32_t>(1).put<uint64_t>(16).put<uint32_t>(0).put<uint64_t>(4);
    g.b.resize(256, 0);
    check("misaligned.gguf", g, "tensor 'a': data offset 4 is not a multiple of the alignment 32");
  }
}

TEST_CASE("every truncation and random header corruption is an InputError, never a crash", "[io][gguf]") {
  const std::vector<uint8_t> good = read_bytes(hc::test::data_path("good_tiny_llama3.gguf"));
  const std::string dir = hc::test::make_temp_dir("gguf_fuzz");
  const std::string path = dir + "/f.gguf";
  GgufFile whole(hc::test::data_path("good_tiny_llama3.gguf"));
  const size_t header = whole.header_bytes();
  // End of the last tensor's data: the writer's padding after it may be cut away harmlessly.
  const uint8_t* first = nullptr;
  for (const auto& [name, t] : whole.tensors()) first = first && first < t.data ? first : t.data;
  size_t data_end = 0;
  for (const auto& [name, t] : whole.tensors())
    data_end = std::max(data_end, whole.data_offset() + size_t(t.data - first) + t.nbytes);
  REQUIRE(data_end <= good.size());
  int input_errors = 0, opened = 0;
  // Every prefix inside the header, then a spread of prefixes through the data.
  std::vector<size_t> cuts;
  for (size_t n = 0; n < header + 64; ++n) cuts.push_back(n);
  for (size_t n = header + 64; n < data_end; n += 61) cuts.push_back(n);
  cuts.push_back(data_end - 1);
  for (size_t n : cuts) {
    write_bytes(path, std::vector<uint8_t>(good.begin(), good.begin() + long(n)));
    try {
      GgufFile f(path);
      ++opened;
    } catch (const InputError&) {
      ++input_errors;
    }
  }
  CHECK(opened == 0);
  CHECK(input_errors == int(cuts.size()));

  std::mt19937 rng(7);
  int fuzz_ok = 0, fuzz_errors = 0;
  for (int trial = 0; trial < 400; ++trial) {
    std::vector<uint8_t> bytes = good;
    for (int k = 0; k < 4; ++k) bytes[rng() % header] = uint8_t(rng());
    write_bytes(path, bytes);
    try {
      GgufFile f(path);
      for (const auto& [name, t] : f.tensors()) (void)f.load_f32(name);
      ++fuzz_ok;
    } catch (const InputError& e) {
      ++fuzz_errors;
      CHECK(std::string(e.what()).find(path) == 0);
    }
  }
  CHECK(fuzz_ok + fuzz_errors == 400);
  CHECK(fuzz_errors > 0);
}

TEST_CASE("SmolLM2 GGUF: config, tensors, dequantisation and un-permutation", "[io][gguf][model]") {
  const std::string path = hc::test::smollm2_gguf_path();
  if (path.empty()) {
    if (std::getenv("HEADCAL_MODEL")) FAIL("HEADCAL_MODEL is set but the SmolLM2 GGUF was not found there");
    WARN("skipped: SmolLM2 GGUF not found (run scripts/get-model.sh or set HEADCAL_MODEL)");
    return;
  }
  const auto t0 = std::chrono::steady_clock::now();
  GgufFile f(path);
  const auto t1 = std::chrono::steady_clock::now();
  const ModelConfig& c = f.config();
  CHECK(c.arch == "llama");
  CHECK(c.n_layers == 30);
  CHECK(c.n_heads == 9);
  CHECK(c.n_kv_heads == 3);
  CHECK(c.head_dim == 64);
  CHECK(c.hidden == 576);
  CHECK(c.intermediate == 1536);
  CHECK(c.vocab == 49152);
  CHECK(c.max_context == 8192);
  CHECK(c.rope_theta == 100000.0);
  CHECK(c.tie_embeddings);
  CHECK(c.bos_id == 1);
  CHECK(c.eos_id == 2);
  CHECK(f.tensors().size() == 272);
  CHECK(f.tensor(tn::embed()).dtype == DType::Q8_0);
  CHECK(f.tensor(tn::embed()).shape == std::vector<int64_t>{49152, 576});
  CHECK(f.tensor(tn::q_proj(0)).dtype == DType::Q4_1);
  CHECK(f.tensor(tn::k_proj(0)).shape == std::vector<int64_t>{192, 576});
  CHECK(f.fingerprint() == GgufFile(path).fingerprint());

  // Q4_1 statistics: finite, non-degenerate, weight-like magnitudes.
  const std::vector<float> down = f.load_f32(tn::down_proj(3), {576, 1536});
  double sum = 0, sq = 0;
  bool finite = true;
  for (float v : down) {
    finite &= std::isfinite(v);
    sum += v;
    sq += double(v) * v;
  }
  const double mean = sum / down.size(), stddev = std::sqrt(sq / down.size() - mean * mean);
  CHECK(finite);
  CHECK(std::fabs(mean) < 0.01);
  CHECK(stddev > 0.005);
  CHECK(stddev < 1.0);

  // Spot rows of un-permuted q/k against gguf.quants.dequantize + numpy's inverse permutation.
  Reader r{read_bytes(hc::test::data_path("good_smollm2_expected.bin"))};
  REQUIRE(std::memcmp(r.take(8), "HCSM2\0\0\0", 8) == 0);
  const uint32_t rows = r.get<uint32_t>();
  REQUIRE(rows == 6);
  std::map<std::string, std::vector<float>> loaded;
  for (uint32_t i = 0; i < rows; ++i) {
    const std::string name = r.str();
    const uint32_t row = r.get<uint32_t>(), n = r.get<uint32_t>();
    std::vector<float> expected(n);
    std::memcpy(expected.data(), r.take(size_t(n) * 4), size_t(n) * 4);
    if (!loaded.count(name)) loaded[name] = f.load_f32(name);
    const std::vector<float>& w = loaded[name];
    INFO(name << " row " << row);
    int64_t worst = 0;
    for (uint32_t j = 0; j < n; ++j) worst = std::max(worst, ulp_distance(w[size_t(row) * n + j], expected[j]));
    CHECK(worst <= 1);
  }

  // Every tensor against the script's checksums; also the whole-model load time.
  const auto t2 = std::chrono::steady_clock::now();
  hc::test::check_against_sums(f, hc::test::data_path("good_smollm2.sums"));
  const auto t3 = std::chrono::steady_clock::now();
  size_t total = 0;
  for (const auto& [name, t] : f.tensors()) total += f.load_f32(name).size();
  const auto t4 = std::chrono::steady_clock::now();
  auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  WARN("SmolLM2: open " << ms(t0, t1) << " ms, load_f32 of all " << f.tensors().size() << " tensors ("
                        << total << " floats) " << ms(t3, t4) << " ms (checksum pass " << ms(t2, t3) << " ms)");
  CHECK(total == 134515008u);
}

TEST_CASE("describe_model lists the config and tensors", "[io][gguf]") {
  GgufFile f(hc::test::data_path("good_tiny_llama.gguf"));
  DescribeOptions o;
  o.tensors = true;
  o.metadata = true;
  const std::string text = describe_model(f, o);
  for (const std::string& needle :
       {std::string("arch:            llama"), std::string("layers:          2"), std::string("heads:           4"),
        std::string("kv heads:        2"), std::string("head_dim:        8"), std::string("intermediate:    256"),
        std::string("vocab:           64"), std::string("rope scaling:    none"), std::string("tensors:         20"),
        std::string("Q4_K 1"), std::string("Q6_K 1"), std::string("fingerprint:     " + f.fingerprint()),
        std::string("model.layers.1.mlp.down_proj.weight  Q6_K  [32, 256]  (blk.1.ffn_down.weight)"),
        std::string("general.architecture = \"llama\""), std::string("tokenizer.ggml.tokens = [\"t0\"")}) {
    INFO(text);
    CHECK(text.find(needle) != std::string::npos);
  }
}

TEST_CASE("GGUF yarn metadata: required keys and unsupported llama.cpp factors are named", "[io][gguf]") {
  const std::string dir = hc::test::make_temp_dir("gguf_yarn");
  // Metadata only (no layers): the RoPE keys are read before the tensors are checked.
  auto file = [&](const std::string& name, const std::vector<std::pair<std::string, float>>& rope_f32,
                  bool with_original) {
    GgufBytes g;
    const uint64_t kvs = 9 + rope_f32.size() + (with_original ? 1 : 0);
    g.header(3, 0, kvs).kv_str("general.architecture", "qwen2").kv_u32("qwen2.block_count", 0);
    g.kv_u32("qwen2.context_length", 256).kv_u32("qwen2.embedding_length", 64);
    g.kv_u32("qwen2.feed_forward_length", 96).kv_u32("qwen2.attention.head_count", 4);
    g.kv_f32("qwen2.attention.layer_norm_rms_epsilon", 1e-6f).kv_str("qwen2.rope.scaling.type", "yarn");
    g.kv_f32("qwen2.rope.scaling.factor", 4.0f);
    for (const auto& [key, value] : rope_f32) g.kv_f32("qwen2.rope.scaling." + key, value);
    if (with_original) g.kv_u32("qwen2.rope.scaling.original_context_length", 64);
    const std::string path = dir + "/" + name;
    write_bytes(path, g.b);
    return path;
  };
  expect_input_error(file("no_original.gguf", {}, false),
                     "metadata 'qwen2.rope.scaling.original_context_length' is missing");
  expect_input_error(file("attn_factor.gguf", {{"attn_factor", 0.5f}}, true),
                     "metadata 'qwen2.rope.scaling.attn_factor' = 0.5");
  expect_input_error(file("log_mul.gguf", {{"yarn_log_multiplier", 0.1f}}, true),
                     "metadata 'qwen2.rope.scaling.yarn_log_multiplier'");
  // With every key in place and neutral factors, parsing reaches the model checks (no layers).
  const std::string ok = file("neutral.gguf", {{"attn_factor", 1.0f}, {"yarn_beta_fast", 16.0f}}, true);
  try {
    GgufFile f(ok);
    FAIL("a file without layers opened");
  } catch (const InputError& e) {
    const std::string msg = e.what();
    INFO(msg);
    CHECK(msg.find("rope") == std::string::npos);
  }
}

TEST_CASE("phi3 GGUF: attn_qkv and ffn_up split, longrope read, defects named", "[io][gguf][phi3]") {
  const std::string good = hc::test::data_path("good_tiny_phi3.gguf");
  const GgufFile f(good);
  const ModelConfig& c = f.config();
  CHECK(c.arch == "phi3");
  CHECK(c.rotary_dim == 48);  // phi3.rope.dimension_count of head_dim 64
  CHECK(c.rope_scaling.type == RopeScalingType::LongRope);
  CHECK(c.rope_scaling.original_max_position == 64);
  CHECK(c.rope_scaling.factor == 4.0);  // context_length 256 / 64
  // The fused tensors are gone; their parts view the file's rows, named after the stored tensor.
  CHECK_FALSE(f.has(tn::qkv_proj(0)));
  CHECK(f.tensor(tn::k_proj(1)).file_name == "blk.1.attn_qkv.weight rows 128-191");
  CHECK(f.tensor(tn::up_proj(0)).file_name == "blk.0.ffn_up.weight rows 64-127");
  CHECK(f.tensor(tn::gate_proj(0)).shape == std::vector<int64_t>{64, 128});
  const std::vector<float> v = f.load_f32(tn::v_proj(0), {64, 128});
  std::vector<float> direct(64 * 128);
  const TensorInfo& v_info = f.tensor(tn::v_proj(0));
  dequantize(v_info.dtype, v_info.data, 64 * 128, direct.data());
  CHECK(v == direct);  // no RoPE permutation for phi3

  // Copies of the file with one metadata value or tensor name changed in place.
  const PatchedCopies copy{read_bytes(good), hc::test::make_temp_dir("gguf_phi3")};
  expect_input_error(copy.patched("window.gguf",
                                  copy.value_of("phi3.attention.sliding_window"), le_bytes<uint32_t>(100)),
                     "metadata 'phi3.attention.sliding_window' = 100 is shorter than the context length 256");
  expect_input_error(copy.patched("odd_rotary.gguf",
                                  copy.value_of("phi3.rope.dimension_count"), le_bytes<uint32_t>(47)),
                     "metadata 'phi3.rope.dimension_count' = 47 must be even");
  expect_input_error(copy.patched("rotary_56.gguf", copy.value_of("phi3.rope.dimension_count"), le_bytes<uint32_t>(56)),
                     "tensor 'rope_factors_long.weight': expected F32 of shape [28]");
  expect_input_error(copy.patched("no_short.gguf", copy.at("rope_factors_short"), text_bytes("rope_factors_shorx")),
                     "tensor 'rope_factors_short.weight' is missing");
  expect_input_error(copy.patched("no_original.gguf", copy.at("phi3.rope.scaling.original_context_length"),
                                  text_bytes("phi3.rope.scaling.original_context_lengtx")),
                     "metadata 'phi3.rope.scaling.original_context_length' is missing");
  // feed_forward_length 48 where ffn_up holds 2 x 64 rows.
  expect_input_error(copy.patched("ffn.gguf", copy.value_of("phi3.feed_forward_length"), le_bytes<uint32_t>(48)),
                     "tensor model.layers.0.mlp.gate_up_proj.weight ('blk.0.ffn_up.weight') has shape [128, 128], "
                     "expected [96, 128]");
}

TEST_CASE("glm4 GGUF: fused ffn_up split, post norms and partial interleaved RoPE read, defects named",
          "[io][gguf][glm]") {
  const std::string good = hc::test::data_path("good_tiny_glm4.gguf");
  const GgufFile f(good);
  const ModelConfig& c = f.config();
  CHECK(c.arch == "glm4");
  CHECK(c.head_dim == 64);      // glm4.attention.key_length; hidden / heads would be 16
  CHECK(c.rotary_dim == 32);    // glm4.rope.dimension_count
  CHECK(c.rope_interleaved);    // llama.cpp's NORM rope type
  CHECK(c.post_norms);
  CHECK(c.qkv_bias);
  CHECK(c.intermediate == 96);
  CHECK_FALSE(f.has(tn::gate_up_proj(0)));
  CHECK(f.tensor(tn::gate_proj(1)).file_name == "blk.1.ffn_up.weight rows 0-95");
  CHECK(f.tensor(tn::up_proj(1)).file_name == "blk.1.ffn_up.weight rows 96-191");
  CHECK(f.tensor(tn::up_proj(1)).shape == std::vector<int64_t>{96, 64});
  CHECK(f.tensor(tn::post_attn_out_norm(0)).file_name == "blk.0.post_attention_norm.weight");
  CHECK(f.tensor(tn::post_mlp_norm(1)).file_name == "blk.1.post_ffw_norm.weight");
  CHECK(f.tensor(tn::mlp_norm(1)).file_name == "blk.1.ffn_norm.weight");
  CHECK(f.tensor(tn::k_bias(0)).shape == std::vector<int64_t>{128});
  // Q and K rows are read as stored: the converter keeps Hugging Face order for text GLM-4.
  for (const std::string& name : {tn::q_proj(1), tn::k_proj(0)}) {
    const TensorInfo& t = f.tensor(name);
    std::vector<float> direct(static_cast<size_t>(t.numel()));
    dequantize(t.dtype, t.data, t.numel(), direct.data());
    CHECK(f.load_f32(name, t.shape) == direct);
  }

  const PatchedCopies copy{read_bytes(good), hc::test::make_temp_dir("gguf_glm4")};
  expect_input_error(copy.patched("no_rope_dims.gguf",
                                  copy.at("glm4.rope.dimension_count"), text_bytes("glm4.rope.dimension_counx")),
                     "metadata 'glm4.rope.dimension_count' is missing");
  expect_input_error(copy.patched("odd_rope_dims.gguf",
                                  copy.value_of("glm4.rope.dimension_count"), le_bytes<uint32_t>(33)),
                     "metadata 'glm4.rope.dimension_count' = 33 must be even");
  // ffn_up's second dimension (rows): its name, n_dims (4 bytes), ne[0] (8 bytes), then ne[1].
  const std::string ffn_up = "blk.1.ffn_up.weight";
  expect_input_error(copy.patched("short_ffn_up.gguf",
                                  copy.at(ffn_up) + ffn_up.size() + 4 + 8, le_bytes<uint64_t>(190)),
                     "tensor model.layers.1.mlp.gate_up_proj.weight ('blk.1.ffn_up.weight') has shape [190, 64], "
                     "expected [192, 64]");
  // feed_forward_length 64 where ffn_up holds 2 x 96 rows.
  expect_input_error(copy.patched("ffn.gguf", copy.value_of("glm4.feed_forward_length"), le_bytes<uint32_t>(64)),
                     "tensor model.layers.0.mlp.gate_up_proj.weight ('blk.0.ffn_up.weight') has shape [192, 64], "
                     "expected [128, 64]");
  expect_input_error(copy.patched("no_post_norm.gguf",
                                  copy.at("blk.1.post_ffw_norm"), text_bytes("blk.1.post_ffw_norx")),
                     "missing tensor model.layers.1.post_mlp_layernorm.weight ('blk.1.post_ffw_norm.weight' in GGUF");
  // Keys of the same length renamed: GLM-4V's M-RoPE sections, and MTP layers.
  expect_input_error(copy.patched("mrope.gguf",
                                  copy.at("glm4.attention.head_count_kv"), text_bytes("glm4.rope.dimension_sections")),
                     "metadata 'glm4.rope.dimension_sections' marks a multimodal-RoPE (GLM-4V) file");
  expect_input_error(copy.patched("nextn.gguf",
                                  copy.at("glm4.attention.key_length"), text_bytes("glm4.nextn_predict_layers")),
                     "metadata 'glm4.nextn_predict_layers' = 64: multi-token-prediction layers are not supported");
}

namespace {

// `file` (a GGUF of the default alignment 32) with the metadata entries of `kvs` (`count` of them)
// inserted after the header, plus a u8 entry whose key length makes the insertion a multiple of 32
// bytes: the tensor data stays aligned and every tensor offset stays valid.
std::vector<uint8_t> with_metadata(const std::vector<uint8_t>& file, GgufBytes kvs, uint64_t count) {
  const size_t fixed = 8 + 4 + 1;  // key length, type, value
  const std::string key = "test.filler";
  const size_t pad = (32 - (kvs.b.size() + fixed + key.size()) % 32) % 32;
  kvs.str(key + std::string(pad, '_')).put<uint32_t>(0).put<uint8_t>(1);
  REQUIRE(kvs.b.size() % 32 == 0);
  std::vector<uint8_t> out;
  out.reserve(file.size() + kvs.b.size());
  out.assign(file.begin(), file.begin() + 24);  // magic, version, tensor count, metadata count
  uint64_t kv_count;
  std::memcpy(&kv_count, out.data() + 16, 8);
  kv_count += count + 1;
  std::memcpy(out.data() + 16, &kv_count, 8);
  out.insert(out.end(), kvs.b.begin(), kvs.b.end());
  out.insert(out.end(), file.begin() + 24, file.end());
  return out;
}

}  // namespace

TEST_CASE("chatglm GGUF (GLM-4 as llama.cpp converts THUDM's checkpoints) reads as the glm directory",
          "[io][gguf][glm]") {
  const std::string good = hc::test::data_path("good_tiny_chatglm.gguf");
  const GgufFile f(good);
  const auto hf = open_model(hc::test::data_path("good_hf_tiny_glm"));
  const ModelConfig& c = f.config();
  const ModelConfig& h = hf->config();
  CHECK(c.arch == "glm");
  CHECK(h.arch == "glm");
  CHECK(c.n_layers == h.n_layers);
  CHECK(c.n_heads == h.n_heads);
  CHECK(c.n_kv_heads == h.n_kv_heads);
  CHECK(c.head_dim == 64);
  CHECK(c.head_dim == h.head_dim);
  CHECK(c.rotary_dim == 32);  // chatglm.rope.dimension_count
  CHECK(c.rotary_dim == h.rotary_dim);
  CHECK(c.rope_interleaved);  // llama.cpp's NORM rope type
  CHECK(c.rope_interleaved == h.rope_interleaved);
  CHECK(c.qkv_bias);  // from the fused attn_qkv.bias
  CHECK(c.qkv_bias == h.qkv_bias);
  CHECK_FALSE(c.post_norms);
  CHECK_FALSE(c.qk_norm);
  CHECK_FALSE(c.tie_embeddings);
  CHECK(c.hidden == h.hidden);
  CHECK(c.intermediate == h.intermediate);
  CHECK(c.vocab == h.vocab);
  CHECK(c.max_context == h.max_context);
  CHECK(c.rope_theta == h.rope_theta);
  CHECK(c.rope_scaling.type == RopeScalingType::None);
  CHECK(c.rms_eps == Approx(h.rms_eps));  // stored as float32
  // attn_qkv (weight and bias) and ffn_up are views of their rows, q then k then v, gate then up.
  CHECK_FALSE(f.has(tn::qkv_proj(0)));
  CHECK_FALSE(f.has(tn::qkv_bias(1)));
  CHECK_FALSE(f.has(tn::gate_up_proj(0)));
  CHECK(f.tensor(tn::k_proj(1)).file_name == "blk.1.attn_qkv.weight rows 256-383");
  CHECK(f.tensor(tn::v_bias(0)).file_name == "blk.0.attn_qkv.bias rows 384-511");
  CHECK(f.tensor(tn::q_bias(1)).shape == std::vector<int64_t>{256});
  CHECK(f.tensor(tn::up_proj(1)).file_name == "blk.1.ffn_up.weight rows 96-191");
  // Every tensor equals the directory's, value for value (no RoPE permutation, nothing left over).
  CHECK(f.tensors().size() == hf->tensors().size());
  for (const auto& [name, info] : hf->tensors()) {
    INFO(name);
    REQUIRE(f.has(name));
    CHECK(f.tensor(name).shape == info.shape);
    CHECK(f.load_f32(name) == hf->load_f32(name));
  }

  const std::vector<uint8_t> bytes = read_bytes(good);
  const PatchedCopies copy{bytes, hc::test::make_temp_dir("gguf_chatglm")};
  expect_input_error(copy.patched("no_rope_dims.gguf",
                                  copy.at("chatglm.rope.dimension_count"), text_bytes("chatglm.rope.dimension_counx")),
                     "metadata 'chatglm.rope.dimension_count' is missing");
  // attn_qkv's second dimension (rows): its name, n_dims (4 bytes), ne[0] (8 bytes), then ne[1].
  const std::string qkv = "blk.1.attn_qkv.weight";
  expect_input_error(copy.patched("short_qkv.gguf", copy.at(qkv) + qkv.size() + 4 + 8, le_bytes<uint64_t>(510)),
                     "tensor model.layers.1.self_attn.qkv_proj.weight ('blk.1.attn_qkv.weight') has shape [510, 64], "
                     "expected [512, 64]");
  const std::string bias = "blk.0.attn_qkv.bias";
  expect_input_error(copy.patched("short_bias.gguf", copy.at(bias) + bias.size() + 4, le_bytes<uint64_t>(500)),
                     "tensor model.layers.0.self_attn.qkv_proj.bias ('blk.0.attn_qkv.bias') has shape [500], "
                     "expected [512]");
  // One KV head where the fused rows hold two: 256 + 2 x 64 rows expected.
  expect_input_error(copy.patched("kv_heads.gguf", copy.value_of("chatglm.attention.head_count_kv"),
                                  le_bytes<uint32_t>(1)),
                     "('blk.0.attn_qkv.weight') has shape [512, 64], expected [384, 64]");

  // ChatGLM3's vocabulary (SentencePiece, as the converter writes it) marks a ChatGLM2/3 file;
  // GLM-4's byte-level one opens.
  const std::string dir = hc::test::make_temp_dir("gguf_chatglm3");
  const std::string spm = dir + "/chatglm3.gguf";
  write_bytes(spm, with_metadata(bytes, GgufBytes().kv_str("tokenizer.ggml.model", "llama")
                                          .kv_str("tokenizer.ggml.pre", "chatglm-spm"), 2));
  expect_input_error(spm, "metadata 'tokenizer.ggml.pre' = 'chatglm-spm' (a SentencePiece vocabulary) marks a "
                          "ChatGLM2/3 file; of llama.cpp's chatglm architecture only GLM-4");
  const std::string llama_vocab = dir + "/llama_vocab.gguf";
  write_bytes(llama_vocab, with_metadata(bytes, GgufBytes().kv_str("tokenizer.ggml.model", "llama"), 1));
  expect_input_error(llama_vocab, "metadata 'tokenizer.ggml.model' = 'llama' (a SentencePiece vocabulary) marks a "
                                  "ChatGLM2/3 file");
  const std::string bpe = dir + "/glm4_vocab.gguf";
  write_bytes(bpe, with_metadata(bytes, GgufBytes().kv_str("tokenizer.ggml.model", "gpt2")
                                          .kv_str("tokenizer.ggml.pre", "chatglm-bpe"), 2));
  const GgufFile glm4_vocab(bpe);
  CHECK(glm4_vocab.config().arch == "glm");
  CHECK(glm4_vocab.get_string("tokenizer.ggml.pre") == "chatglm-bpe");
  CHECK(glm4_vocab.load_f32(tn::v_bias(1)) == hf->load_f32(tn::v_bias(1)));
}

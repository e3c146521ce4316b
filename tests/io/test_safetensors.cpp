// safetensors reader: element conversions, a good file, and every header defect it must refuse.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "catch.h"
#include "common/error.h"
#include "hf_test_helpers.h"
#include "io/model/safetensors.h"

namespace {

// Writes `header_json` with its 8-byte length prefix followed by `data`; returns the path.
std::string write_safetensors(const std::string& dir, const std::string& file, const std::string& header_json,
                              const std::vector<uint8_t>& data, int64_t length_override = -1) {
  std::string path = dir + "/" + file;
  std::ofstream out(path, std::ios::binary);
  uint64_t len = length_override >= 0 ? static_cast<uint64_t>(length_override) : header_json.size();
  for (int i = 0; i < 8; ++i) out.put(static_cast<char>((len >> (8 * i)) & 0xff));
  out << header_json;
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  return path;
}

using hc::test::contains;
using hc::test::input_error_of;

// Independent f16 decoding by arithmetic (the reader decodes by bit manipulation).
double f16_reference(uint16_t h) {
  const int sign = (h & 0x8000) ? -1 : 1;
  const int exp = (h >> 10) & 0x1f;
  const int mant = h & 0x3ff;
  if (exp == 0) return sign * std::ldexp(mant, -24);
  if (exp == 31) return mant ? std::numeric_limits<double>::quiet_NaN() : sign * HUGE_VAL;
  return sign * std::ldexp(1024 + mant, exp - 25);
}

}  // namespace

TEST_CASE("f16_to_f32 is exact for all 65536 half values", "[io][safetensors]") {
  int mismatches = 0;
  for (uint32_t h = 0; h < 65536; ++h) {
    const double want = f16_reference(static_cast<uint16_t>(h));
    const float got = hc::f16_to_f32(static_cast<uint16_t>(h));
    if (std::isnan(want) ? !std::isnan(got) : static_cast<double>(got) != want) ++mismatches;
  }
  CHECK(mismatches == 0);
  CHECK(hc::f16_to_f32(0x3c00) == 1.0f);
  CHECK(hc::f16_to_f32(0xc000) == -2.0f);
  CHECK(hc::f16_to_f32(0x7bff) == 65504.0f);
  CHECK(hc::f16_to_f32(0x0001) == std::ldexp(1.0f, -24));  // smallest subnormal
  CHECK(std::signbit(hc::f16_to_f32(0x8000)));
}

TEST_CASE("bf16_to_f32 keeps the top 16 bits of a float", "[io][safetensors]") {
  CHECK(hc::bf16_to_f32(0x3f80) == 1.0f);
  CHECK(hc::bf16_to_f32(0xc040) == -3.0f);
  CHECK(hc::bf16_to_f32(0x3e80) == 0.25f);
  CHECK(std::isinf(hc::bf16_to_f32(0x7f80)));
  CHECK(std::isnan(hc::bf16_to_f32(0x7fc0)));
  CHECK(hc::bf16_to_f32(0x0001) == std::ldexp(1.0f, -133));  // bf16 subnormal
}

TEST_CASE("a good safetensors file: dtypes, shapes, offsets, values; __metadata__ ignored", "[io][safetensors]") {
  const std::string dir = hc::test::make_temp_dir("st_good");
  // a: BF16 [2, 3] = 1, -2, 0.5, 3, -0.25, 8   (6 * 2 = 12 bytes at 0)
  // b: F16 [3]     = 1, -2, 2^-24              (6 bytes at 12)
  // c: F32 [1, 1, 2] = 1.5, -7                 (8 bytes at 18, unaligned on purpose)
  // e: F32 [0, 5]  (empty, at 26)
  std::vector<uint8_t> data;
  for (uint16_t v : {0x3f80, 0xc000, 0x3f00, 0x4040, 0xbe80, 0x4100}) {
    data.push_back(v & 0xff);
    data.push_back(v >> 8);
  }
  for (uint16_t v : {0x3c00, 0xc000, 0x0001}) {
    data.push_back(v & 0xff);
    data.push_back(v >> 8);
  }
  for (float f : {1.5f, -7.0f}) {
    uint8_t b[4];
    std::memcpy(b, &f, 4);
    data.insert(data.end(), b, b + 4);
  }
  const std::string header =
      R"({"__metadata__":{"format":"pt"},)"
      R"("a":{"dtype":"BF16","shape":[2,3],"data_offsets":[0,12]},)"
      R"("b":{"dtype":"F16","shape":[3],"data_offsets":[12,18]},)"
      R"("c":{"dtype":"F32","shape":[1,1,2],"data_offsets":[18,26]},)"
      R"("e":{"dtype":"F32","shape":[0,5],"data_offsets":[26,26]}}   )";  // trailing pad spaces are legal
  const std::string path = write_safetensors(dir, "x.safetensors", header, data);

  hc::SafetensorsFile f(path);
  REQUIRE(f.tensors().size() == 4);
  CHECK(f.header_bytes() == 8 + header.size());
  const auto& a = f.tensors().at("a");
  CHECK(a.dtype == hc::DType::BF16);
  CHECK(a.shape == std::vector<int64_t>{2, 3});
  CHECK(a.nbytes == 12);
  std::vector<float> va(6);
  hc::convert_to_f32(a.dtype, a.data, a.numel(), va.data());
  CHECK(va == std::vector<float>{1, -2, 0.5f, 3, -0.25f, 8});

  const auto& b = f.tensors().at("b");
  CHECK(b.dtype == hc::DType::F16);
  std::vector<float> vb(3);
  hc::convert_to_f32(b.dtype, b.data, b.numel(), vb.data());
  CHECK(vb == std::vector<float>{1, -2, std::ldexp(1.0f, -24)});

  const auto& c = f.tensors().at("c");
  CHECK(c.shape == std::vector<int64_t>{1, 1, 2});
  std::vector<float> vc(2);
  hc::convert_to_f32(c.dtype, c.data, c.numel(), vc.data());
  CHECK(vc == std::vector<float>{1.5f, -7.0f});

  CHECK(f.tensors().at("e").numel() == 0);
  CHECK(f.tensors().at("e").nbytes == 0);
}

TEST_CASE("safetensors header defects are InputErrors naming the file and the tensor", "[io][safetensors]") {
  const std::string dir = hc::test::make_temp_dir("st_bad");
  const std::vector<uint8_t> eight(8, 0);
  auto open = [](const std::string& path) { return [path] { hc::SafetensorsFile f(path); }; };

  SECTION("shorter than the length prefix") {
    std::string path = dir + "/short.safetensors";
    std::ofstream(path, std::ios::binary) << "abc";
    std::string msg = input_error_of(open(path));
    CHECK(contains(msg, path));
    CHECK(contains(msg, "too short"));
  }
  SECTION("header length larger than the file") {
    std::string path = write_safetensors(dir, "len.safetensors", "{}", {}, 100);
    std::string msg = input_error_of(open(path));
    CHECK(contains(msg, path));
    CHECK(contains(msg, "header length 100"));
  }
  SECTION("header length near 2^64 does not wrap") {
    std::string path = write_safetensors(dir, "huge.safetensors", "{}", {}, std::numeric_limits<int64_t>::max());
    CHECK(contains(input_error_of(open(path)), "header length"));
  }
  SECTION("malformed JSON") {
    std::string path = write_safetensors(dir, "json.safetensors", R"({"a":{"dtype":"F32",)", eight);
    std::string msg = input_error_of(open(path));
    CHECK(contains(msg, path));
    CHECK(contains(msg, "malformed"));
    CHECK(msg.find('\n') == std::string::npos);
  }
  SECTION("header is not an object") {
    std::string path = write_safetensors(dir, "arr.safetensors", "[1,2]", eight);
    CHECK(contains(input_error_of(open(path)), "not an object"));
  }
  SECTION("missing dtype") {
    std::string path =
        write_safetensors(dir, "nodtype.safetensors", R"({"w":{"shape":[2],"data_offsets":[0,8]}})", eight);
    std::string msg = input_error_of(open(path));
    CHECK(contains(msg, "tensor w"));
    CHECK(contains(msg, "dtype"));
  }
  SECTION("unsupported dtypes are named") {
    for (const char* dt : {"I8", "F8_E4M3", "F64", "I64"}) {
      std::string header = std::string(R"({"weird.weight":{"dtype":")") + dt + R"(","shape":[1],"data_offsets":[0,8]}})";
      std::string path = write_safetensors(dir, std::string("dt_") + dt + ".safetensors", header, eight);
      std::string msg = input_error_of(open(path));
      CHECK(contains(msg, path));
      CHECK(contains(msg, "tensor weird.weight"));
      CHECK(contains(msg, std::string("dtype ") + dt + " is not supported"));
    }
  }
  SECTION("negative shape dimension") {
    std::string path =
        write_safetensors(dir, "neg.safetensors", R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", eight);
    std::string msg = input_error_of(open(path));
    CHECK(contains(msg, "tensor w: shape dimension"));
  }
  SECTION("offsets beyond the data") {
    std::string path = write_safetensors(dir, "beyond.safetensors",
                                         R"({"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", eight);
    std::string msg = input_error_of(open(path));
    CHECK(contains(msg, "tensor w"));
    CHECK(contains(msg, "beyond the 8 data bytes"));
  }
  SECTION("end before begin") {
    std::string path =
        write_safetensors(dir, "rev.safetensors", R"({"w":{"dtype":"F32","shape":[1],"data_offsets":[8,4]}})", eight);
    CHECK(contains(input_error_of(open(path)), "end before begin"));
  }
  SECTION("byte count inconsistent with dtype x shape") {
    std::string path =
        write_safetensors(dir, "size.safetensors", R"({"w":{"dtype":"BF16","shape":[3],"data_offsets":[0,8]}})", eight);
    std::string msg = input_error_of(open(path));
    CHECK(contains(msg, "tensor w"));
    CHECK(contains(msg, "hold 8 bytes but BF16 [3] needs 6"));
  }
  SECTION("shape whose element count overflows") {
    std::string path = write_safetensors(
        dir, "ovf.safetensors",
        R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,0]}})", eight);
    CHECK(contains(input_error_of(open(path)), "overflows"));
  }
  SECTION("overlapping tensors") {
    std::string path = write_safetensors(dir, "overlap.safetensors",
                                         R"({"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                         R"("y":{"dtype":"F16","shape":[2],"data_offsets":[2,6]}})",
                                         eight);
    std::string msg = input_error_of(open(path));
    CHECK(contains(msg, "tensor y"));
    CHECK(contains(msg, "overlaps tensor x"));
  }
  SECTION("a file that does not exist") {
    std::string path = dir + "/absent.safetensors";
    CHECK(contains(input_error_of(open(path)), path));
  }
}

#pragma once
// Tensor checksums made by scripts/make_gguf_fixtures.py (format in its docstring) with the `gguf`
// package's dequantisation and numpy's inverse of the Q/K row permutation where llama.cpp applied
// one, and the check of every tensor of a model file against them.
#include <cmath>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "catch.h"
#include "io/model/model_file.h"
#include "io/model/tensor.h"

namespace hc::test {

struct Checksum {
  uint64_t numel = 0;
  double sum = 0, abs_sum = 0, index_sum = 0, abs_index_sum = 0;
};

inline std::map<std::string, Checksum> read_sums(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  REQUIRE(f.good());
  auto get = [&](auto& v) { REQUIRE(f.read(reinterpret_cast<char*>(&v), sizeof(v))); };
  char magic[8];
  REQUIRE(f.read(magic, 8));
  REQUIRE(std::memcmp(magic, "HCSUM1\0\0", 8) == 0);
  uint32_t count = 0;
  get(count);
  std::map<std::string, Checksum> out;
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t len = 0;
    get(len);
    std::string name(len, '\0');
    REQUIRE(f.read(name.data(), len));
    Checksum c;
    get(c.numel);
    get(c.sum);
    get(c.abs_sum);
    get(c.index_sum);
    get(c.abs_index_sum);
    out[name] = c;
  }
  return out;
}

// Every tensor of `model`, loaded through load_f32, against the checksums; returns the number of
// tensors per stored type. The index-weighted sum catches elements in the wrong place; the
// tolerance is far below one changed element.
inline std::map<std::string, int> check_against_sums(const ModelFile& model, const std::string& sums_path) {
  const auto sums = read_sums(sums_path);
  REQUIRE(sums.size() == model.tensors().size());
  std::map<std::string, int> by_dtype;
  for (const auto& [name, info] : model.tensors()) {
    INFO("tensor " << name << " (" << dtype_name(info.dtype) << ")");
    auto it = sums.find(name);
    REQUIRE(it != sums.end());
    const std::vector<float> v = model.load_f32(name);
    REQUIRE(v.size() == it->second.numel);
    double sum = 0, index_sum = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      sum += v[i];
      index_sum += double(i) * v[i];
    }
    CHECK(std::fabs(sum - it->second.sum) <= 1e-9 * it->second.abs_sum + 1e-12);
    CHECK(std::fabs(index_sum - it->second.index_sum) <= 1e-9 * it->second.abs_index_sum + 1e-12);
    ++by_dtype[dtype_name(info.dtype)];
  }
  return by_dtype;
}

}  // namespace hc::test

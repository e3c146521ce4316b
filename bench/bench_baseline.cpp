// Reading bench/sdpa_baseline.py's JSON and writing benchmark results (host only).
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "bench/bench_attention.h"
#include "common/error.h"

namespace hc::bench {

const SdpaPoint* SdpaBaseline::find(int n, int d, int heads, const std::string& backend) const {
  for (const auto& p : points)
    if (p.n == n && p.d == d && p.heads == heads && p.backend == backend) return &p;
  return nullptr;
}

SdpaBaseline read_sdpa_baseline(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path, "cannot open the SDPA baseline file");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path, std::string("not valid JSON: ") + e.what());
  }
  if (!j.is_object() || !j.contains("results") || !j["results"].is_array())
    throw InputError(path, "expected an object with a \"results\" array (bench/sdpa_baseline.py output)");
  SdpaBaseline b;
  b.device = j.value("device", std::string());
  for (const auto& r : j["results"]) {
    try {
      SdpaPoint p;
      p.n = r.at("n").get<int>();
      p.d = r.at("d").get<int>();
      p.heads = r.at("heads").get<int>();
      p.backend = r.at("backend").get<std::string>();
      p.ms = r.at("ms").get<double>();
      p.tflops = r.at("tflops").get<double>();
      b.points.push_back(p);
    } catch (const nlohmann::json::exception& e) {
      throw InputError(path, std::string("bad result entry: ") + e.what());
    }
  }
  return b;
}

void write_text_atomically(const std::string& path, const std::string& text) {
  namespace fs = std::filesystem;
  const fs::path target(path);
  const fs::path tmp = target.parent_path() / (target.filename().string() + ".tmp");
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw InputError(path, "cannot write the output file");
    out << text;
    if (!out) throw InputError(path, "writing the output file failed");
  }
  std::error_code ec;
  fs::rename(tmp, target, ec);
  if (ec) throw InputError(path, "cannot rename the temporary output file: " + ec.message());
}

}  // namespace hc::bench

#pragma once
// Where the tests find the real Qwen2.5-Coder-0.5B-Instruct GGUF (scripts/get-model.sh
// qwen2.5-coder-0.5b): HEADCAL_QWEN_MODEL, else the get-model cache (HEADCAL_CACHE or
// <repo>/.cache). Only the [qwen] tests include it.
#include <cstdlib>
#include <filesystem>
#include <string>

namespace hc::test {

inline std::string qwen_gguf_path() {
  namespace fs = std::filesystem;
  if (const char* env = std::getenv("HEADCAL_QWEN_MODEL"); env && fs::exists(env)) return env;
  const char* cache = std::getenv("HEADCAL_CACHE");
  const fs::path p = fs::path(cache ? cache : std::string(HEADCAL_SOURCE_DIR) + "/.cache") /
                     "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf";
  return fs::exists(p) ? p.string() : std::string();
}

}  // namespace hc::test

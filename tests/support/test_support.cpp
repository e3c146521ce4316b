#include "support/test_support.h"

#include "common/error.h"
#include "io/util/sha256.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <vector>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

#if defined(HEADCAL_HAVE_CUDA)
#include <cuda_runtime.h>
#endif

namespace fs = std::filesystem;

namespace hc::test {

std::string data_path(const std::string& name) { return std::string(HEADCAL_TEST_DATA) + "/" + name; }

std::string make_temp_dir(const std::string& tag) {
  static std::atomic<int> counter{0};
  fs::path dir = fs::temp_directory_path() /
                 ("headcal_test_" + tag + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir.string();
}

std::string smollm2_gguf_path() {
  if (const char* env = std::getenv("HEADCAL_MODEL"); env && fs::exists(env)) return env;
  std::string cache;
  if (const char* c = std::getenv("HEADCAL_CACHE")) cache = c;
  else cache = std::string(HEADCAL_SOURCE_DIR) + "/.cache";
  fs::path p = fs::path(cache) / "SmolLM2-135M-Instruct.Q4_1.gguf";
  return fs::exists(p) ? p.string() : std::string();
}

bool throws_input_error_containing(const std::function<void()>& fn, const std::string& needle) {
  try {
    fn();
  } catch (const ::hc::InputError& e) {
    return std::string(e.what()).find(needle) != std::string::npos;
  }
  return false;
}

std::string file_sha256(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  Sha256 h;
  std::vector<char> buf(1 << 20);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    if (in.gcount() > 0) h.update(buf.data(), static_cast<size_t>(in.gcount()));
  }
  return h.hex_digest();
}

bool gpu_available() {
#if defined(HEADCAL_HAVE_CUDA)
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return n > 0;
#else
  return false;
#endif
}

namespace {
std::atomic<int> skipped_for_gpu{0};
}
void note_gpu_skip() { ++skipped_for_gpu; }
int gpu_skips() { return skipped_for_gpu.load(); }

CommandResult run_headcal(const std::string& args) {
  const char* bin = std::getenv("HEADCAL_BIN");
  std::string exe = bin ? bin : std::string(HEADCAL_BINARY_DIR) + "/headcal";
  std::string cmd = "'" + exe + "' " + args + " 2>&1";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed for: " + cmd);
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  int status = ::pclose(pipe);
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return {code, out};
}

}  // namespace hc::test

#pragma once
// Helpers shared by the tests: fixture paths, temporary folders, GPU gating, running the CLI.
#include <functional>
#include <string>

namespace hc::test {

// True when fn throws hc::InputError whose message contains `needle`; false when it throws
// nothing (any other exception propagates, failing the test).
bool throws_input_error_containing(const std::function<void()>& fn, const std::string& needle);

// tests/data/<name>
std::string data_path(const std::string& name);
// A fresh, empty folder under the system temp dir, unique per call.
std::string make_temp_dir(const std::string& tag);
// Path of the SmolLM2 GGUF if get-model.sh has fetched it (HEADCAL_MODEL or the cache), else "".
std::string smollm2_gguf_path();
// sha256 of a file's bytes, lowercase hex (fixtures record the model file they were made from).
std::string file_sha256(const std::string& path);
// True when a CUDA device is present and usable.
bool gpu_available();
// Counts a test case that HC_REQUIRE_GPU skipped; the Catch2 v2 main turns "every test case run was
// skipped" into kSkipExitCode, which CTest's SKIP_RETURN_CODE reports as "Skipped".
void note_gpu_skip();
int gpu_skips();
constexpr int kSkipExitCode = 77;

struct CommandResult {
  int exit_code;
  std::string output;  // stdout and stderr together
};
// Runs the built `headcal` executable with the given arguments (shell-quoted by the caller).
CommandResult run_headcal(const std::string& args);

}  // namespace hc::test

// GPU tests carry the [gpu] tag and call this first: skipped cleanly where no device exists.
#if defined(HEADCAL_CATCH3)
#include <catch2/catch_test_macros.hpp>
#define HC_REQUIRE_GPU()                                      \
  do {                                                        \
    if (!::hc::test::gpu_available()) SKIP("no CUDA device"); \
  } while (0)
#else
#define HC_REQUIRE_GPU()                          \
  do {                                            \
    if (!::hc::test::gpu_available()) {           \
      ::hc::test::note_gpu_skip();                \
      WARN("skipped: no CUDA device");            \
      return;                                     \
    }                                             \
  } while (0)
#endif

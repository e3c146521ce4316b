// Readers bound what they read by what the file holds and reject what they used to accept
// silently: each case is a fixture that once hung, crashed, allocated without bound or passed.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>

#include "catch.h"
#include "common/error.h"
#include "io/calibration/grid.h"
#include "io/model/hf_config.h"
#include "io/util/mapped_file.h"
#include "io/calibration/minference_json.h"
#include "io/model/model_file.h"
#include "io/calibration/profile.h"
#include "io/prompt/prompt.h"
#include "io/util/temp_files.h"
#include "io/tokenizer/tokenizer.h"

namespace fs = std::filesystem;
using hc::test::data_path;
using hc::test::throws_input_error_containing;

namespace {

double seconds_of(const std::function<void()>& fn) {
  const auto t0 = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void touch(const fs::path& p) { std::ofstream(p) << "x"; }

}  // namespace

TEST_CASE("GGUF block_count must match the layers of the tensors present", "[io][limits]") {
  const std::string huge = data_path("bad_block_count_huge.gguf");
  double took = seconds_of([&] {
    CHECK(throws_input_error_containing([&] { hc::open_model(huge); },
                                        "'llama.block_count' = 2147483647, but the file holds tensors for layers 0-1"));
  });
  CHECK(took < 2.0);  // once a loop over two billion layers
  CHECK(throws_input_error_containing([&] { hc::open_model(data_path("bad_block_count_low.gguf")); },
                                      "'llama.block_count' = 1, but the file holds tensors for layers 0-1"));
  CHECK(throws_input_error_containing([&] { hc::open_model(data_path("bad_block_count_low.gguf")); },
                                      "bad_block_count_low.gguf"));
}

TEST_CASE(".npy shapes too large to count are rejected naming the file", "[io][limits]") {
  const std::string digits = data_path("bad_tokens_shape_digits.npy");
  CHECK(throws_input_error_containing([&] { hc::read_token_file(digits); }, digits + ": .npy shape"));
  CHECK(throws_input_error_containing([&] { hc::read_token_file(digits); }, "has a dimension too large"));
  const std::string overflow = data_path("bad_tokens_shape_overflow.npy");
  CHECK(throws_input_error_containing([&] { hc::read_token_file(overflow); },
                                      ".npy shape (1, 4611686018427387904) has a dimension too large"));
  // A plausible dimension the data does not back: the message's numbers do not overflow.
  const fs::path dir = hc::test::make_temp_dir("npy");
  std::string bytes = hc::read_whole_file(data_path("bad_tokens_shape_overflow.npy"));
  const size_t at = bytes.find("4611686018427387904");
  bytes.replace(at, 19, "999999999999999    ");
  std::ofstream((dir / "t.npy").string(), std::ios::binary) << bytes;
  CHECK(throws_input_error_containing([&] { hc::read_token_file((dir / "t.npy").string()); },
                                      "the shape says 999999999999999 values of 4 bytes, the file has 16 bytes"));
}

TEST_CASE("tokenizer.json ids beyond the tokens it defines are rejected before allocating", "[io][limits]") {
  const std::string path = data_path("bad_tokenizer_huge_id.json");
  double took = seconds_of([&] {
    CHECK(throws_input_error_containing([&] { hc::load_tokenizer(path); }, "token id 2147483646 is beyond the"));
  });
  CHECK(took < 2.0);  // once a 64 GB vector
}

TEST_CASE("devices and pipes are not read as files", "[io][limits]") {
  CHECK(throws_input_error_containing([] { hc::read_whole_file("/dev/zero"); }, "/dev/zero: not a regular file"));
  CHECK(throws_input_error_containing([] { hc::read_token_file("/dev/zero"); }, "/dev/zero: not a regular file"));
  CHECK(throws_input_error_containing([] { hc::read_profile("/dev/zero"); }, "/dev/zero: not a regular file"));
  const fs::path dir = hc::test::make_temp_dir("limits");
  const fs::path big = dir / "big.txt";
  std::ofstream(big) << std::string(100, 'a');
  CHECK(throws_input_error_containing([&] { hc::read_whole_file(big.string(), "cannot open", 99); },
                                      "is 100 bytes, more than the 99 this reader accepts"));
  CHECK(hc::read_whole_file(big.string(), "cannot open", 100).size() == 100);
}

TEST_CASE("duplicate keys and extra documents in YAML are errors", "[io][limits]") {
  CHECK(throws_input_error_containing([] { hc::read_profile(data_path("bad_profile_duplicate_key.yaml")); },
                                      "key 'version' appears twice in the same mapping"));
  CHECK(throws_input_error_containing([] { hc::read_profile(data_path("bad_profile_two_documents.yaml")); },
                                      "holds more than one YAML document"));
  CHECK(throws_input_error_containing([] { hc::read_grid_file(data_path("bad_grid_duplicate_key.yaml"), 4096); },
                                      "key 'format' appears twice"));
  // The same key in two different mappings is fine.
  CHECK_NOTHROW(hc::read_grid_file(data_path("good_grid.yaml"), 4096));
}

TEST_CASE("a head given twice in MInference JSON is an error", "[io][limits]") {
  const std::string path = data_path("bad_minference_duplicate_head.json");
  hc::MInferenceImportOptions options;
  options.model = {"m", "llama", 30, 9, 3, 64, ""};
  options.tokens = 8192;
  CHECK(throws_input_error_containing([&] { hc::import_minference(hc::read_whole_file(path), path, options); },
                                      "key '0' appears twice in the same object"));
  const std::string good = HEADCAL_SOURCE_DIR "/profiles/smollm2-135m-instruct/minference.json";
  CHECK_NOTHROW(hc::import_minference(hc::read_whole_file(good), good, options));
}

TEST_CASE("temporary files are tracked, and stale ones of dead processes removed", "[io][limits]") {
  const fs::path dir = hc::test::make_temp_dir("temps");
  const fs::path final_path = dir / "out.yaml";
  const fs::path stale = dir / ".out.yaml.tmp-999999999-0";  // above any pid_max: not alive
  const fs::path alive = dir / (".out.yaml.tmp-" + std::to_string(::getppid()) + "-0");
  const fs::path other = dir / ".other.yaml.tmp-999999999-0";
  touch(stale), touch(alive), touch(other);
  const int before = hc::registered_temp_count();
  const std::string tmp = hc::make_temp_path(final_path.string());
  CHECK(hc::registered_temp_count() == before + 1);
  CHECK(!fs::exists(stale));
  CHECK(fs::exists(alive));
  CHECK(fs::exists(other));  // another file's temporaries are not ours to remove
  CHECK(fs::path(tmp).filename().string().rfind(".out.yaml.tmp-" + std::to_string(::getpid()) + "-", 0) == 0);
  hc::release_temp_path(tmp);
  CHECK(hc::registered_temp_count() == before);
}

TEST_CASE("SIGTERM and SIGINT remove the registered temporaries", "[io][limits]") {
  for (int sig : {SIGTERM, SIGINT}) {
    const fs::path dir = hc::test::make_temp_dir("signal");
    const pid_t child = ::fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      hc::install_temp_cleanup_handlers();
      const std::string tmp = hc::make_temp_path((dir / "atlas.h5").string());
      std::ofstream(tmp) << "partial";
      ::raise(sig);
      ::_exit(0);  // not reached
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    CHECK(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == sig);
    CHECK(fs::is_empty(dir));
  }
}

TEST_CASE("bytes echoed from a bad file never break the one-line message", "[io][limits]") {
  // Fuzz findings: a newline inside a .npy dtype string, a control byte after a YAML escape.
  auto message_of = [](const std::function<void()>& fn) -> std::string {
    try {
      fn();
    } catch (const hc::InputError& e) {
      return e.what();
    }
    return "";
  };
  const std::string npy = data_path("bad_tokens_dtype_newline.npy");
  const std::string yaml = data_path("bad_profile_escape.yaml");
  for (const std::string& m : {message_of([&] { hc::read_token_file(npy); }), message_of([&] { hc::read_profile(yaml); })}) {
    INFO(m);
    REQUIRE(!m.empty());
    CHECK(std::none_of(m.begin(), m.end(), [](char c) { return static_cast<unsigned char>(c) < 0x20; }));
  }
  CHECK(message_of([&] { hc::read_token_file(npy); }).rfind(npy + ": .npy dtype '<u  \\x0a", 0) == 0);
  CHECK(hc::printable_line("a\nb\x01") == "a\\x0ab\\x01");
}

TEST_CASE("fuzz findings: JSON numbers beyond double, HDF5 dimensions the file cannot hold", "[io][limits]") {
  // nlohmann's out_of_range (number overflow) escaped as an internal error, exit 3.
  const std::string config = data_path("bad_hf_config_number_overflow.json");
  CHECK(throws_input_error_containing([&] { hc::read_hf_config(config, "x"); }, config + ": malformed JSON"));
  // An HDF5 dataset claiming 2^32 ids in a file of 6 KB: once a 32 GiB allocation.
  const std::string h5 = data_path("bad_tokens_h5_huge_dims.h5");
  CHECK(throws_input_error_containing([&] { hc::read_token_file(h5); }, "more than a file of"));
  CHECK(hc::read_token_file(data_path("good_tokens.h5")).size() > 0);
}

TEST_CASE("a malformed YAML that made yaml-cpp's LoadAll loop forever is rejected at once", "[io][limits]") {
  const std::string path = data_path("bad_profile_yaml_loop.yaml");  // fuzz finding: a hang
  double took = seconds_of([&] { CHECK(throws_input_error_containing([&] { hc::read_profile(path); }, path)); });
  CHECK(took < 2.0);
}

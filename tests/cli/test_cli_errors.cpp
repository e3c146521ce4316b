// Bad options and paths fail at once, before a model loads or any work starts, with one line
// "headcal: error: ..." that names the option or file; inspect reads atlases and profiles.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>

#include "catch.h"

namespace fs = std::filesystem;
using hc::test::data_path;
using hc::test::run_headcal;

namespace {

bool contains(const std::string& text, const std::string& needle) { return text.find(needle) != std::string::npos; }

// The whole output is one line starting "headcal: error: " and containing every needle.
void check_one_error_line(const hc::test::CommandResult& r, std::initializer_list<std::string> needles) {
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.rfind("headcal: error: ", 0) == 0);
  CHECK(r.output.find('\n') == r.output.size() - 1);
  for (const std::string& n : needles) CHECK(contains(r.output, n));
}

std::string q(const std::string& path) { return "'" + path + "'"; }

const std::string kTiny = data_path("good_tiny_llama.gguf");

}  // namespace

TEST_CASE("prompt options with bad values name the option", "[cli][errors]") {
  const std::string base = "record --model " + q(kTiny) + " --device cpu --out /tmp/headcal-unused.h5 ";
  check_one_error_line(run_headcal(base + "--generate random --length 0"), {"--length", "whole number from 1"});
  check_one_error_line(run_headcal(base + "--generate random --length 16 --seed -1"), {"--seed", "'-1'"});
  check_one_error_line(run_headcal(base + "--generate passkey --length 16 --depth nan"), {"--depth", "'nan'"});
  check_one_error_line(run_headcal(base + "--generate random --length 16 --map-size 0"), {"--map-size"});
  const auto t0 = std::chrono::steady_clock::now();
  check_one_error_line(run_headcal(base + "--generate random --length 99999999999 --allow-longer"), {"--length"});
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 10);
}

TEST_CASE("CLI11's own option errors are one headcal: error: line", "[cli][errors]") {
  check_one_error_line(run_headcal("inspect x --no-such-option"), {"--no-such-option"});
  check_one_error_line(run_headcal("search --atlas"), {"--atlas"});
}

TEST_CASE("output paths are checked before any work", "[cli][errors]") {
  const fs::path dir = hc::test::make_temp_dir("cli-out");
  const std::string missing = (dir / "no-such-folder" / "p.yaml").string();
  check_one_error_line(run_headcal("calibrate --model " + q(kTiny) + " --device cpu --generate random --length 64 --atlas " +
                                   q((dir / "a.h5").string()) + " --out " + q(missing)),
                       {"--out", "no-such-folder", "does not exist"});
  CHECK(fs::is_empty(dir));  // no atlas was recorded first
  check_one_error_line(run_headcal("export " + q(HEADCAL_SOURCE_DIR "/profiles/smollm2-135m-instruct/profile.yaml") +
                                   " --out " + q(dir.string())),
                       {"--out", "is a folder"});
}

TEST_CASE("--layers beyond the model is named as --layers", "[cli][errors]") {
  check_one_error_line(run_headcal("record --model " + q(kTiny) +
                                   " --device cpu --generate random --length 16 --layers 40-50 --out /tmp/headcal-unused.h5"),
                       {"--layers", "'40-50' is beyond the model's 2 layers"});
}

TEST_CASE("a token file longer than the context is named", "[cli][errors]") {
  const fs::path dir = hc::test::make_temp_dir("cli-ctx");
  const fs::path ids = dir / "long.txt";
  {
    std::ofstream out(ids);
    for (int i = 0; i < 300; ++i) out << (i % 60) << "\n";  // the tiny model's context is 256
  }
  check_one_error_line(run_headcal("record --model " + q(kTiny) + " --device cpu --out " + q((dir / "a.h5").string()) +
                                   " --tokens " + q(ids.string())),
                       {ids.string() + ": 300 tokens are more than the model's context of 256"});
}

TEST_CASE("a damaged HDF5 token file gives our one line, not HDF5's own error stack", "[cli][errors]") {
  const fs::path dir = hc::test::make_temp_dir("cli-h5");
  const fs::path damaged = dir / "tokens.h5";
  {
    std::ifstream in(data_path("good_tokens.h5"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(damaged, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  }
  const std::string record = "record --model " + q(kTiny) + " --device cpu --out " + q((dir / "a.h5").string());
  check_one_error_line(run_headcal(record + " --tokens " + q(damaged.string())), {damaged.string()});
  check_one_error_line(run_headcal(record + " --tokens /dev/zero"), {"/dev/zero: not a regular file"});
  // A damaged superblock once added HDF5's "infinite loop closing library" lines at exit.
  const std::string noisy = data_path("bad_tokens_h5_noise.h5");
  check_one_error_line(run_headcal(record + " --tokens " + q(noisy)), {noisy + ": cannot open as HDF5"});
}

TEST_CASE("inspect summarises a profile and an atlas", "[cli][inspect]") {
  const auto profile = run_headcal("inspect " + q(HEADCAL_SOURCE_DIR "/profiles/smollm2-135m-instruct/profile.yaml"));
  INFO(profile.output);
  CHECK(profile.exit_code == 0);
  CHECK(contains(profile.output, "format:          headcal-profile"));
  CHECK(contains(profile.output, "shape:           30 layers x 9 heads (kv 3), head_dim 64"));
  CHECK(contains(profile.output, "budget:          global-density 0.3"));
  CHECK(contains(profile.output, "patterns:"));

  const fs::path dir = hc::test::make_temp_dir("cli-inspect");
  const std::string atlas = (dir / "a.h5").string();
  const auto rec = run_headcal("record --model " + q(kTiny) + " --device cpu --generate random --length 64 --out " + q(atlas));
  INFO(rec.output);
  REQUIRE(rec.exit_code == 0);
  const auto r = run_headcal("inspect " + q(atlas));
  INFO(r.output);
  CHECK(r.exit_code == 0);
  CHECK(contains(r.output, "format:          headcal-atlas v"));
  CHECK(contains(r.output, "layers:          2 recorded of 2 (0-1)"));
  CHECK(contains(r.output, "tokens:          64"));
  CHECK(contains(r.output, "candidate rows:"));
  CHECK(contains(r.output, "dense 8"));  // one dense row per head: 2 layers x 4 heads
}

TEST_CASE("calibrate on the CPU accepts its own probes on the tiny fixtures", "[cli][calibrate]") {
  const fs::path dir = hc::test::make_temp_dir("cli-calibrate");
  for (const char* model : {"good_tiny_llama.gguf", "good_tiny_qwen2.gguf"})
    for (int seed : {1, 2, 3})
      for (int length : {64, 200}) {
        const std::string out = (dir / "p.yaml").string();
        const auto r = run_headcal("calibrate --model " + q(data_path(model)) + " --device cpu --generate random --length " +
                                   std::to_string(length) + " --seed " + std::to_string(seed) + " --out " + q(out));
        INFO(model << " seed " << seed << " length " << length << "\n" << r.output);
        CHECK(r.exit_code == 0);
        CHECK(fs::exists(out));
      }
}

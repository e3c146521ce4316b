// What a first-time user sees from the built `headcal`: the one "no CUDA device" message, input
// errors before notices, -o for --out, full pattern names and the next steps after calibrate.
#include <filesystem>
#include <string>

#include "catch.h"

namespace fs = std::filesystem;
using hc::test::run_headcal;

namespace {
std::string q(const std::string& s) { return "'" + s + "'"; }
}  // namespace

TEST_CASE("without a GPU, bench and --device cuda say 'no CUDA device' and exit 3", "[cli]") {
  if (hc::test::gpu_available()) return;  // the message is for machines without a device
  for (const char* args : {"bench dense", "bench sparse --n 1024",
                           "record --model random:tiny --length 64 --device cuda -o /tmp/never.h5"}) {
    const auto r = run_headcal(args);
    INFO(args << "\n" << r.output);
    CHECK(r.exit_code == 3);
    CHECK(r.output.find("headcal: error: ") != std::string::npos);
    CHECK(r.output.find("no CUDA device: ") != std::string::npos);
    CHECK(r.output.find("cudaError") == std::string::npos);
  }
}

TEST_CASE("calibrate without a prompt reports the error and no device notice", "[cli]") {
  const std::string dir = hc::test::make_temp_dir("cli_messages");
  const auto r = run_headcal("calibrate --model random:tiny -o " + q(dir + "/p.yaml"));
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("headcal: error: ") != std::string::npos);
  CHECK(r.output.find("notice") == std::string::npos);
  fs::remove_all(dir);
}

TEST_CASE("calibrate names patterns in full, in plain words, and prints the next commands", "[cli]") {
  const std::string dir = hc::test::make_temp_dir("cli_calibrate");
  const std::string profile = dir + "/tiny.yaml";
  const auto r = run_headcal("calibrate --model random:tiny --length 128 --device cpu -o " + q(profile));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("a_shape  vertical_slash  block_sparse") != std::string::npos);
  CHECK(r.output.find("v_slash") == std::string::npos);
  CHECK(r.output.find("b_sparse") == std::string::npos);
  CHECK(r.output.find("marginal") == std::string::npos);
  CHECK(r.output.find("(cpu)") == std::string::npos);
  CHECK(r.output.find("on the CPU") != std::string::npos);
  CHECK(r.output.find("next:\n") != std::string::npos);
  CHECK(r.output.find("headcal validate --model random:tiny --profile " + profile) != std::string::npos);
  CHECK(r.output.find("headcal report --atlas " + dir + "/tiny.atlas.h5 --profile " + profile) != std::string::npos);
  CHECK(r.output.find("headcal export " + profile + " --format minference -o " + dir + "/tiny.minference.json") !=
        std::string::npos);

  // -o is --out for export too, and the next step it printed works as printed: it writes the file,
  // or, when calibrate said MInference would run some heads differently, refuses naming them and
  // writes it with --force.
  const auto e = run_headcal("export " + q(profile) + " --format minference -o " + q(dir + "/tiny.minference.json"));
  INFO(e.output);
  const bool warned = r.output.find("MInference would run") != std::string::npos;
  CHECK(e.exit_code == (warned ? 2 : 0));
  CHECK(fs::exists(dir + "/tiny.minference.json") == !warned);
  if (warned) {
    CHECK(e.output.find("head(s) would change in MInference") != std::string::npos);
    const auto f = run_headcal("export " + q(profile) + " --format minference --force -o " +
                               q(dir + "/tiny.minference.json"));
    CHECK(f.exit_code == 0);
    CHECK(fs::exists(dir + "/tiny.minference.json"));
  }
  // import reads it back for the same random: model, as record and validate take it.
  const auto im = run_headcal("import " + q(dir + "/tiny.minference.json") + " --model random:tiny --tokens 128 -o " +
                              q(dir + "/back.yaml"));
  INFO(im.output);
  CHECK(im.exit_code == 0);
  CHECK(im.output.find("2 layers x 4 heads, reference length 128") != std::string::npos);
  CHECK(fs::exists(dir + "/back.yaml"));
  const auto bad = run_headcal("import " + q(dir + "/tiny.minference.json") + " --model random:no-such-shape -o " +
                               q(dir + "/bad.yaml"));
  CHECK(bad.exit_code == 2);
  CHECK(bad.output.find("no-such-shape") != std::string::npos);
  const auto rep = run_headcal("report --atlas " + q(dir + "/tiny.atlas.h5") + " --profile " + q(profile) + " -o " +
                               q(dir + "/report"));
  INFO(rep.output);
  CHECK(rep.exit_code == 0);
  CHECK(fs::exists(dir + "/report/report.html"));
  fs::remove_all(dir);
}

TEST_CASE("report refuses a validation record it cannot read, naming it", "[cli]") {
  const std::string dir = hc::test::make_temp_dir("cli_report_validation");
  const auto c = run_headcal("calibrate --model random:tiny --length 128 --device cpu -o " + q(dir + "/p.yaml"));
  REQUIRE(c.exit_code == 0);
  const auto r = run_headcal("report --atlas " + q(dir + "/p.atlas.h5") + " --validation " + q(dir + "/missing.json") +
                             " -o " + q(dir + "/report"));
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("missing.json") != std::string::npos);
  fs::remove_all(dir);
}

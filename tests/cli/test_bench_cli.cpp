// `headcal bench` through the built binary: bad input exits 2 with a message naming what is wrong,
// before any GPU work (so these run on CI machines without a GPU); `bench calibrate` on the CPU.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "catch.h"
#include "tests/support/test_support.h"

TEST_CASE("headcal bench: unknown configurations, head dims and baselines exit 2", "[cli][bench]") {
#if defined(HEADCAL_HAVE_CUDA)
  auto r = hc::test::run_headcal("bench sparse --config 'vertical_slash(3500,100);bogus(1)'");
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("bogus(1)") != std::string::npos);
  CHECK(r.output.find("unknown pattern 'bogus'") != std::string::npos);

  r = hc::test::run_headcal("bench sparse --config 'a_shape(64)'");
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("a_shape takes 2 parameters, got 1") != std::string::npos);

  r = hc::test::run_headcal("bench dense --d 96");
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("--d must be 64 or 128") != std::string::npos);

  r = hc::test::run_headcal("bench dense --n 1024 --baseline /nonexistent/sdpa.json");
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("/nonexistent/sdpa.json") != std::string::npos);
#else
  const auto r = hc::test::run_headcal("bench sparse");
  INFO(r.output);
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("CUDA") != std::string::npos);
#endif
}

TEST_CASE("headcal bench prefill: missing or mismatched inputs exit 2 before any GPU work", "[cli][bench]") {
#if defined(HEADCAL_HAVE_CUDA)
  const std::string profile = std::string(HEADCAL_SOURCE_DIR) + "/profiles/smollm2-135m-instruct/profile.yaml";
  auto r = hc::test::run_headcal("bench prefill --model random:tiny --n 128");
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("--profile") != std::string::npos);

  // A 30-layer, 9-head profile for a model of another shape: named, with what differs.
  r = hc::test::run_headcal("bench prefill --model random:tiny --profile " + profile + " --n 128");
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("profile.yaml") != std::string::npos);
  CHECK(r.output.find("does not fit the model") != std::string::npos);

  r = hc::test::run_headcal("bench prefill --model random:smollm2 --profile " + profile + " --n 0");
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("--n") != std::string::npos);

  r = hc::test::run_headcal("bench prefill --model random:smollm2 --profile /nonexistent/p.yaml --n 128");
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.find("/nonexistent/p.yaml") != std::string::npos);
#else
  const auto r = hc::test::run_headcal("bench prefill --model random:tiny --profile p.yaml");
  INFO(r.output);
  CHECK(r.exit_code != 0);
  CHECK(r.output.find("CUDA") != std::string::npos);
#endif
}

namespace {

std::string q(const std::string& s) { return "'" + s + "'"; }

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// One row of bench calibrate's table: N, candidates, then the stages' seconds and the total.
struct PrintedRow {
  long long n = 0;
  long long candidates = 0;
  std::vector<double> stages;  // load, prefill, statistics, probes, atlas, search
  double total = 0;
  double peak_gib = -1;  // CUDA only
};

// The rows between the table's heading (the line naming "total s") and "share of the total:";
// `peak`: with the peak device memory column (CUDA).
std::vector<PrintedRow> table_rows(const std::string& output, bool peak = false) {
  std::vector<PrintedRow> rows;
  std::istringstream lines(output);
  std::string line;
  bool in_table = false;
  while (std::getline(lines, line)) {
    if (line.find("candidates") != std::string::npos && line.find("total s") != std::string::npos) {
      in_table = true;
      continue;
    }
    if (line.rfind("share of the total:", 0) == 0) break;
    if (!in_table) continue;
    std::istringstream fields(line);
    PrintedRow r;
    fields >> r.n >> r.candidates;
    double v = 0;
    while (fields >> v) r.stages.push_back(v);
    REQUIRE(r.stages.size() == (peak ? 8u : 7u));  // six stages, the total and on CUDA the peak
    if (peak) {
      r.peak_gib = r.stages.back();
      r.stages.pop_back();
    }
    r.total = r.stages.back();
    r.stages.pop_back();
    rows.push_back(r);
  }
  return rows;
}

// The whole output is one line starting "headcal: error: " and containing every needle.
void check_one_error_line(const hc::test::CommandResult& r, std::initializer_list<std::string> needles) {
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK(r.output.rfind("headcal: error: ", 0) == 0);
  CHECK(r.output.find('\n') == r.output.size() - 1);
  for (const std::string& n : needles) CHECK(r.output.find(n) != std::string::npos);
}

const char* const kStageKeys[] = {"load_s", "prefill_s", "statistics_s", "probes_s", "atlas_s", "search_s"};

}  // namespace

TEST_CASE("headcal bench calibrate: one row per N, stages within the total, the same numbers in the JSON",
          "[cli][bench]") {
  namespace fs = std::filesystem;
  const std::string dir = hc::test::make_temp_dir("bench_calibrate");
  const std::string work = dir + "/work";
  fs::create_directory(work);
  const std::string model = hc::test::data_path("good_tiny_llama_tokenizer.gguf");
  const std::string json_path = dir + "/stages.json";
  const auto r = hc::test::run_headcal("bench calibrate --model " + q(model) +
                                       " --device cpu --generate passkey --n 101,200 --threads 2 --json " +
                                       q(json_path) + " --work-dir " + q(work));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("prompt: --generate passkey --seed 0\n") != std::string::npos);
  CHECK(r.output.find("on CPU, 2 threads, global-density 0.2") != std::string::npos);
  CHECK(fs::is_empty(work));  // each run's atlas and profile are removed

  const std::vector<PrintedRow> rows = table_rows(r.output);
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].n == 101);
  CHECK(rows[1].n == 200);

  const nlohmann::json j = nlohmann::json::parse(slurp(json_path));
  CHECK(j.at("format") == "headcal-bench-calibrate");
  CHECK(j.at("version") == 1);
  CHECK(j.at("kind") == "calibrate");
  CHECK(j.at("model") == model);
  CHECK(j.at("model_name") == "tiny-llama-test");
  CHECK(j.at("backend") == "cpu");
  CHECK(j.at("device") == "CPU, 2 threads");
  CHECK(j.at("prompt_source") == "--generate passkey --seed 0");
  CHECK(j.at("budget") == "global-density 0.2");
  const auto& results = j.at("results");
  REQUIRE(results.size() == 2);
  for (size_t i = 0; i < rows.size(); ++i) {
    const PrintedRow& p = rows[i];
    const auto& res = results[i];
    INFO("N " << p.n);
    CHECK(res.at("n").get<long long>() == p.n);
    CHECK(res.at("candidates").get<long long>() == p.candidates);
    CHECK(p.candidates > 0);
    CHECK(res.at("prompts") == 1);
    CHECK(res.at("layers") == 2);
    CHECK(res.at("peak_device_bytes").is_null());  // the CPU backend
    CHECK(res.at("prompt").get<std::string>().find("passkey") != std::string::npos);
    CHECK(res.at("prompt_sha256").get<std::string>().size() == 64);
    double printed_sum = 0, json_sum = 0;
    for (size_t s = 0; s < 6; ++s) {
      const double v = res.at(kStageKeys[s]).get<double>();
      INFO(kStageKeys[s]);
      CHECK(p.stages[s] >= 0);
      CHECK(v >= 0);
      CHECK(std::fabs(p.stages[s] - v) <= 0.0005 + 1e-12);  // printed to the millisecond
      printed_sum += p.stages[s];
      json_sum += v;
    }
    CHECK(res.at("probes_s").get<double>() > 0);
    const double total = res.at("total_s").get<double>();
    CHECK(std::fabs(p.total - total) <= 0.0005 + 1e-12);
    CHECK(json_sum <= total);
    CHECK(printed_sum <= p.total + 7 * 0.0005);  // each printed value rounded by at most half a millisecond
  }
  // The grid is scaled to each N: the longer prompt gets at least as many candidates.
  CHECK(rows[1].candidates >= rows[0].candidates);
  fs::remove_all(dir);
}

TEST_CASE("headcal bench calibrate: the default prompt is kv_retrieval, or random ids for random weights; prompt sets",
          "[cli][bench]") {
  auto r = hc::test::run_headcal("bench calibrate --model " + q(hc::test::data_path("good_tiny_llama_tokenizer.gguf")) +
                                 " --device cpu --n 256");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("prompt: --generate kv_retrieval --seed 0 (the default)\n") != std::string::npos);
  CHECK(table_rows(r.output).size() == 1);

  r = hc::test::run_headcal("bench calibrate --model random:tiny --device cpu --n 67");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("prompt: --generate random --seed 0 (the default)\n") != std::string::npos);
  const std::vector<PrintedRow> rows = table_rows(r.output);
  REQUIRE(rows.size() == 1);
  CHECK(rows[0].n == 67);

  // A prompt set: every prompt cut or generated to each N, all of them recorded per row.
  const std::string dir = hc::test::make_temp_dir("bench_calibrate_set");
  const std::string set = hc::test::data_path("good_prompt_set/set.yaml");
  r = hc::test::run_headcal("bench calibrate --model random:tiny --device cpu --prompt-set " + q(set) +
                            " --n 19,24 --json " + q(dir + "/set.json"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const nlohmann::json j = nlohmann::json::parse(slurp(dir + "/set.json"));
  CHECK(j.at("prompt_source") == "--prompt-set " + set + " (every prompt's length set to N)");
  REQUIRE(j.at("results").size() == 2);
  for (const auto& res : j.at("results")) {
    CHECK(res.at("prompts") == 2);
    CHECK(res.at("prompt").get<std::string>().find("2 prompts, " + std::to_string(res.at("n").get<int>()) +
                                                   " tokens each") != std::string::npos);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("headcal bench calibrate: bad input exits 2 with one message naming the option", "[cli][bench]") {
  const std::string dir = hc::test::make_temp_dir("bench_calibrate_errors");
  const std::string base = "bench calibrate --model " + q(hc::test::data_path("good_tiny_llama_tokenizer.gguf")) +
                           " --device cpu --generate passkey ";
  check_one_error_line(hc::test::run_headcal(base + "--n 0"), {"--n", "whole number from 1"});
  check_one_error_line(hc::test::run_headcal(base + "--n 100,-3"), {"--n", "'-3'"});
  check_one_error_line(hc::test::run_headcal(base + "--n 100,x"), {"--n", "'x'"});
  check_one_error_line(hc::test::run_headcal(base), {"--n", "required"});
  // Beyond the tiny model's context of 256, before any calibration runs (no work folder is made).
  check_one_error_line(hc::test::run_headcal(base + "--n 100,300 --work-dir " + q(dir)),
                       {"--n: 300 tokens are more than the model's context of 256", "--allow-longer"});
  CHECK(std::filesystem::is_empty(dir));
  // A generator's fixed text longer than N is named by N's option.
  check_one_error_line(hc::test::run_headcal(base + "--n 20"), {"--n 20 is too short for passkey"});
  check_one_error_line(hc::test::run_headcal(base + "--n 100 --bogus"), {"--bogus"});
  check_one_error_line(hc::test::run_headcal(base + "--n 100 --length 100"), {"--length"});
  check_one_error_line(hc::test::run_headcal(base + "--n 100 --no-probes"), {"--no-probes"});
  check_one_error_line(hc::test::run_headcal(base + "--n 100 --json " + q(dir + "/missing/out.json")),
                       {"--json", "does not exist"});
  check_one_error_line(hc::test::run_headcal(base + "--n 100 --global-density 1.5"), {"1.5", "outside (0, 1]"});
  check_one_error_line(hc::test::run_headcal("bench calibrate --model random:tiny --device tpu --n 64"), {"tpu"});
  check_one_error_line(hc::test::run_headcal("bench calibrate --model random:nope --device cpu --n 64"),
                       {"random:nope"});
  check_one_error_line(hc::test::run_headcal("bench"), {"subcommand"});
  std::filesystem::remove_all(dir);
}

TEST_CASE("headcal bench probe: the one-pass and per-candidate probes agree, both timed; bad options exit 2",
          "[cli][bench]") {
  const std::string dir = hc::test::make_temp_dir("bench_probe");
  const std::string json_path = dir + "/probe.json";
  const auto r = hc::test::run_headcal("bench probe --n 70,200 --heads 4 --kv-heads 2 --head-dim 128 --threads 2 "
                                       "--json " + q(json_path));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("2 threads: 4 heads (2 KV), d = 128") != std::string::npos);
  const nlohmann::json j = nlohmann::json::parse(slurp(json_path));
  CHECK(j.at("format") == "headcal-bench-probe");
  const auto& rows = j.at("rows");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].at("n") == 70);
  CHECK(rows[1].at("n") == 200);
  for (const auto& row : rows) {
    CHECK(row.at("candidates").get<int>() > 0);
    CHECK(row.at("one_pass_s").get<double>() > 0);
    CHECK(row.at("per_candidate_s").get<double>() > 0);
    // Both sides measure the same candidates: equal up to float rounding of the reference.
    CHECK(row.at("max_recall_diff").get<double>() < 1e-5);
    CHECK(row.at("max_out_err_diff").get<double>() < 1e-5);
  }
  check_one_error_line(hc::test::run_headcal("bench probe --n 0"), {"--n"});
  check_one_error_line(hc::test::run_headcal("bench probe --heads 3 --kv-heads 2"), {"--heads", "--kv-heads"});
  check_one_error_line(hc::test::run_headcal("bench probe --head-dim 96"), {"--head-dim"});
  check_one_error_line(hc::test::run_headcal("bench probe --device tpu"), {"--device"});
  check_one_error_line(hc::test::run_headcal("bench probe --n 70000"), {"--n", "70000"});
  std::filesystem::remove_all(dir);
}

TEST_CASE("headcal bench probe --device cuda: the GPU grid probe and the kernel per candidate agree",
          "[cli][bench][gpu]") {
  HC_REQUIRE_GPU();
  const std::string dir = hc::test::make_temp_dir("bench_probe_gpu");
  const std::string json_path = dir + "/probe.json";
  const auto r = hc::test::run_headcal("bench probe --device cuda --n 70,1000 --heads 4 --kv-heads 2 --head-dim 64 "
                                       "--json " + q(json_path));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const nlohmann::json j = nlohmann::json::parse(slurp(json_path));
  CHECK(j.at("device") == "cuda");
  const auto& rows = j.at("rows");
  REQUIRE(rows.size() == 2);
  for (const auto& row : rows) {
    CHECK(row.at("candidates").get<int>() > 0);
    CHECK(row.at("one_pass_s").get<double>() > 0);
    CHECK(row.at("per_candidate_s").get<double>() > 0);
    CHECK(row.at("cost_mismatches").get<int>() == 0);
    // The kernel per candidate rounds its output to bf16 and its P to bf16: ~1e-3 of noise.
    CHECK(row.at("max_recall_diff").get<double>() < 1e-4);
    CHECK(row.at("max_out_err_diff").get<double>() < 5e-3);
  }
  std::filesystem::remove_all(dir);
}

TEST_CASE("headcal bench calibrate on CUDA: stages within the total, peak device memory", "[cli][bench][gpu]") {
  HC_REQUIRE_GPU();
  const std::string dir = hc::test::make_temp_dir("bench_calibrate_gpu");
  const auto r = hc::test::run_headcal("bench calibrate --model random:tiny --device cuda --n 255,1024 --json " +
                                       q(dir + "/gpu.json"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const std::vector<PrintedRow> rows = table_rows(r.output, true);
  REQUIRE(rows.size() == 2);
  const nlohmann::json j = nlohmann::json::parse(slurp(dir + "/gpu.json"));
  CHECK(j.at("backend") == "cuda");
  CHECK(j.at("device").get<std::string>().find("GiB") != std::string::npos);
  REQUIRE(j.at("results").size() == 2);
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& res = j.at("results")[i];
    INFO("N " << rows[i].n);
    CHECK(res.at("n").get<long long>() == rows[i].n);
    double sum = 0;
    for (const char* key : kStageKeys) {
      CHECK(res.at(key).get<double>() >= 0);
      sum += res.at(key).get<double>();
    }
    CHECK(res.at("prefill_s").get<double>() > 0);
    CHECK(res.at("statistics_s").get<double>() > 0);
    CHECK(res.at("probes_s").get<double>() > 0);
    CHECK(sum <= res.at("total_s").get<double>());
    const double peak = res.at("peak_device_bytes").get<double>();
    CHECK(peak > 0);
    CHECK(std::fabs(rows[i].peak_gib - peak / double(1 << 30)) <= 0.005 + 1e-12);
  }
  std::filesystem::remove_all(dir);
}

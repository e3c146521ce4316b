// headcal's forward pass against Hugging Face transformers on a real model at any length:
// scripts/transformers_logits.py writes the reference (tokens, positions, float32 logits and
// meta.json naming the GGUF) into HEADCAL_TRANSFORMERS_REF; skipped when that is unset. The model
// is HEADCAL_TRANSFORMERS_MODEL when set, else meta.json's GGUF, else (a reference without
// meta.json) the SmolLM2 GGUF. Runs the CUDA engine (bf16) where there is a GPU, the CPU engine
// (float32) elsewhere.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "calib/cuda_engine.h"
#include "calib/engine.h"
#include "catch.h"
#include "support/vector_compare.h"
#include "io/model/model_file.h"
#include "io/prompt/prompt.h"

namespace {

using hc::test::max_abs_diff;
using hc::test::rel_error;
using hc::test::top1_agreement;

// The GGUF the reference was made from (see the file comment); "" when none is found.
std::string reference_model(const std::string& ref, nlohmann::json& meta) {
  if (const char* m = std::getenv("HEADCAL_TRANSFORMERS_MODEL")) return m;
  const std::string meta_path = ref + "/meta.json";
  if (std::filesystem::exists(meta_path)) {
    std::ifstream in(meta_path);
    meta = nlohmann::json::parse(in);
    return meta.at("gguf").get<std::string>();
  }
  return hc::test::smollm2_gguf_path();
}

}  // namespace

TEST_CASE("engine logits agree with transformers' on the reference prompt", "[cuda_engine][gpu][model][transformers]") {
  const char* ref_env = std::getenv("HEADCAL_TRANSFORMERS_REF");
  if (!ref_env) {
    WARN("skipped: HEADCAL_TRANSFORMERS_REF unset (make a reference with scripts/transformers_logits.py)");
    return;
  }
  const std::string ref = ref_env;
  nlohmann::json meta;
  const std::string path = reference_model(ref, meta);
  REQUIRE_FALSE(path.empty());
  INFO("model " << path << ", reference " << ref);
  REQUIRE(std::filesystem::exists(path));
  const auto model = hc::open_model(path);
  const int64_t vocab = model->config().vocab;
  if (meta.contains("vocab")) REQUIRE(meta.at("vocab").get<int64_t>() == vocab);

  hc::PrefillRequest req;
  for (int64_t id : hc::read_token_file(ref + "/tokens.txt")) {
    REQUIRE((id >= 0 && id < vocab));
    req.tokens.push_back(static_cast<int32_t>(id));
  }
  req.logit_positions = hc::read_token_file(ref + "/positions.txt");
  std::vector<float> want(req.logit_positions.size() * static_cast<size_t>(vocab));
  std::ifstream f(ref + "/logits.f32", std::ios::binary);
  REQUIRE(f.read(reinterpret_cast<char*>(want.data()), static_cast<std::streamsize>(want.size() * 4)));
  REQUIRE(f.peek() == std::ifstream::traits_type::eof());  // exactly [positions, vocab] floats

  const bool gpu = hc::test::gpu_available();
  const hc::PrefillResult got = gpu ? hc::make_cuda_engine(*model)->prefill(req) : hc::make_cpu_engine(*model)->prefill(req);
  REQUIRE(got.logits.size() == want.size());
  const double agree = top1_agreement(got.logits, want, vocab);
  const double err = max_abs_diff(got.logits, want);
  const double rel = rel_error(got.logits, want);
  WARN(model->config().name << ": headcal " << (gpu ? "CUDA (bf16)" : "CPU (fp32)") << " vs transformers (fp32), "
                            << req.tokens.size() << " tokens, " << req.logit_positions.size()
                            << " positions: top-1 agreement " << agree << ", max abs logit error " << err
                            << ", relative error " << rel);
  CHECK(agree >= 0.9);
  CHECK(rel < 0.05);
}

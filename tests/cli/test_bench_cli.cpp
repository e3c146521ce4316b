// `headcal bench` argument checks through the built binary: bad input exits 2 with a message
// naming what is wrong, before any GPU work (so these run on CI machines without a GPU).
#include <string>

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
  CHECK(r.output.find("needs --model and --profile") != std::string::npos);

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

// Catch2 v2 has no prebuilt main library nor a skip verdict: this main counts the test cases run
// and exits with kSkipExitCode when each of them was skipped for want of a GPU.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "support/test_support.h"

namespace {
int test_cases_run = 0;

struct CountTestCases : Catch::TestEventListenerBase {
  using TestEventListenerBase::TestEventListenerBase;
  void testCaseStarting(const Catch::TestCaseInfo& info) override {
    ++test_cases_run;
    TestEventListenerBase::testCaseStarting(info);
  }
};
}  // namespace
CATCH_REGISTER_LISTENER(CountTestCases)

int main(int argc, char* argv[]) {
  int rc = Catch::Session().run(argc, argv);
  if (rc == 0 && test_cases_run == hc::test::gpu_skips() && !hc::test::gpu_available())
    return hc::test::kSkipExitCode;
  return rc;
}

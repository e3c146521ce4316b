#include "bench/bench_tokenizer.h"

#include <algorithm>
#include <chrono>

#include "common/error.h"
#include "io/tokenizer/tokenizer.h"

namespace hc {

TokenizerBenchResult run_tokenizer_bench(const Tokenizer& tokenizer, const std::string& text, int runs) {
  TokenizerBenchResult r;
  r.bytes = text.size();
  r.runs = std::max(1, runs);
  r.tokens = tokenizer.encode(text, false, "bench").size();  // warm-up
  double total = 0, best = 1e300;
  for (int i = 0; i < r.runs; ++i) {
    auto t0 = std::chrono::steady_clock::now();
    size_t n = tokenizer.encode(text, false, "bench").size();
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    HC_ASSERT(n == r.tokens, "tokenizer output changed between identical encodes");
    total += s;
    best = std::min(best, s);
  }
  r.best_s = best;
  r.mean_s = total / r.runs;
  return r;
}

}  // namespace hc

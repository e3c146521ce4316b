#pragma once
// Tokenizer throughput on one thread (`headcal bench-tokenizer`).
#include <cstddef>
#include <string>

namespace hc {

class Tokenizer;

struct TokenizerBenchResult {
  size_t bytes = 0;       // text size
  size_t tokens = 0;      // tokens per encode
  int runs = 0;           // timed encodes (after one warm-up)
  double best_s = 0;      // fastest encode
  double mean_s = 0;
  double tokens_per_s() const { return best_s > 0 ? static_cast<double>(tokens) / best_s : 0; }
  double mb_per_s() const { return best_s > 0 ? static_cast<double>(bytes) / best_s / 1e6 : 0; }
};

// Encodes `text` runs + 1 times on the calling thread; the first encode is a warm-up (page
// faults, lazily built tables) and is not timed.
TokenizerBenchResult run_tokenizer_bench(const Tokenizer& tokenizer, const std::string& text, int runs);

}  // namespace hc

#include "calib/next_token.h"

#include <algorithm>
#include <cmath>
#include <thread>

#include "calib/parallel_chunks.h"

namespace hc {

void compare_logit_rows(const float* logits_a, const float* logits_b, int64_t rows, int64_t vocab, double* kl,
                        uint8_t* agree, float* confidence, int n_threads) {
  if (rows <= 0) return;
  const int threads = n_threads > 0 ? n_threads : static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  parallel_chunks(threads, rows, 1, [&](int64_t r0, int64_t r1) {
    std::vector<double> pa(static_cast<size_t>(vocab));  // [vocab] exp(a - max_a)
    for (int64_t r = r0; r < r1; ++r) {
      const float* a = logits_a + r * vocab;
      const float* b = logits_b + r * vocab;
      int64_t arg_a = 0, arg_b = 0;
      for (int64_t t = 1; t < vocab; ++t) {
        if (a[t] > a[arg_a]) arg_a = t;
        if (b[t] > b[arg_b]) arg_b = t;
      }
      const double max_a = a[arg_a], max_b = b[arg_b];
      double sum_a = 0, sum_b = 0;
      for (int64_t t = 0; t < vocab; ++t) {
        const double e = std::exp(a[t] - max_a);
        pa[static_cast<size_t>(t)] = e;
        sum_a += e;
        sum_b += std::exp(b[t] - max_b);
      }
      const double lse_a = max_a + std::log(sum_a), lse_b = max_b + std::log(sum_b);
      // KL = sum_t p_a(t) * ((a_t - lse_a) - (b_t - lse_b)); the shift is summed once.
      double weighted = 0;
      for (int64_t t = 0; t < vocab; ++t)
        weighted += pa[static_cast<size_t>(t)] * (static_cast<double>(a[t]) - static_cast<double>(b[t]));
      const double value = weighted / sum_a - (lse_a - lse_b);
      kl[r] = std::max(0.0, value);  // rounding can dip a hair below 0
      agree[r] = arg_a == arg_b;
      confidence[r] = static_cast<float>(1.0 / sum_a);  // exp(max_a - max_a) / sum_a
    }
  });
}

void summarise_next_token(NextTokenComparison& c) {
  const size_t n = std::min({c.kl.size(), c.agree.size(), c.confidence.size()});
  c.mean_kl = 0;
  c.max_kl = 0;
  c.top1_agreement = 1;
  c.confident_share = 0;
  c.confident_top1 = 1;
  if (n == 0) return;
  double sum = 0;
  int64_t agreeing = 0, confident = 0, confident_agreeing = 0;
  for (size_t r = 0; r < n; ++r) {
    sum += c.kl[r];
    c.max_kl = std::max(c.max_kl, c.kl[r]);
    agreeing += c.agree[r];
    if (c.confidence[r] >= kConfidentProbability) {
      ++confident;
      confident_agreeing += c.agree[r];
    }
  }
  c.mean_kl = sum / static_cast<double>(n);
  c.top1_agreement = static_cast<double>(agreeing) / static_cast<double>(n);
  c.confident_share = static_cast<double>(confident) / static_cast<double>(n);
  if (confident > 0) c.confident_top1 = static_cast<double>(confident_agreeing) / static_cast<double>(confident);
}

}  // namespace hc

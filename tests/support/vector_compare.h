#pragma once
// Comparisons of two float tensors of the same shape, for tests that check one implementation
// against another (CUDA against CPU, headcal against transformers).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "catch.h"

namespace hc::test {

// ||got - want||_2 / ||want||_2 in double.
inline double rel_error(const std::vector<float>& got, const std::vector<float>& want) {
  REQUIRE(got.size() == want.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    num += (double(got[i]) - want[i]) * (double(got[i]) - want[i]);
    den += double(want[i]) * want[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}

inline double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - b[i]));
  return m;
}

// Fraction of rows ([rows, vocab] row-major) whose argmax agrees.
inline double top1_agreement(const std::vector<float>& a, const std::vector<float>& b, int64_t vocab) {
  const size_t rows = a.size() / static_cast<size_t>(vocab);
  size_t same = 0;
  for (size_t r = 0; r < rows; ++r) {
    const float* x = a.data() + r * vocab;
    const float* y = b.data() + r * vocab;
    same += (std::max_element(x, x + vocab) - x) == (std::max_element(y, y + vocab) - y) ? 1 : 0;
  }
  return double(same) / double(rows);
}

}  // namespace hc::test

#pragma once
// The attention score q . k of the CPU references and the CPU recorder: float lanes, 16
// independent sums so the compiler vectorises them; a 64..128-term float dot product errs by
// ~1e-7 relative, well below what the tests resolve. Everything after the score (exp, sums,
// P.V accumulation) is double in the references.
#include <cstdint>

namespace hc::kernels::detail {

inline double score_dot(const float* a, const float* b, int64_t d) {
  constexpr int kLanes = 16;
  float acc[kLanes] = {};
  int64_t x = 0;
  for (; x + kLanes <= d; x += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += a[x + l] * b[x + l];
  double total = 0;
  for (; x < d; ++x) total += static_cast<double>(a[x]) * b[x];
  // Pairwise lane reduction (vectorised), one conversion at the end.
  for (int width = kLanes / 2; width >= 1; width /= 2)
    for (int l = 0; l < width; ++l) acc[l] += acc[l + width];
  return total + static_cast<double>(acc[0]);
}

}  // namespace hc::kernels::detail

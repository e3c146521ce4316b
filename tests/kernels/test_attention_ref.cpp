// dense_attention_ref against a naive double-precision triple loop.
#include <cmath>
#include <random>
#include <vector>

#include "catch.h"
#include "common/error.h"
#include "kernels/attention/attention_ref.h"

using hc::kernels::AttentionDims;

namespace {

std::vector<float> random_vec(size_t n, std::mt19937& rng, float scale) {
  std::normal_distribution<float> dist(0.f, scale);
  std::vector<float> out(n);
  for (float& x : out) x = dist(rng);
  return out;
}

// Naive causal attention in double: o [N, H, d], lse [H, N].
void naive_attention(const AttentionDims& a, const std::vector<float>& q, const std::vector<float>& k,
                     const std::vector<float>& v, std::vector<double>& o, std::vector<double>& lse) {
  const int64_t N = a.n_tokens, H = a.n_heads, Hkv = a.n_kv_heads, d = a.head_dim;
  o.assign(static_cast<size_t>(N * H * d), 0.0);
  lse.assign(static_cast<size_t>(H * N), 0.0);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));
  for (int64_t h = 0; h < H; ++h) {
    const int64_t kvh = h / (H / Hkv);
    for (int64_t i = 0; i < N; ++i) {
      std::vector<double> s(static_cast<size_t>(i + 1));
      double mx = -1e300;
      for (int64_t j = 0; j <= i; ++j) {
        double dot = 0;
        for (int64_t c = 0; c < d; ++c) dot += double(q[(i * H + h) * d + c]) * k[(j * Hkv + kvh) * d + c];
        s[j] = dot * scale;
        mx = std::max(mx, s[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j <= i; ++j) sum += std::exp(s[j] - mx);
      lse[h * N + i] = mx + std::log(sum);
      for (int64_t j = 0; j <= i; ++j) {
        const double p = std::exp(s[j] - mx) / sum;
        for (int64_t c = 0; c < d; ++c) o[(i * H + h) * d + c] += p * v[(j * Hkv + kvh) * d + c];
      }
    }
  }
}

void check_case(int64_t N, int64_t H, int64_t Hkv, int64_t d, float qk_scale, int threads) {
  CAPTURE(N, H, Hkv, d, qk_scale, threads);
  std::mt19937 rng(static_cast<unsigned>(N * 131 + H * 17 + Hkv * 7 + d));
  AttentionDims dims{N, H, Hkv, d};
  auto q = random_vec(static_cast<size_t>(N * H * d), rng, qk_scale);
  auto k = random_vec(static_cast<size_t>(N * Hkv * d), rng, qk_scale);
  auto v = random_vec(static_cast<size_t>(N * Hkv * d), rng, 1.f);
  std::vector<float> o(static_cast<size_t>(N * H * d), -7.f), lse(static_cast<size_t>(H * N), -7.f);
  hc::kernels::dense_attention_ref(dims, q.data(), k.data(), v.data(), o.data(), lse.data(), threads);

  std::vector<double> o_ref, lse_ref;
  naive_attention(dims, q, k, v, o_ref, lse_ref);
  double max_o_err = 0, max_lse_err = 0;
  for (size_t i = 0; i < o.size(); ++i) max_o_err = std::max(max_o_err, std::abs(o[i] - o_ref[i]));
  for (size_t i = 0; i < lse.size(); ++i)
    max_lse_err = std::max(max_lse_err, std::abs(lse[i] - lse_ref[i]) / std::max(1.0, std::abs(lse_ref[i])));
  CAPTURE(max_o_err, max_lse_err);
  // float32 scores of magnitude up to ~30 (qk_scale 2): relative error ~1e-6 per op, d <= 128 terms.
  CHECK(max_o_err < 2e-5);
  CHECK(max_lse_err < 2e-6);

  // Every row's probabilities, recomputed with our LSE, sum to 1 (the property probe mode relies on).
  const double scale = 1.0 / std::sqrt(double(d));
  double max_sum_err = 0;
  for (int64_t h = 0; h < H; ++h) {
    const int64_t kvh = h / (H / Hkv);
    for (int64_t i = 0; i < N; ++i) {
      double total = 0;
      for (int64_t j = 0; j <= i; ++j) {
        double dot = 0;
        for (int64_t c = 0; c < d; ++c) dot += double(q[(i * H + h) * d + c]) * k[(j * Hkv + kvh) * d + c];
        total += std::exp(dot * scale - lse[h * N + i]);
      }
      max_sum_err = std::max(max_sum_err, std::abs(total - 1.0));
    }
  }
  CAPTURE(max_sum_err);
  CHECK(max_sum_err < 1e-5);
}

}  // namespace

TEST_CASE("dense_attention_ref matches a double-precision loop", "[kernels][attention_ref]") {
  for (int64_t d : {64, 128})
    for (int64_t N : {1, 17, 63, 64, 65, 130}) {
      check_case(N, 6, 2, d, 1.f, 2);  // GQA, group of 3
      check_case(N, 4, 4, d, 1.f, 1);  // MHA, single thread
    }
  // Peaked softmax (large scores) and more threads than work items.
  check_case(65, 6, 3, 64, 2.f, 8);
  check_case(130, 2, 1, 128, 2.f, 3);
  // Head dims other than 64/128 take the generic path (20: not a multiple of the 8 dot lanes).
  check_case(70, 4, 2, 20, 1.f, 2);
  check_case(33, 2, 2, 8, 1.f, 2);
}

TEST_CASE("dense_attention_ref row 0 copies v and has lse = its only score", "[kernels][attention_ref]") {
  std::mt19937 rng(5);
  AttentionDims dims{3, 2, 1, 64};
  auto q = random_vec(3 * 2 * 64, rng, 1.f), k = random_vec(3 * 64, rng, 1.f), v = random_vec(3 * 64, rng, 1.f);
  std::vector<float> o(3 * 2 * 64), lse(2 * 3);
  hc::kernels::dense_attention_ref(dims, q.data(), k.data(), v.data(), o.data(), lse.data());
  for (int h = 0; h < 2; ++h) {
    double dot = 0;
    for (int c = 0; c < 64; ++c) dot += double(q[h * 64 + c]) * k[c];
    CHECK(lse[h * 3] == Approx(dot / 8.0).margin(1e-5));
    for (int c = 0; c < 64; ++c) CHECK(o[h * 64 + c] == Approx(v[c]).margin(1e-6));
  }
}

TEST_CASE("dense_attention_ref works without lse and rejects bad dims", "[kernels][attention_ref]") {
  std::mt19937 rng(9);
  AttentionDims dims{20, 4, 2, 64};
  auto q = random_vec(20 * 4 * 64, rng, 1.f), k = random_vec(20 * 2 * 64, rng, 1.f),
       v = random_vec(20 * 2 * 64, rng, 1.f);
  std::vector<float> o1(q.size()), o2(q.size()), lse(4 * 20);
  hc::kernels::dense_attention_ref(dims, q.data(), k.data(), v.data(), o1.data(), nullptr);
  hc::kernels::dense_attention_ref(dims, q.data(), k.data(), v.data(), o2.data(), lse.data());
  CHECK(o1 == o2);

  AttentionDims bad{20, 4, 3, 64};
  CHECK_THROWS_AS(hc::kernels::dense_attention_ref(bad, q.data(), k.data(), v.data(), o1.data(), nullptr),
                  hc::InputError);
  AttentionDims zero_heads{20, 0, 1, 64};
  CHECK_THROWS_AS(hc::kernels::dense_attention_ref(zero_heads, q.data(), k.data(), v.data(), o1.data(), nullptr),
                  hc::InputError);
}

#pragma once
// Next-token comparison of two runs of one model (validate's dense and sparse prefill): per position
// KL(P_a || P_b), whether the argmaxes agree, and how sure run a is of its argmax. The engines compute it from final hidden states a
// chunk of positions at a time (Engine::compare_next_token), so no [positions, vocab] array exists;
// the row formula below is the one every backend and compare_logits follow.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace hc {

// A position is "confident" where run a (the dense model) gives its argmax at least this
// probability: there the next token is decided, not a near-tie among equally likely tokens (a random
// hex digit of a UUID, say), so a flipped argmax is a changed answer rather than a changed coin toss.
constexpr double kConfidentProbability = 0.5;

struct NextTokenComparison {
  std::vector<double> kl;          // [positions] KL(P_a || P_b), nats, clamped at 0
  std::vector<uint8_t> agree;      // [positions] 1 where argmax a == argmax b (ties: lowest id)
  std::vector<float> confidence;   // [positions] P_a(argmax a)
  double mean_kl = 0;              // over positions
  double max_kl = 0;
  double top1_agreement = 1;       // fraction of positions whose argmax agrees
  double confident_share = 0;      // fraction of positions with confidence >= kConfidentProbability
  double confident_top1 = 1;       // top-1 agreement over those positions (1 when there are none)

  void resize(size_t positions) {
    kl.resize(positions);
    agree.resize(positions);
    confidence.resize(positions);
  }
};

// Logit rows per chunk of Engine::compare_next_token: two [256, vocab] fp32 chunks are 311 MB at a
// 151936-token vocabulary.
constexpr int64_t kNextTokenChunkRows = 256;

// chunk_rows <= 0 means kNextTokenChunkRows.
inline int64_t next_token_chunk_rows(int64_t chunk_rows) { return chunk_rows > 0 ? chunk_rows : kNextTokenChunkRows; }

// Per row r of logits_a, logits_b [rows, vocab]: kl[r] = KL(softmax(a_r) || softmax(b_r)) in double
// (stable log-softmax, clamped at 0 against rounding), agree[r] = argmax a_r == argmax b_r (ties:
// lowest id) and confidence[r] = softmax(a_r) at argmax a_r. Rows are split over n_threads (<= 0:
// all cores).
void compare_logit_rows(const float* logits_a, const float* logits_b, int64_t rows, int64_t vocab, double* kl,
                        uint8_t* agree, float* confidence, int n_threads);

// Sets mean_kl, max_kl, top1_agreement, confident_share and confident_top1 from kl, agree and
// confidence (0, 0, 1, 0 and 1 when there are no positions).
void summarise_next_token(NextTokenComparison& comparison);

}  // namespace hc

#pragma once
// The CPU backend of the prefill engine: float32, Eigen GEMMs, dense_attention_ref for attention.
// For small runs, tests and machines without a GPU (SmolLM2 at 1K tokens in tens of seconds).
#include <memory>

#include "calib/engine.h"
#include "calib/llama_weights.h"

namespace hc {

class CpuEngine : public Engine {
 public:
  CpuEngine(LlamaWeights weights, int n_threads);
  PrefillResult prefill(const PrefillRequest& request) override;
  NextTokenComparison compare_next_token(const float* hidden_a, const float* hidden_b, int64_t positions,
                                         int64_t chunk_rows) override;
  const ModelConfig& config() const override { return weights_.config; }
  std::string backend() const override { return "cpu"; }

 private:
  // logits [rows, vocab] = normed [rows, hidden] x output matrix^T: the prefill's logits and
  // compare_next_token's chunks.
  void output_logits(const float* normed, int64_t rows, float* logits) const;

  LlamaWeights weights_;
  int n_threads_;
};

}  // namespace hc

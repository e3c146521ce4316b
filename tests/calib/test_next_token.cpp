// Engine::compare_next_token: the chunked next-token comparison from final hidden states against
// compare_logits over every position's logits, on the CPU (GGUF fixtures) and on CUDA ([gpu]).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "calib/cuda_engine.h"
#include "calib/engine.h"
#include "calib/next_token.h"
#include "calib/random_model.h"
#include "calib/validate.h"
#include "catch.h"
#include "io/model/model_file.h"
#include "io/prompt/prompt.h"
#include "kernels/attention/attention_ref.h"

namespace {

// Per-row reference from full logits [rows, vocab].
hc::NextTokenComparison reference_rows(const std::vector<float>& logits_a, const std::vector<float>& logits_b,
                                       int64_t rows, int64_t vocab) {
  hc::NextTokenComparison ref;
  ref.resize(static_cast<size_t>(rows));
  hc::compare_logit_rows(logits_a.data(), logits_b.data(), rows, vocab, ref.kl.data(), ref.agree.data(),
                         ref.confidence.data(), 2);
  hc::summarise_next_token(ref);
  return ref;
}

// Largest minus second largest value of a row [vocab]: below a rounding-sized gap the argmax of two
// computations of the same row may differ.
double top2_gap(const float* row, int64_t vocab) {
  double first = -INFINITY, second = -INFINITY;
  for (int64_t t = 0; t < vocab; ++t) {
    const double v = row[t];
    if (v > first) {
      second = first;
      first = v;
    } else if (v > second) {
      second = v;
    }
  }
  return first - second;
}

}  // namespace

TEST_CASE("compare_logit_rows: per-row KL and agreement against hand-computed values", "[next_token]") {
  // As compare_logits' hand test: row 0 P_a = (1/4, 3/4) vs uniform (b's tie goes to id 0),
  // row 1 identical, row 2 mirrored.
  const std::vector<float> a = {0.f, std::log(3.f), 1.f, 2.f, 5.f, 1.f};  // [3, 2]
  const std::vector<float> b = {7.f, 7.f, 1.f, 2.f, 1.f, 5.f};            // [3, 2]
  const double kl0 = 0.25 * std::log(0.5) + 0.75 * std::log(1.5);
  const double p = 1.0 / (1.0 + std::exp(-4.0));
  const double kl2 = p * std::log(p / (1 - p)) + (1 - p) * std::log((1 - p) / p);
  const hc::NextTokenComparison c = reference_rows(a, b, 3, 2);
  CHECK(c.kl[0] == Approx(kl0).epsilon(1e-6));
  CHECK(c.kl[1] == 0.0);
  CHECK(c.kl[2] == Approx(kl2).epsilon(1e-6));
  CHECK(c.agree == std::vector<uint8_t>{0, 1, 0});
  CHECK(c.mean_kl == Approx((c.kl[0] + c.kl[2]) / 3).epsilon(1e-12));
  CHECK(c.max_kl == c.kl[2]);
  CHECK(c.top1_agreement == Approx(1.0 / 3.0));
  // P_a at its argmax: 3/4, e^2 / (e + e^2), 1 / (1 + e^-4); all of them sure (two tokens).
  CHECK(c.confidence[0] == Approx(0.75).epsilon(1e-6));
  CHECK(c.confidence[1] == Approx(1.0 / (1.0 + std::exp(-1.0))).epsilon(1e-6));
  CHECK(c.confidence[2] == Approx(p).epsilon(1e-6));
  CHECK(c.confident_share == 1.0);
  CHECK(c.confident_top1 == c.top1_agreement);

  hc::NextTokenComparison empty;
  hc::summarise_next_token(empty);
  CHECK(empty.mean_kl == 0.0);
  CHECK(empty.max_kl == 0.0);
  CHECK(empty.top1_agreement == 1.0);
  CHECK(empty.confident_share == 0.0);
  CHECK(empty.confident_top1 == 1.0);
  CHECK(hc::next_token_chunk_rows(0) == hc::kNextTokenChunkRows);
  CHECK(hc::next_token_chunk_rows(-3) == hc::kNextTokenChunkRows);
  CHECK(hc::next_token_chunk_rows(5) == 5);
}

TEST_CASE("compare_logit_rows: top-1 agreement where run a is sure of its argmax", "[next_token]") {
  // Four rows of three tokens. Row 0: a uniform (P 1/3 at its argmax, id 0), b prefers id 2: a flip
  // at an unsure position. Row 1: a sure of id 2 (P = e^3 / (2 + e^3) = 0.909), b agrees. Row 2: a
  // sure of id 1, b prefers id 0: a flip at a sure position. Row 3: a's top two tie at
  // e^1 / (1 + 2 e^1) = 0.42, below one half: unsure, and b agrees.
  const std::vector<float> a = {0.f, 0.f, 0.f, 0.f, 0.f, 3.f, 0.f, 4.f, 0.f, 1.f, 1.f, 0.f};  // [4, 3]
  const std::vector<float> b = {0.f, 0.f, 2.f, 0.f, 0.f, 3.f, 4.f, 0.f, 0.f, 1.f, 1.f, 0.f};  // [4, 3]
  const hc::NextTokenComparison c = reference_rows(a, b, 4, 3);
  CHECK(c.agree == std::vector<uint8_t>{0, 1, 0, 1});
  CHECK(c.confidence[0] == Approx(1.0 / 3.0).epsilon(1e-6));
  CHECK(c.confidence[1] == Approx(std::exp(3.0) / (2 + std::exp(3.0))).epsilon(1e-6));
  CHECK(c.confidence[2] == Approx(std::exp(4.0) / (2 + std::exp(4.0))).epsilon(1e-6));
  CHECK(c.confidence[3] == Approx(std::exp(1.0) / (1 + 2 * std::exp(1.0))).epsilon(1e-6));
  CHECK(c.top1_agreement == 0.5);
  CHECK(c.confident_share == 0.5);   // rows 1 and 2
  CHECK(c.confident_top1 == 0.5);    // row 1 agrees, row 2 flips
  // Only the unsure rows flip: every sure position agrees.
  const std::vector<float> b2 = {0.f, 0.f, 2.f, 0.f, 0.f, 3.f, 0.f, 4.f, 0.f, 0.f, 1.f, 0.f};  // [4, 3]
  const hc::NextTokenComparison c2 = reference_rows(a, b2, 4, 3);
  CHECK(c2.agree == std::vector<uint8_t>{0, 1, 1, 0});
  CHECK(c2.top1_agreement == 0.5);
  CHECK(c2.confident_top1 == 1.0);
}

TEST_CASE("CPU engine: chunked compare_next_token equals compare_logits over full logits", "[next_token]") {
  // Untied lm_head (qwen2, vocab 64) and tied embeddings with a 1201-token vocabulary.
  for (const char* fixture : {"good_tiny_qwen2.gguf", "good_tiny_llama_tokenizer.gguf"}) {
    auto model = hc::open_model(hc::test::data_path(fixture));
    auto engine = hc::make_cpu_engine(*model, 2);
    const hc::ModelConfig& c = engine->config();
    for (int64_t n : {37, 70}) {
      INFO(fixture << ", N " << n);
      hc::PrefillRequest req;
      req.tokens = hc::random_token_ids(n, c.vocab, 9);
      req.want_logits = true;  // every position
      req.want_final_hidden = true;
      const hc::PrefillResult dense = engine->prefill(req);
      // A perturbed run, as a sparse one would be: head 0 of layer 0 loses its attention output,
      // layer 1's output is scaled by 1.5.
      req.attention_override = [](const hc::LayerAttentionInput& in, float* o, float* lse) {
        hc::kernels::dense_attention_ref(in.dims, in.q, in.k, in.v, o, lse, 1);
        const int64_t hd = in.dims.head_dim, row = in.dims.n_heads * hd;
        for (int64_t t = 0; t < in.dims.n_tokens; ++t)
          for (int64_t i = 0; i < row; ++i) {
            float& x = o[t * row + i];
            if (in.layer == 0 && i < hd) x = 0.f;
            if (in.layer == 1) x *= 1.5f;
          }
      };
      const hc::PrefillResult other = engine->prefill(req);
      REQUIRE(dense.logits.size() == static_cast<size_t>(n * c.vocab));
      REQUIRE(other.logits.size() == dense.logits.size());
      REQUIRE(dense.final_hidden.size() == static_cast<size_t>(n * c.hidden));

      const hc::LogitComparison full = hc::compare_logits(dense.logits.data(), other.logits.data(), n, c.vocab, 2);
      const hc::NextTokenComparison ref = reference_rows(dense.logits, other.logits, n, c.vocab);
      CHECK(ref.mean_kl == full.mean_kl);
      CHECK(ref.max_kl == full.max_kl);
      CHECK(ref.top1_agreement == full.top1_agreement);
      // The perturbation moves every distribution, and some argmaxes.
      CHECK(full.mean_kl > 1e-4);
      CHECK(full.top1_agreement < 1.0);
      CHECK(*std::min_element(ref.kl.begin(), ref.kl.end()) > 0.0);

      for (int64_t chunk : {int64_t{1}, int64_t{8}, int64_t{16}, n, int64_t{0}}) {
        INFO("chunk rows " << chunk);
        const hc::NextTokenComparison got =
            engine->compare_next_token(dense.final_hidden.data(), other.final_hidden.data(), n, chunk);
        REQUIRE(got.kl.size() == static_cast<size_t>(n));
        REQUIRE(got.agree.size() == static_cast<size_t>(n));
        for (int64_t r = 0; r < n; ++r) {
          INFO("position " << r);
          CHECK(got.kl[static_cast<size_t>(r)] == Approx(ref.kl[static_cast<size_t>(r)]).epsilon(1e-6).margin(1e-12));
          CHECK(got.agree[static_cast<size_t>(r)] == ref.agree[static_cast<size_t>(r)]);
          CHECK(got.confidence[static_cast<size_t>(r)] == Approx(ref.confidence[static_cast<size_t>(r)]).epsilon(1e-6));
        }
        CHECK(got.mean_kl == Approx(full.mean_kl).epsilon(1e-6));
        CHECK(got.max_kl == Approx(full.max_kl).epsilon(1e-6));
        CHECK(got.top1_agreement == full.top1_agreement);
        CHECK(got.confident_share == ref.confident_share);
        CHECK(got.confident_top1 == ref.confident_top1);
      }

      // Identical inputs: zero KL and full agreement at every position.
      const hc::NextTokenComparison same =
          engine->compare_next_token(dense.final_hidden.data(), dense.final_hidden.data(), n, 8);
      CHECK(same.max_kl == 0.0);
      CHECK(same.top1_agreement == 1.0);
    }
  }
}

TEST_CASE("CPU engine: compare_next_token over no positions", "[next_token]") {
  hc::RandomModel model(hc::tiny_llama_config(), 2, "tiny");
  auto engine = hc::make_cpu_engine(model, 2);
  const hc::NextTokenComparison none = engine->compare_next_token(nullptr, nullptr, 0, 0);
  CHECK(none.kl.empty());
  CHECK(none.mean_kl == 0.0);
  CHECK(none.top1_agreement == 1.0);
}

TEST_CASE("CUDA engine: chunked compare_next_token equals compare_logits on its own logits", "[next_token][gpu]") {
  HC_REQUIRE_GPU();
  hc::ModelConfig tied = hc::tiny_llama_config();  // d128, MQA, tied embeddings, odd-sized vocab
  tied.n_heads = 4;
  tied.n_kv_heads = 1;
  tied.head_dim = 128;
  tied.tie_embeddings = true;
  tied.vocab = 1001;
  for (const hc::ModelConfig& cfg : {hc::tiny_llama_config(), tied}) {
    hc::RandomModel model(cfg, 13, "test");
    auto gpu = hc::make_cuda_engine(model);
    auto cpu = hc::make_cpu_engine(model, 2);
    for (int64_t n : {37, 300}) {
      INFO("vocab " << cfg.vocab << ", N " << n);
      // Two prompts that share their first 10 tokens: identical distributions there, others after.
      hc::PrefillRequest req;
      req.tokens = hc::random_token_ids(n, cfg.vocab, 21);
      req.want_logits = true;  // every position
      req.want_final_hidden = true;
      std::vector<int32_t> changed = req.tokens;
      for (int64_t t = 10; t < n; t += 7)
        changed[static_cast<size_t>(t)] = static_cast<int32_t>((changed[static_cast<size_t>(t)] + 5) % cfg.vocab);
      const hc::PrefillResult a = gpu->prefill(req);
      req.tokens = changed;
      const hc::PrefillResult b = gpu->prefill(req);
      REQUIRE(a.logits.size() == static_cast<size_t>(n * cfg.vocab));
      const hc::LogitComparison full = hc::compare_logits(a.logits.data(), b.logits.data(), n, cfg.vocab, 2);
      const hc::NextTokenComparison ref = reference_rows(a.logits, b.logits, n, cfg.vocab);
      CHECK(full.mean_kl > 1e-3);

      // Chunk rows 0 (the default, 256) cut the positions as the prefill's logits chunks do: the
      // same bf16 inputs through GEMMs of the same shape give the same logits, so the kernel's KL
      // (double, parallel sums) matches compare_logits' (double, sequential) to rounding and the
      // argmax flags exactly. Chunks of 7 and 64 rows run GEMMs of other shapes, whose fp32
      // accumulation may round differently: logits of magnitude ~100 (the tied model) may move by
      // ~1e-4, so the KL agrees to 1e-3 relative + 1e-3.
      for (int64_t chunk : {int64_t{0}, int64_t{7}, int64_t{64}}) {
        INFO("chunk rows " << chunk);
        const bool same_shapes = chunk == 0;
        const double rel = same_shapes ? 1e-9 : 1e-3, abs = same_shapes ? 1e-9 : 1e-3;
        const hc::NextTokenComparison got =
            gpu->compare_next_token(a.final_hidden.data(), b.final_hidden.data(), n, chunk);
        REQUIRE(got.kl.size() == static_cast<size_t>(n));
        REQUIRE(got.agree.size() == static_cast<size_t>(n));
        for (int64_t r = 0; r < n; ++r) {
          INFO("position " << r << ", reference KL " << ref.kl[static_cast<size_t>(r)]);
          const size_t i = static_cast<size_t>(r);
          CHECK(std::abs(got.kl[i] - ref.kl[i]) <= rel * ref.kl[i] + abs);
          if (r < 10) CHECK(got.kl[i] <= 1e-9);  // identical prefix: identical logits
          const double gap = std::min(top2_gap(a.logits.data() + r * cfg.vocab, cfg.vocab),
                                      top2_gap(b.logits.data() + r * cfg.vocab, cfg.vocab));
          if (same_shapes || gap > 1e-2) CHECK(got.agree[i] == ref.agree[i]);
          CHECK(got.confidence[i] == Approx(ref.confidence[i]).epsilon(same_shapes ? 1e-6 : 1e-3));
        }
        CHECK(got.mean_kl == Approx(full.mean_kl).epsilon(rel).margin(abs));
        CHECK(got.max_kl == Approx(full.max_kl).epsilon(rel).margin(abs));
        if (same_shapes) CHECK(got.top1_agreement == full.top1_agreement);
        if (same_shapes) CHECK(got.confident_top1 == ref.confident_top1);
        else CHECK(std::abs(got.top1_agreement - full.top1_agreement) <= 2.0 / static_cast<double>(n));
      }

      // Against the CPU engine's fp32 run of the same prompts: bf16 weights and activations move
      // the logits by ~1% of their spread, so the mean KL agrees to a loose bound only, and argmaxes
      // within a few hundredths of the runner-up (about a fifth of the rows at vocab 512) may flip.
      req.tokens = hc::random_token_ids(n, cfg.vocab, 21);
      const hc::PrefillResult ca = cpu->prefill(req);
      req.tokens = changed;
      const hc::PrefillResult cb = cpu->prefill(req);
      const hc::NextTokenComparison on_cpu =
          cpu->compare_next_token(ca.final_hidden.data(), cb.final_hidden.data(), n, 16);
      const hc::NextTokenComparison on_gpu =
          gpu->compare_next_token(a.final_hidden.data(), b.final_hidden.data(), n, 16);
      INFO("mean KL cpu " << on_cpu.mean_kl << ", gpu " << on_gpu.mean_kl);
      CHECK(on_cpu.mean_kl > 1e-3);
      CHECK(std::abs(on_cpu.mean_kl - on_gpu.mean_kl) <= 0.3 * on_cpu.mean_kl + 0.02);
      CHECK(std::abs(on_cpu.top1_agreement - on_gpu.top1_agreement) <= 0.25);
    }
  }
}


#pragma once
// Time to first token of a whole prefill, dense against a profile's sparse attention, as a server
// runs it (`headcal bench prefill`, and what `validate`'s attention times mean): one prefill
// computing only the last position's logits, attention dense (the dense kernel) or planned and run
// per layer (kernels/sparse/layer_plan.h), nothing else inside the timing (no dense reference, no
// probe, no all-position logits). The per-layer attention times come from CUDA events around the
// dense kernel and around plan + run in those same prefills.
#include <cstdint>
#include <vector>

#include "calib/cuda_engine.h"
#include "io/calibration/profile.h"

namespace hc {

struct PrefillTimes {
  int64_t n_tokens = 0;
  int repeats = 0;
  double dense_ttft_s = 0;        // median over repeats, whole prefill (host wall clock)
  double sparse_ttft_s = 0;
  double dense_attention_s = 0;   // median over repeats of the layers' summed attention (events)
  double sparse_attention_s = 0;  // plan + run, summed over layers
  double plan_s = 0;              // the plans' part of sparse_attention_s
  std::vector<double> layer_dense_s, layer_sparse_s;  // [layers], medians
  // The profile's density on this prompt at this N (kernel pairs x 4d + estimator FLOPs over the
  // dense cost, as validate reports it), from one more, untimed, sparse prefill in probe mode.
  double density = 0;
};

// Runs one untimed warm-up of each, then `repeats` timed dense and sparse prefills alternately,
// then the untimed density measurement.
// The profile must have the engine's model's layers and heads (InputError otherwise).
PrefillTimes time_prefill_cuda(CudaEngine& engine, const Profile& profile, const std::vector<int32_t>& tokens,
                               int repeats);

}  // namespace hc

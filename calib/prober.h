#pragma once
// Candidate probes (DESIGN.md "Calibration = record + search"): every head of a recorded layer is
// run on every grid candidate with the sparse kernels in probe mode. The kernel sums
// exp(s - LSE_dense) over what it computes (the recall) and returns its output, whose distance to
// the dense output is the candidate's out_err. Cost and density follow kernels/sparse/cost.h.
//
// CPU prober: one head at a time, every candidate measured in one pass over the head's attention
// (kernels/sparse/grid_probe_ref.h); the vertical-slash and block-sparse estimates are computed
// once per head and shared by the probe and the candidates' indexes (which give the cost).
// CUDA prober, on the engine's bf16 device tensors: the a_shape, vertical_slash and block_sparse
// candidates by the GPU grid probe (kernels/sparse/grid_probe_gpu.h, a few sweeps for the whole
// grid); any other, and any the sweeps leave unmeasured, by the layer planner (kernels/sparse/layer_plan.h, one "layer" per candidate) and the
// index-driven kernel in probe mode, all heads of a candidate in one launch (calib/kernel_probe.h).
#include <memory>

#include "calib/record.h"
#include "io/calibration/grid.h"
#include "kernels/sparse/pattern.h"

namespace hc {

std::unique_ptr<CandidateProber> make_cpu_prober(const Grid& grid, const PatternDefaults& defaults,
                                                 int n_threads = 0);

// Throws hc::DeviceError when headcal was built without CUDA.
std::unique_ptr<CandidateProber> make_cuda_prober(const Grid& grid, const PatternDefaults& defaults);

// A grid candidate (or a profile entry's, via candidate()) as the kernels' config: Pattern and
// kernels::Pattern carry the same integer values (io/calibration/grid.h).
kernels::PatternConfig pattern_config(const GridCandidate& c);

// The vertical-slash estimator's settings of a profile's or atlas's pattern defaults.
kernels::EstimatorSettings estimator_settings(const PatternDefaults& defaults);

// ||a - b||_F / ||b||_F over one head of [N, H, d] tensors (kernels::output_error).
double head_relative_error(const float* a, const float* b, int64_t n_tokens, int64_t n_heads,
                           int64_t head_dim, int64_t head);

}  // namespace hc

#pragma once
// A layer's heads measured on a kernel run (CUDA builds): the planner's last built index run in
// probe mode by the index-driven kernel on every head. The kernel sums exp(s - LSE_dense) over
// what it computes (the recall) and counts the pairs (the cost); its bf16 output against the
// layer's dense output gives out_err. What the CUDA prober does for the candidates the GPU grid
// probe leaves, what validate measures a profile's layer with, and what `headcal bench probe
// --device cuda` compares the grid probe with.
#include <vector>

#include "calib/cuda_engine.h"
#include "kernels/sparse/grid_probe_gpu.h"
#include "kernels/sparse/layer_plan.h"

namespace hc {

// [H] measures of the heads' configs (whose index the planner built last) on layer `a` (its o and
// lse: the dense output and LSE). sparse_o: the sparse output of that index already computed
// (bf16 [N, H, d]), compared as it is; null: the probe run writes one. Synchronises a.stream.
std::vector<kernels::GridProbeMeasure> kernel_probe(kernels::LayerPlanner& planner, const DeviceLayerAttention& a,
                                                    const std::vector<kernels::PatternConfig>& per_head,
                                                    const kernels::EstimatorSettings& settings,
                                                    const void* sparse_o = nullptr);

}  // namespace hc

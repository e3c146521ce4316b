#pragma once
// headcal::kernels — the exported attention kernels library, one header.
//
//   find_package(headcalKernels REQUIRED)
//   target_link_libraries(app PRIVATE headcal::kernels)
//   #include <kernels/headcal_kernels.h>
//
// CUDA (device pointers, need a CUDA build of the library):
//   dense_attention_forward / sparse_attention_forward   kernels/attention/attention.h
//   LayerPlanner: plan/run of a layer's mixed per-head     kernels/sparse/layer_plan.h
//     index (the deployment path)
//   build_*_index_gpu, DeviceSparseIndex                 kernels/sparse/index_gpu.h
// Host (plain C++, float32 references with the same semantics):
//   dense_attention_ref                                   kernels/attention/attention_ref.h
//   build_*_index, SparseIndex, patterns, cost, coverage  kernels/sparse/*.h
//   sparse_attention_ref (with probe mode)                kernels/sparse/sparse_attention_ref.h
// Errors are the hc::Error family of common/error.h (InputError for bad arguments,
// DeviceError for CUDA failures).
#include "common/error.h"
#include "kernels/attention/attention_ref.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/coverage.h"
#include "kernels/sparse/index_ref.h"
#include "kernels/sparse/pattern.h"
#include "kernels/sparse/sparse_attention_ref.h"
#include "kernels/sparse/sparse_index.h"

#if defined(__CUDACC__) || __has_include(<cuda_runtime_api.h>)
#include "kernels/attention/attention.h"
#include "kernels/sparse/index_gpu.h"
#include "kernels/sparse/layer_plan.h"
#endif

#pragma once
// The kernels' argument structs for one layer's device attention as the CUDA engine hands it over
// (DeviceAttentionInput: bf16 q, k, v after RoPE, with their row strides): what validate, the
// prober and bench prefill pass to the attention kernels and the layer planner. CUDA builds only.
#include "calib/engine.h"
#include "kernels/attention/attention.h"
#include "kernels/sparse/index_gpu.h"
#include "kernels/sparse/layer_plan.h"

namespace hc {

// q, k, v, shape and strides of `in`; o and lse as given (either may be null in probe mode).
inline kernels::AttentionParams attention_params(const DeviceAttentionInput& in, void* o, float* lse) {
  kernels::AttentionParams p;
  p.q = in.q;
  p.k = in.k;
  p.v = in.v;
  p.o = o;
  p.lse = lse;
  p.n_tokens = static_cast<int>(in.dims.n_tokens);
  p.n_heads = static_cast<int>(in.dims.n_heads);
  p.n_kv_heads = static_cast<int>(in.dims.n_kv_heads);
  p.head_dim = static_cast<int>(in.dims.head_dim);
  p.dtype = kernels::AttnDType::kBF16;
  p.q_row_stride = in.q_row_stride;
  p.k_row_stride = in.k_row_stride;
  p.v_row_stride = in.v_row_stride;
  return p;
}

// The layer planner's shape for attention of `dims` (cuda_attention_dims for a model's layers).
inline kernels::LayerShape layer_shape(const kernels::AttentionDims& dims) {
  return kernels::LayerShape{static_cast<int>(dims.n_tokens), static_cast<int>(dims.n_heads),
                             static_cast<int>(dims.n_kv_heads), static_cast<int>(dims.head_dim)};
}

// q and k of `in`, for the index estimators.
inline kernels::GpuQK gpu_qk(const DeviceAttentionInput& in) {
  kernels::GpuQK qk;
  qk.q = in.q;
  qk.k = in.k;
  qk.dtype = kernels::AttnDType::kBF16;
  qk.n_tokens = static_cast<int>(in.dims.n_tokens);
  qk.n_heads = static_cast<int>(in.dims.n_heads);
  qk.n_kv_heads = static_cast<int>(in.dims.n_kv_heads);
  qk.head_dim = in.dims.head_dim;
  qk.q_row_stride = in.q_row_stride;
  qk.k_row_stride = in.k_row_stride;
  return qk;
}

}  // namespace hc

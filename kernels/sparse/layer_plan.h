#pragma once
// Plan/run for the layers of a profile (flashinfer's split), over raw device pointers:
//   plan   builds one layer's index, every head on its own pattern, from the layer's Q and K:
//          a fixed number of launches, no host synchronisation, no device allocation (one
//          workspace, sized when the planner is made for the profile, the model and a longest N);
//   run    computes every head of the layer in one launch of the index-driven attention kernel
//          (a layer whose heads are all dense runs the dense kernel and needs no index).
//
//   LayerPlanner planner(profile_layers, {max_tokens, heads, kv_heads, head_dim}, settings);
//   for each layer l: planner.plan(l, qk, stream); planner.run(attention_params, stream);
//
// Head groups: a layer's index is sized for the worst case of its heads' patterns (every offset
// its own range, every column kept in every row block), which at long N can pass the workspace
// cap or the index's int32 offsets (Llama-3-8B's shape at 1M tokens with vertical_slash(1000,
// 6096) on every head: up to 2.6e9 ranges). The planner then works in groups of whole KV groups, each
// through the same workspace: plan builds the first group's index, run runs it and then plans and
// runs each further group (one launch per group). index() is the current group's.
//
// Launches of a plan: the vertical-slash estimate (3) and selection (1) when the layer has such
// heads; block-sparse pooling (1) and selection (1) when it has those, on a second stream beside
// the vertical-slash ones; the slots counted, placed by look-back and filled (1); the merge of the gathered
// columns (1) when it has columns. The index is the one
// build_index (index_ref.h) gives on the CPU for the same per-head configs (estimator arithmetic
// fp32 here, as for the other GPU builders: index_gpu.h).
#include <cuda_runtime_api.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "kernels/attention/attention.h"
#include "kernels/sparse/index_gpu.h"
#include "kernels/sparse/pattern.h"
#include "kernels/sparse/sparse_index.h"

namespace hc::kernels {

// What the workspace is sized for.
struct LayerShape {
  int max_tokens = 0;  // plans take any n_tokens in 1 .. max_tokens
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;  // 64 or 128
};

class LayerPlanner {
 public:
  // The workspace's default ceiling: head groups past it (8 GiB: a whole layer of Llama-3-8B's
  // shape up to 256K tokens under MInference's vertical_slash(1000, 6096) on every head).
  static constexpr int64_t kDefaultWorkspaceCap = int64_t(8) << 30;

  // layers[l][h]: the pattern of query head h in layer l (a profile's layers; or, for a prober,
  // one "layer" per candidate with every head on it). Checks every config (check_config) and the
  // shape, then allocates the workspace (on `stream`'s device). Throws hc::InputError on bad
  // configs or shapes, hc::DeviceError when the workspace does not fit. workspace_cap: the heads
  // are planned in groups of whole KV groups where the whole layer's workspace would pass it.
  LayerPlanner(const std::vector<std::vector<PatternConfig>>& layers, const LayerShape& shape,
               const EstimatorSettings& settings = {}, cudaStream_t stream = nullptr,
               int64_t workspace_cap = kDefaultWorkspaceCap);
  ~LayerPlanner();
  LayerPlanner(LayerPlanner&&) noexcept;
  LayerPlanner& operator=(LayerPlanner&&) noexcept;

  // Enqueues the layer's index build on `stream`: estimate (the kinds this layer needs), then
  // build. qk: the layer's q [N, H, d] and k [N, Hkv, d] on the device, N <= max_tokens. A layer
  // whose heads are all dense builds nothing (run takes the dense kernel).
  void plan(int layer, const GpuQK& qk, cudaStream_t stream = nullptr);

  // The two halves of plan, for callers that build several layers' indexes from one Q and K
  // (the prober, one layer per candidate): estimate runs every estimate any layer needs; build
  // selects and writes one layer's index from the last estimate (also for an all-dense layer).
  void estimate(const GpuQK& qk, cudaStream_t stream = nullptr);
  void build(int layer, cudaStream_t stream = nullptr);

  // The last built index (device memory, valid until the next build; in head groups, the current
  // group's). Its totals stay on the device: total_cols is -1 and col_capacity the workspace's
  // bound.
  SparseIndexView index() const;

  // The last planned layer's attention: params as for sparse_attention_forward (n_tokens,
  // heads and head_dim those of the plan). One launch of the index-driven kernel, or of the dense
  // kernel for an all-dense layer. Probe mode (params.probe_lse set) runs the probe kernel over
  // the index (built first if the plan skipped it).
  void run(const AttentionParams& params, cudaStream_t stream = nullptr);

  int layers() const;
  bool all_dense(int layer) const;
  int64_t workspace_bytes() const;
  // The query heads planned together (the layer's, or a group of whole KV groups).
  int heads_per_group() const;
  // The device memory a planner for these layers and shape allocates (checks as the constructor).
  static int64_t workspace_bytes(const std::vector<std::vector<PatternConfig>>& layers, const LayerShape& shape,
                                 const EstimatorSettings& settings = {},
                                 int64_t workspace_cap = kDefaultWorkspaceCap);

  struct Impl;  // layer_plan.cu

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace hc::kernels

#include "bench/bench_probe.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <random>
#include <thread>

#include <nlohmann/json.hpp>

#include "calib/prober.h"
#include "common/error.h"
#include "common/stopwatch.h"
#include "io/calibration/grid.h"
#include "io/calibration/profile.h"
#include "kernels/attention/attention_ref.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/grid_probe_ref.h"
#include "kernels/sparse/index_ref.h"
#include "kernels/sparse/sparse_attention_ref.h"

namespace hc::bench {
namespace {

void check_options(const ProbeBenchOptions& o) {
  if (o.device != "cpu" && o.device != "cuda") throw InputError("--device", "must be cpu or cuda");
  if (o.n_list.empty()) throw InputError("--n", "needs at least one length");
  // The CPU per-candidate side is O(N^2) per candidate; the GPU one holds int32 key indices.
  const int64_t max_n = o.device == "cpu" ? int64_t{1} << 16 : int64_t{1} << 21;
  for (int64_t n : o.n_list)
    if (n < 1 || n > max_n)
      throw InputError("--n", std::to_string(n) + " is outside 1 .. " + std::to_string(max_n) + " for --device " +
                                  o.device);
  if (o.heads < 1 || o.kv_heads < 1 || o.heads % o.kv_heads != 0)
    throw InputError("--heads", "needs a positive multiple of --kv-heads");
  if (o.head_dim != 64 && o.head_dim != 128) throw InputError("--head-dim", "must be 64 or 128");
}

int threads_of(const ProbeBenchOptions& o) {
  return o.threads > 0 ? o.threads : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

}  // namespace

std::vector<ProbeBenchRow> run_probe_bench(const ProbeBenchOptions& o) {
  check_options(o);
  if (o.device == "cuda") {
#if defined(HEADCAL_HAVE_CUDA)
    return run_probe_bench_gpu(o);
#else
    throw DeviceError("this headcal was built without CUDA: no GPU grid probe");
#endif
  }
  const int threads = threads_of(o);
  std::vector<ProbeBenchRow> rows;
  for (int64_t n : o.n_list) {
    const kernels::AttentionDims dims{n, o.heads, o.kv_heads, o.head_dim};
    std::mt19937_64 rng(o.seed + static_cast<uint64_t>(n));
    std::normal_distribution<float> normal(0.f, 1.f);
    std::vector<float> q(static_cast<size_t>(n * o.heads * o.head_dim));      // [N, H, d]
    std::vector<float> k(static_cast<size_t>(n * o.kv_heads * o.head_dim));   // [N, Hkv, d]
    std::vector<float> v(k.size());                                            // [N, Hkv, d]
    for (auto* t : {&q, &k, &v})
      for (float& x : *t) x = normal(rng);
    std::vector<float> o_ref(q.size());  // [N, H, d]
    kernels::dense_attention_ref(dims, q.data(), k.data(), v.data(), o_ref.data(), nullptr);

    const Grid grid = default_grid(n);
    std::vector<kernels::PatternConfig> configs;
    for (const GridCandidate& c : grid.candidates) configs.push_back(pattern_config(c));
    const kernels::EstimatorSettings settings;
    ProbeBenchRow row;
    row.n_tokens = n;
    row.candidates = configs.size();

    std::vector<std::vector<kernels::CandidateMeasure>> fast(static_cast<size_t>(o.heads));
    const SteadyClock::time_point t0 = SteadyClock::now();
    for (int h = 0; h < o.heads; ++h) {
      const auto vs = kernels::vertical_slash_scores(q.data(), k.data(), dims, h, settings.last_q);
      const auto bs = kernels::block_scores(q.data(), k.data(), dims, h);
      kernels::GridProbeInputs in{dims, q.data(), k.data(), v.data(), o_ref.data(), &vs, &bs};
      fast[static_cast<size_t>(h)] = kernels::probe_grid_ref(in, h, configs, settings, threads);
    }
    row.one_pass_s = seconds_since(t0);

    const SteadyClock::time_point t1 = SteadyClock::now();
    std::vector<float> lse(static_cast<size_t>(o.heads * n));  // [H, N]
    std::vector<float> o_sparse(q.size());                      // [N, H, d]
    const kernels::SparseIndex dense = kernels::build_dense_index(n, 1);
    for (int h = 0; h < o.heads; ++h) {
      kernels::SparseRefOptions lse_options;
      lse_options.first_head = h;
      lse_options.n_threads = threads;
      kernels::sparse_attention_ref(dims, q.data(), k.data(), v.data(), dense.view(), nullptr, lse.data(), lse_options);
      const auto vs = kernels::vertical_slash_scores(q.data(), k.data(), dims, h, settings.last_q);
      const auto bs = kernels::block_scores(q.data(), k.data(), dims, h);
      for (size_t c = 0; c < configs.size(); ++c) {
        const kernels::PatternConfig& cfg = configs[c];
        const kernels::SparseIndex index = kernels::head_index_from_estimates(n, cfg, &vs, &bs, settings);
        kernels::SparseRefOptions probe_options = lse_options;
        probe_options.dense_lse = lse.data();
        kernels::SparseProbe probe;
        kernels::sparse_attention_ref(dims, q.data(), k.data(), v.data(), index.view(), o_sparse.data(), nullptr,
                                      probe_options, &probe);
        const double out_err = head_relative_error(o_sparse.data(), o_ref.data(), n, o.heads, o.head_dim, h);
        const kernels::CandidateMeasure& m = fast[static_cast<size_t>(h)][c];
        row.max_recall_diff = std::max(row.max_recall_diff, std::fabs(m.recall - probe.recall[0]));
        row.max_out_err_diff = std::max(row.max_out_err_diff, std::fabs(m.out_err - out_err));
      }
    }
    row.per_candidate_s = seconds_since(t1);
    rows.push_back(row);
  }
  return rows;
}

int bench_probe(const ProbeBenchOptions& o) {
  const std::vector<ProbeBenchRow> rows = run_probe_bench(o);
  const int threads = threads_of(o);
  const bool gpu = o.device == "cuda";
  if (gpu)
    std::printf("grid probe on the GPU: %d heads (%d KV), d = %d, uniform bf16 q/k/v, default grid, against the "
                "index-driven kernel per candidate\n",
                o.heads, o.kv_heads, o.head_dim);
  else
    std::printf("grid probe on the CPU, %d threads: %d heads (%d KV), d = %d, Gaussian q/k/v, default grid\n", threads,
                o.heads, o.kv_heads, o.head_dim);
  std::printf("%8s %11s %12s %16s %8s %14s %15s", "N", "candidates", "one pass s", "per candidate s", "speedup",
              "max d recall", "max d out_err");
  std::printf(gpu ? " %11s %15s %24s\n" : "\n", "unmeasured", "cost mismatches", "tiles a_shape/vs/bs");
  for (const ProbeBenchRow& r : rows) {
    std::printf("%8lld %11zu %12.3f %16.3f %7.1fx %14.2e %15.2e", static_cast<long long>(r.n_tokens), r.candidates,
                r.one_pass_s, r.per_candidate_s, r.speedup(), r.max_recall_diff, r.max_out_err_diff);
    if (gpu)
      std::printf(" %11lld %15lld %10.2f/%.2f/%.2f\n", static_cast<long long>(r.unmeasured),
                  static_cast<long long>(r.cost_mismatches), r.a_shape_tiles, r.vertical_slash_tiles,
                  r.block_sparse_tiles);
    else
      std::printf("\n");
  }
  if (gpu)
    std::printf("tiles: the sweeps' 64-key tiles per family, in dense causal tiles of the layer\n");
  if (!o.json_out.empty()) {
    nlohmann::json j;
    j["format"] = "headcal-bench-probe";
    j["device"] = o.device;
    j["threads"] = threads;
    j["heads"] = o.heads;
    j["kv_heads"] = o.kv_heads;
    j["head_dim"] = o.head_dim;
    j["seed"] = o.seed;
    nlohmann::json out_rows = nlohmann::json::array();
    for (const ProbeBenchRow& r : rows)
      out_rows.push_back({{"n", r.n_tokens}, {"candidates", r.candidates}, {"one_pass_s", r.one_pass_s},
                          {"per_candidate_s", r.per_candidate_s}, {"speedup", r.speedup()},
                          {"max_recall_diff", r.max_recall_diff}, {"max_out_err_diff", r.max_out_err_diff},
                          {"unmeasured", r.unmeasured}, {"cost_mismatches", r.cost_mismatches},
                          {"a_shape_tiles", r.a_shape_tiles}, {"vertical_slash_tiles", r.vertical_slash_tiles},
                          {"block_sparse_tiles", r.block_sparse_tiles}});
    j["rows"] = out_rows;
    write_file_atomic(o.json_out, j.dump(1) + "\n");
    std::printf("wrote %s\n", o.json_out.c_str());
  }
  return 0;
}

}  // namespace hc::bench

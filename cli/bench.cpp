// headcal bench dense|sparse|calibrate|prefill. dense and sparse: kernel benchmarks
// (bench/bench_attention.cu); the comparison with PyTorch SDPA comes from bench/sdpa_baseline.py run
// on the same machine just before (--baseline FILE): times drift between machines, so ratios only
// compare timings of one run. calibrate: a calibration's stages (cli/bench_calibrate.cpp). prefill:
// the whole prefill's time to first token with a profile (bench/bench_prefill.cpp). probe: the CPU
// or GPU grid probe against one probe per candidate (bench/bench_probe.cpp, bench_probe_gpu.cu).
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_attention.h"
#include "bench/bench_prefill.h"
#include "bench/bench_probe.h"
#include "calib/device_select.h"
#include "cli/bench_calibrate.h"
#include "cli/command.h"
#include "cli/option_checks.h"
#include "common/error.h"

namespace hc::cli {
namespace {

// Runs a GPU benchmark. Bad options are reported as such (the benchmarks check them before touching
// the GPU); a CUDA failure on a machine without a device becomes the one "no CUDA device" message;
// a build without CUDA says so without calling `bench` (the benchmarks exist in CUDA builds only).
template <class Bench>
int run_gpu_bench(Bench&& bench) {
#if defined(HEADCAL_HAVE_CUDA)
  try {
    return bench();
  } catch (const hc::InputError&) {
    throw;
  } catch (const hc::Error&) {
    require_cuda_device();
    throw;
  }
#else
  (void)bench;
  require_cuda_device();  // throws: this build has no CUDA
  return 3;
#endif
}

// bench dense / bench sparse: the kernel benchmarks' options (--config for sparse only).
Runner setup_kernel_bench(CLI::App& sub, bool sparse) {
  auto o = std::make_shared<bench::KernelBenchOptions>();
  sub.add_option("--n", o->n_list, "token counts, comma-separated")->delimiter(',');
  sub.add_option("--d", o->d_list, "head dims (64, 128), comma-separated")->delimiter(',');
  sub.add_option("--heads", o->heads, "query heads (default: 32 for d=128, 9 for d=64)")
      ->check(CLI::PositiveNumber);
  sub.add_option("--kv-heads", o->kv_heads, "KV heads (default: 8 for d=128, 3 for d=64)")
      ->check(CLI::PositiveNumber);
  sub.add_flag("--fp16", o->fp16, "fp16 inputs instead of bf16");
  sub.add_option("--json", o->json_out, "also write the results as JSON to this file")
      ->check(output_file());
  sub.add_option("--baseline", o->baseline_json,
                 "JSON from bench/sdpa_baseline.py (same machine, same run) for the SDPA columns");
  if (sparse)
    sub.add_option("--config", o->configs,
                   "these configurations instead of MInference's usual six, separated by ; "
                   "(e.g. 'a_shape(64,512);vertical_slash(3500,100);block_sparse(16)')")
        ->delimiter(';');
  sub.add_option("--seconds", o->seconds_per_point, "timed seconds per measurement (3..30 runs)")
      ->check(CLI::PositiveNumber);
  return [o, sparse]() -> int {
    return run_gpu_bench([&] { return sparse ? bench::bench_sparse(*o) : bench::bench_dense(*o); });
  };
}

// bench prefill: time to first token, dense against a profile, over prompt lengths.
Runner setup_prefill_bench(CLI::App& sub) {
  auto o = std::make_shared<bench::PrefillBenchOptions>();
  sub.add_option("--model", o->model, "GGUF file, Hugging Face directory, or random:<shape>")->required();
  sub.add_option("--profile", o->profile, "the profile (YAML) whose sparse attention is timed")->required();
  sub.add_option("--n", o->n_list, "prompt lengths, comma-separated (default 4096,8192,16384,32768)")
      ->delimiter(',');
  sub.add_option("--repeats", o->repeats, "timed prefills of each kind per length (medians)")
      ->check(CLI::Range(1, 1000));
  sub.add_option("--generate", o->prompt.generator,
                 "prompt generator (default kv_retrieval; uniform random ids for random-weight models)")
      ->check(CLI::IsMember({"kv_retrieval", "passkey", "multi_needle", "random"}));
  sub.add_option("--seed", o->prompt.seed, "the generated prompts' seed");
  sub.add_flag("--allow-longer", o->prompt.allow_longer,
               "lengths beyond the model's context are a warning, not an error");
  sub.add_option("--json", o->json_out, "also write the results as JSON to this file")->check(output_file());
  return [o]() -> int { return run_gpu_bench([&] { return bench::bench_prefill(*o); }); };
}

// bench probe: a prober's grid probe (CPU, or with --device cuda the GPU's) against one probe
// per candidate.
Runner setup_probe_bench(CLI::App& sub) {
  auto o = std::make_shared<bench::ProbeBenchOptions>();
  // Lengths and shapes are checked by run_probe_bench, before any work.
  sub.add_option("--n", o->n_list, "token counts, comma-separated (default 512,1024,2048)")->delimiter(',');
  sub.add_option("--heads", o->heads, "query heads (default 9)");
  sub.add_option("--kv-heads", o->kv_heads, "KV heads (default 3)");
  sub.add_option("--head-dim", o->head_dim, "64 or 128 (default 64)");
  sub.add_option("--threads", o->threads, "CPU threads (default: every core)")->check(CLI::PositiveNumber);
  sub.add_option("--seed", o->seed, "the random inputs' seed");
  sub.add_option("--device", o->device,
                 "cpu (the CPU prober, default) or cuda (the GPU grid probe against the index-driven kernel)");
  sub.add_option("--json", o->json_out, "also write the results as JSON to this file")->check(output_file());
  return [o]() -> int {
    if (o->device == "cuda") return run_gpu_bench([&] { return bench::bench_probe(*o); });
    return bench::bench_probe(*o);
  };
}

Runner setup_bench(CLI::App& sub) {
  sub.require_subcommand(1);
  CLI::App* dense =
      sub.add_subcommand("dense", "dense flash attention (O + LSE), against PyTorch SDPA with --baseline");
  CLI::App* sparse =
      sub.add_subcommand("sparse", "the sparse kernel with GPU-built indices on MInference's usual configurations");
  CLI::App* calibrate =
      sub.add_subcommand("calibrate", "a whole calibration per prompt length, timed stage by stage (CPU or GPU)");
  CLI::App* prefill = sub.add_subcommand(
      "prefill", "time to first token of the whole prefill, dense against a profile's sparse attention");
  const Runner run_dense = setup_kernel_bench(*dense, false);
  const Runner run_sparse = setup_kernel_bench(*sparse, true);
  const Runner run_calibrate = setup_bench_calibrate(*calibrate);
  CLI::App* probe = sub.add_subcommand(
      "probe", "a prober's grid probe against one probe per candidate (CPU, or the GPU's with --device cuda)");
  const Runner run_prefill = setup_prefill_bench(*prefill);
  const Runner run_probe = setup_probe_bench(*probe);
  return [=]() -> int {
    if (probe->parsed()) return run_probe();
    if (dense->parsed()) return run_dense();
    if (sparse->parsed()) return run_sparse();
    if (prefill->parsed()) return run_prefill();
    return run_calibrate();
  };
}

}  // namespace

HC_REGISTER_COMMAND("bench",
                    "time the attention kernels (dense | sparse), a calibration's stages (calibrate), the "
                    "whole prefill with a profile (prefill) or the grid probe (probe)",
                    setup_bench);

}  // namespace hc::cli

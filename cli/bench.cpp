// headcal bench dense|sparse|prefill: kernel benchmarks (bench/bench_attention.cu) and the whole
// prefill's time to first token with a profile (bench/bench_prefill.cpp). The comparison with
// PyTorch SDPA comes from bench/sdpa_baseline.py run on the same machine just before (--baseline
// FILE): times drift between machines, so ratios only compare timings of one run.
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_attention.h"
#include "bench/bench_prefill.h"
#include "calib/device_select.h"
#include "cli/command.h"
#include "cli/option_checks.h"
#include "common/error.h"

namespace hc::cli {
namespace {

struct BenchCliOptions {
  std::string mode;
  std::vector<int> n_list;  // --n; empty: the mode's default lengths
  std::string json_out;
  bench::KernelBenchOptions kernel;
  bench::PrefillBenchOptions prefill;
};

Runner setup_bench(CLI::App& sub) {
  auto o = std::make_shared<BenchCliOptions>();
  sub.add_option("mode", o->mode,
                 "what to time: dense | sparse (kernels) | prefill (the whole prefill with --profile)")
      ->required()
      ->check(CLI::IsMember({"dense", "sparse", "prefill"}));
  sub.add_option("--n", o->n_list,
                 "token counts, comma-separated (kernels: 8192,32768,131072; prefill: 4096,8192,16384,32768)")
      ->delimiter(',');
  sub.add_option("--d", o->kernel.d_list, "head dims (64, 128), comma-separated")->delimiter(',');
  sub.add_option("--heads", o->kernel.heads, "query heads (default: 32 for d=128, 9 for d=64)")
      ->check(CLI::PositiveNumber);
  sub.add_option("--kv-heads", o->kernel.kv_heads, "KV heads (default: 8 for d=128, 3 for d=64)")
      ->check(CLI::PositiveNumber);
  sub.add_flag("--fp16", o->kernel.fp16, "fp16 inputs instead of bf16");
  sub.add_option("--json", o->json_out, "also write the results as JSON to this file")->check(output_file());
  sub.add_option("--model", o->prefill.model, "prefill: GGUF file, Hugging Face directory, or random:<shape>");
  sub.add_option("--profile", o->prefill.profile, "prefill: the profile (YAML) whose sparse attention is timed");
  sub.add_option("--repeats", o->prefill.repeats, "prefill: timed prefills of each kind per length (medians)")
      ->check(CLI::Range(1, 1000));
  sub.add_option("--generate", o->prefill.prompt.generator,
                 "prefill: prompt generator (default kv_retrieval; random for random-weight models)");
  sub.add_option("--seed", o->prefill.prompt.seed, "prefill: the generated prompts' seed");
  sub.add_flag("--allow-longer", o->prefill.prompt.allow_longer,
               "prefill: lengths beyond the model's context are a warning, not an error");
  sub.add_option("--baseline", o->kernel.baseline_json,
                 "JSON from bench/sdpa_baseline.py (same machine, same run) for the SDPA columns");
  sub.add_option("--config", o->kernel.configs,
                 "sparse: these configurations instead of MInference's usual six, separated by ; "
                 "(e.g. 'a_shape(64,512);vertical_slash(3500,100);block_sparse(16)')")
      ->delimiter(';');
  sub.add_option("--seconds", o->kernel.seconds_per_point, "timed seconds per measurement (3..30 runs)")
      ->check(CLI::PositiveNumber);
  return [o]() -> int {
#if defined(HEADCAL_HAVE_CUDA)
    // Bad options are reported as such (the benchmarks check them before touching the GPU); a
    // CUDA failure on a machine without a device becomes the one "no CUDA device" message.
    try {
      if (o->mode == "prefill") {
        if (o->prefill.model.empty() || o->prefill.profile.empty())
          throw InputError("bench prefill", "needs --model and --profile");
        if (!o->n_list.empty()) o->prefill.n_list = o->n_list;
        o->prefill.json_out = o->json_out;
        return bench::bench_prefill(o->prefill);
      }
      if (!o->n_list.empty()) o->kernel.n_list = o->n_list;
      o->kernel.json_out = o->json_out;
      return o->mode == "dense" ? bench::bench_dense(o->kernel) : bench::bench_sparse(o->kernel);
    } catch (const hc::InputError&) {
      throw;
    } catch (const hc::Error&) {
      require_cuda_device();
      throw;
    }
#else
    require_cuda_device();  // throws: this build has no CUDA
    return 3;
#endif
  };
}

}  // namespace

HC_REGISTER_COMMAND("bench", "time the attention kernels (dense | sparse) or the whole prefill (prefill)", setup_bench);

}  // namespace hc::cli

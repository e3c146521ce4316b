// headcal bench prefill (bench_prefill.h).
#include "bench/bench_prefill.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_attention.h"
#include "calib/device_select.h"
#include "calib/prefill_timing.h"
#include "calib/record.h"
#include "cli/prompt_options.h"
#include "common/error.h"
#include "io/model/model_file.h"
#include "io/calibration/profile.h"

namespace hc::bench {

// CUDA builds only: the CLI calls it only there (cli/bench.cpp), and its timing is in a .cu file.
#if defined(HEADCAL_HAVE_CUDA)
int bench_prefill(const PrefillBenchOptions& options) {
  if (options.n_list.empty()) throw InputError("--n", "give at least one token count");
  for (int n : options.n_list)
    if (n < 1) throw InputError("--n", "token counts must be >= 1, got " + std::to_string(n));
  if (options.repeats < 1) throw InputError("--repeats", "must be >= 1");
  std::unique_ptr<ModelFile> model = open_model_spec(options.model);
  const Profile profile = read_profile(options.profile);
  const std::string mismatch = profile_shape_mismatch(profile.model, model->config());
  if (!mismatch.empty()) throw InputError(options.profile, "the profile does not fit the model: " + mismatch);
  // Every prompt first, so that a bad length fails before the weights load.
  std::vector<Prompt> prompts;
  for (int n : options.n_list) {
    PromptSpec spec = options.prompt;
    spec.length = n;
    if (spec.generator.empty() && spec.prompt_file.empty() && model->format() != "random") spec.generator = "kv_retrieval";
    prompts.push_back(cli::prompt_for_model(spec, options.model, *model, DeviceKind::Cuda));
  }
  std::string notice;
  if (resolve_device("cuda", &notice) != DeviceKind::Cuda) throw DeviceError("bench prefill needs a CUDA device");
  RecordOptions engine_options;
  engine_options.device = DeviceKind::Cuda;
  std::unique_ptr<Engine> engine = make_engine(*model, DeviceKind::Cuda, engine_options);
  auto* cuda = dynamic_cast<CudaEngine*>(engine.get());
  if (cuda == nullptr) throw DeviceError("bench prefill needs the CUDA engine");

  std::printf("bench prefill: %s, profile %s (%s, calibrated at %lld tokens), %s\n", options.model.c_str(),
              options.profile.c_str(), profile.calibration.budget_mode.c_str(),
              static_cast<long long>(profile.calibration.tokens), cuda->device_description().c_str());
  std::printf("time to first token: whole prefill, last position's logits only; attention: the layers' dense\n"
              "kernel vs plan + run (CUDA events); medians of %d runs each\n\n",
              options.repeats);
  std::printf("%8s %12s %12s %8s %12s %12s %10s %8s %8s\n", "N", "dense TTFT", "sparse TTFT", "speedup",
              "dense attn", "sparse attn", "of it plan", "speedup", "density");
  nlohmann::json points = nlohmann::json::array();
  long long crossover = -1;
  for (const Prompt& prompt : prompts) {
    const PrefillTimes t = time_prefill_cuda(*cuda, profile, prompt.tokens, options.repeats);
    const double ttft_x = t.dense_ttft_s / t.sparse_ttft_s, attn_x = t.dense_attention_s / t.sparse_attention_s;
    std::printf("%8lld %9.2f ms %9.2f ms %7.2fx %9.2f ms %9.2f ms %7.2f ms %7.2fx %8.3f\n",
                static_cast<long long>(t.n_tokens), t.dense_ttft_s * 1e3, t.sparse_ttft_s * 1e3, ttft_x,
                t.dense_attention_s * 1e3, t.sparse_attention_s * 1e3, t.plan_s * 1e3, attn_x, t.density);
    std::fflush(stdout);
    if (crossover < 0 && t.sparse_ttft_s < t.dense_ttft_s) crossover = t.n_tokens;
    points.push_back({{"n", t.n_tokens},
                      {"repeats", t.repeats},
                      {"dense_ttft_ms", t.dense_ttft_s * 1e3},
                      {"sparse_ttft_ms", t.sparse_ttft_s * 1e3},
                      {"ttft_speedup", ttft_x},
                      {"dense_attention_ms", t.dense_attention_s * 1e3},
                      {"sparse_attention_ms", t.sparse_attention_s * 1e3},
                      {"plan_ms", t.plan_s * 1e3},
                      {"attention_speedup", attn_x},
                      {"density", t.density},
                      {"layer_dense_ms", t.layer_dense_s},
                      {"layer_sparse_ms", t.layer_sparse_s},
                      {"prompt", prompt.description}});
    for (const char* key : {"layer_dense_ms", "layer_sparse_ms"})
      for (auto& v : points.back()[key]) v = v.get<double>() * 1e3;
  }
  if (crossover > 0)
    std::printf("\ncrossover: the sparse prefill first wins at N = %lld (of the lengths measured)\n", crossover);
  else
    std::printf("\ncrossover: the sparse prefill wins at none of the lengths measured\n");
  if (!options.json_out.empty()) {
    nlohmann::json doc = {{"format", "headcal-bench-prefill"},
                          {"version", 1},
                          {"device", cuda->device_description()},
                          {"model", options.model},
                          {"profile", options.profile},
                          {"profile_budget", profile.calibration.budget_mode},
                          {"profile_tokens", profile.calibration.tokens},
                          {"crossover_n", crossover},
                          {"points", points}};
    write_text_atomically(options.json_out, doc.dump(2) + "\n");
    std::printf("wrote %s\n", options.json_out.c_str());
  }
  return 0;
}

#endif  // HEADCAL_HAVE_CUDA

}  // namespace hc::bench

// headcal bench-tokenizer: tokenizer throughput on one thread.
#include <cstdio>

#include "bench/bench_tokenizer.h"
#include "cli/command.h"
#include "common/error.h"
#include "io/util/mapped_file.h"
#include "io/prompt/prompt.h"
#include "io/tokenizer/tokenizer.h"

namespace {

hc::cli::Runner setup(CLI::App& sub) {
  struct Options {
    std::string model, text;
    int runs = 5;
  };
  auto o = std::make_shared<Options>();
  sub.add_option("--model", o->model, "Model (GGUF file, Hugging Face directory, or tokenizer.json)")->required();
  sub.add_option("--text", o->text, "UTF-8 text to encode (default: 1 MB of generated kv_retrieval JSON)")
      ->check(CLI::ExistingFile);
  sub.add_option("--runs", o->runs, "Timed encodes (the best is reported)")->check(CLI::Range(1, 1000));
  return [o]() {
    auto tok = hc::load_tokenizer(o->model);
    std::string text, name = o->text;
    if (o->text.empty()) {
      text = hc::kv_retrieval_text(1 << 20, 1);
      name = "generated kv_retrieval JSON";
    } else {
      text = hc::read_whole_file(o->text);
      if (text.empty()) throw hc::InputError(o->text, "the text file is empty");
    }
    auto r = hc::run_tokenizer_bench(*tok, text, o->runs);
    std::printf("tokenizer: %s\n", tok->description().c_str());
    std::printf("text: %s, %zu bytes, %zu tokens\n", name.c_str(), r.bytes, r.tokens);
    std::printf("one thread, best of %d: %.4f s (mean %.4f s) = %.3f M tokens/s, %.2f MB/s\n", r.runs, r.best_s,
                r.mean_s, r.tokens_per_s() / 1e6, r.mb_per_s());
    return 0;
  };
}

HC_REGISTER_COMMAND("bench-tokenizer", "Tokenizer throughput on one thread (tokens/s)", setup);

}  // namespace

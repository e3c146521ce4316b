// headcal tokenize: token ids (or their count) of a text, or of a prompt built with the shared
// prompt options.
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <iterator>

#include "cli/command.h"
#include "cli/prompt_options.h"
#include "common/error.h"
#include "io/util/mapped_file.h"
#include "io/model/model_file.h"
#include "io/tokenizer/tokenizer.h"

namespace {

void print_ids(const std::vector<int32_t>& ids) {
  std::string line;
  line.reserve(ids.size() * 6);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) line.push_back(' ');
    line += std::to_string(ids[i]);
  }
  std::printf("%s\n", line.c_str());
}

hc::cli::Runner setup(CLI::App& sub) {
  struct Options {
    std::string model, text;
    bool ids = false;
  };
  auto o = std::make_shared<Options>();
  sub.add_option("--model", o->model, "Model (GGUF file, Hugging Face directory, or tokenizer.json)")->required();
  sub.add_option("--text", o->text, "UTF-8 text file to tokenize (default: standard input)")->check(CLI::ExistingFile);
  sub.add_flag("--ids", o->ids, "Print the token ids (default: the count)");
  auto spec = hc::cli::add_prompt_options(sub);
  return [o, spec]() {
    auto tok = hc::load_tokenizer(o->model);
    if (hc::cli::prompt_given(*spec) || spec->length > 0) {
      if (!o->text.empty()) throw hc::InputError("--text and the prompt options exclude each other");
      // The context length only matters for prompts; a bare tokenizer.json has none.
      int64_t context = 0;
      if (std::filesystem::path(o->model).extension() != ".json") context = hc::open_model(o->model)->config().max_context;
      hc::Prompt p = hc::cli::make_prompt(*spec, *tok, context);
      if (o->ids) {
        print_ids(p.tokens);
      } else {
        std::printf("%zu tokens\n", p.tokens.size());
        std::printf("prompt: %s\n", p.description.c_str());
        if (!p.answer.empty()) std::printf("answer: %s\n", p.answer.c_str());
      }
      std::fprintf(o->ids ? stderr : stdout, "sha256: %s\n", p.sha256.c_str());
      return 0;
    }
    std::string text, source = o->text.empty() ? "<stdin>" : o->text;
    if (o->text.empty()) {
      // Bounded like files: an endless stdin (`< /dev/zero`) stops at the cap with a message.
      char chunk[1 << 16];
      while (std::cin.read(chunk, sizeof chunk) || std::cin.gcount() > 0) {
        text.append(chunk, static_cast<size_t>(std::cin.gcount()));
        if (text.size() > hc::kMaxWholeFileBytes)
          throw hc::InputError(source, "more than " + std::to_string(hc::kMaxWholeFileBytes) + " bytes; give a smaller text");
      }
    } else {
      text = hc::read_whole_file(o->text);
    }
    if (text.empty()) throw hc::InputError(source, "the text is empty");
    std::vector<int32_t> ids = tok->encode(text, source);
    if (o->ids) print_ids(ids);
    else std::printf("%zu tokens\n", ids.size());
    return 0;
  };
}

HC_REGISTER_COMMAND("tokenize", "Token ids or count of a text or prompt with the model's tokenizer", setup);

}  // namespace

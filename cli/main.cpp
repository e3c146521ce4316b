// headcal: thin CLI over the library. Exit codes: 0 ok, 1 validation failed, 2 bad input or usage,
// 3 runtime failure (CUDA, out of memory, internal error).
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <new>

#include "cli/command.h"
#include "common/error.h"
#include "headcal/version.h"

namespace hc::cli {

std::vector<CommandSpec>& command_registry() {
  static std::vector<CommandSpec> registry;
  return registry;
}

bool stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

}  // namespace hc::cli

int main(int argc, char** argv) {
  using namespace hc::cli;
  CLI::App app{"headcal: per-head sparse attention pattern calibration for long-context LLMs"};
  app.set_version_flag("--version", std::string("headcal ") + HEADCAL_VERSION);
  app.require_subcommand(1);

  auto& registry = command_registry();
  std::sort(registry.begin(), registry.end(),
            [](const CommandSpec& a, const CommandSpec& b) { return a.name < b.name; });
  std::map<CLI::App*, Runner> runners;
  for (auto& spec : registry) {
    CLI::App* sub = app.add_subcommand(spec.name, spec.help);
    runners[sub] = spec.setup(*sub);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;  // usage errors are exit 2, as for any bad input
  }

  try {
    for (auto& [sub, run] : runners)
      if (sub->parsed()) return run();
    return 2;
  } catch (const hc::Error& e) {
    std::fprintf(stderr, "headcal: error: %s\n", e.what());
    return e.exit_code();
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "headcal: error: out of host memory\n");
    return 3;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "headcal: internal error: %s\n", e.what());
    return 3;
  }
}

// headcal: thin CLI over the library. Exit codes: 0 ok, 1 validation failed, 2 bad input or usage,
// 3 runtime failure (CUDA, out of memory, internal error).
#include <hdf5.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <map>
#include <new>

#include "cli/command.h"
#include "common/error.h"
#include "headcal/version.h"
#include "io/util/temp_files.h"

namespace hc::cli {

std::vector<CommandSpec>& command_registry() {
  static std::vector<CommandSpec> registry;
  return registry;
}

bool stderr_is_tty() { return ::isatty(STDERR_FILENO) == 1; }

}  // namespace hc::cli

namespace {

// Every error is one line: "headcal: error: " then the message with its line breaks folded.
int print_error(const char* prefix, std::string what, int code) {
  for (size_t at = what.find('\n'); at != std::string::npos; at = what.find('\n', at))
    what.replace(at, 1, at + 1 < what.size() ? "; " : "");
  std::fprintf(stderr, "headcal: %s: %s\n", prefix, what.c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace hc::cli;
  hc::install_temp_cleanup_handlers();
  // HDF5 failures are reported as our own errors; and no shutdown at exit, where a damaged file's
  // ids that cannot be closed make HDF5 print "infinite loop closing library" after our message.
  H5dont_atexit();
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
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
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return print_error("error", e.what(), 2);  // usage errors are exit 2, as for any bad input
  }

  try {
    for (auto& [sub, run] : runners)
      if (sub->parsed()) return run();
    return 2;
  } catch (const hc::Error& e) {
    return print_error("error", e.what(), e.exit_code());
  } catch (const std::bad_alloc&) {
    return print_error("error", "out of host memory", 3);
  } catch (const std::exception& e) {
    return print_error("internal error", e.what(), 3);
  }
}

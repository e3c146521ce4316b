#pragma once
// Subcommand registry: each cli/<name>.cpp registers itself with HC_REGISTER_COMMAND, so main.cpp
// needs no edit per subcommand. A setup function adds the subcommand's options to `sub` and returns
// the function that runs it (returning the exit code) once the command line is parsed.
#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace hc::cli {

using Runner = std::function<int()>;
using Setup = std::function<Runner(CLI::App& sub)>;

struct CommandSpec {
  std::string name;
  std::string help;
  Setup setup;
};

std::vector<CommandSpec>& command_registry();

struct Registrar {
  Registrar(const char* name, const char* help, Setup setup) {
    command_registry().push_back({name, help, std::move(setup)});
  }
};

// True when stderr is a terminal (progress lines are then redrawn in place).
bool stderr_is_tty();

// One progress line on stderr for step `done` of `total`: on a terminal one line redrawn each
// step; in a log about ten lines in all (cli/progress.cpp).
void print_progress_line(const std::string& text, int done, int total, bool tty);

}  // namespace hc::cli

#define HC_CLI_CONCAT2(a, b) a##b
#define HC_CLI_CONCAT(a, b) HC_CLI_CONCAT2(a, b)
#define HC_REGISTER_COMMAND(name, help, setup) \
  static ::hc::cli::Registrar HC_CLI_CONCAT(hc_cli_registrar_, __LINE__)(name, help, setup)

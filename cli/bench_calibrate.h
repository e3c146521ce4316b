#pragma once
// `headcal bench calibrate`, a mode of `headcal bench` (cli/bench.cpp adds it as its subcommand).
#include "cli/command.h"

namespace hc::cli {

// Adds bench calibrate's options to `sub` and returns its runner.
Runner setup_bench_calibrate(CLI::App& sub);

}  // namespace hc::cli

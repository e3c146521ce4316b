#pragma once
// CLI11 validators shared by the subcommands, so that a bad option value or an unwritable output
// path fails while the command line is parsed: before a model loads or any work starts.
#include <CLI/CLI.hpp>

#include <cstdint>

namespace hc::cli {

// Most tokens a prompt may have: far beyond any model's context, small enough that the ids and
// per-token buffers of a prefill fit in memory.
constexpr int64_t kMaxPromptTokens = int64_t(1) << 24;

// An output file: its folder exists and is writable, and the path is not a folder.
CLI::Validator output_file();
// An output folder: it exists and is writable, or its parent does (it is created).
CLI::Validator output_folder();
// An integer in [1, max].
CLI::Validator positive_integer(int64_t max = INT64_MAX);
// A non-negative integer (e.g. a seed; "-1" is not 2^64 - 1).
CLI::Validator non_negative_integer();
// A finite number in [lo, hi] (NaN and inf are rejected).
CLI::Validator finite_in_range(double lo, double hi);

}  // namespace hc::cli

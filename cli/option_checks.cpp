#include "cli/option_checks.h"

#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <string>

namespace hc::cli {

namespace fs = std::filesystem;

namespace {

// "" when `dir` is an existing, writable folder; else what is wrong with it.
std::string writable_folder_problem(const fs::path& dir) {
  std::error_code ec;
  const std::string shown = dir.empty() ? std::string(".") : dir.string();
  if (!fs::exists(dir.empty() ? fs::path(".") : dir, ec)) return "folder '" + shown + "' does not exist";
  if (!fs::is_directory(dir.empty() ? fs::path(".") : dir, ec)) return "'" + shown + "' is not a folder";
  if (::access(dir.empty() ? "." : dir.c_str(), W_OK | X_OK) != 0) return "folder '" + shown + "' is not writable";
  return "";
}

// Parses all of `text` as a base-10 integer; false on junk, overflow or an empty string.
bool parse_integer(const std::string& text, long long* value) {
  if (text.empty()) return false;
  errno = 0;
  char* end = nullptr;
  *value = std::strtoll(text.c_str(), &end, 10);
  return errno == 0 && end == text.c_str() + text.size();
}

}  // namespace

CLI::Validator output_file() {
  return CLI::Validator(
      [](std::string& path) -> std::string {
        const fs::path p(path);
        std::error_code ec;
        if (fs::is_directory(p, ec)) return "'" + path + "' is a folder, not a file to write";
        const std::string problem = writable_folder_problem(p.parent_path());
        return problem.empty() ? "" : "cannot write '" + path + "': " + problem;
      },
      "PATH", "output_file");
}

CLI::Validator output_folder() {
  return CLI::Validator(
      [](std::string& path) -> std::string {
        const fs::path p(path);
        std::error_code ec;
        if (fs::exists(p, ec)) {
          const std::string problem = writable_folder_problem(p);
          return problem.empty() ? "" : "cannot write into '" + path + "': " + problem;
        }
        const std::string problem = writable_folder_problem(p.parent_path());
        return problem.empty() ? "" : "cannot create '" + path + "': " + problem;
      },
      "DIR", "output_folder");
}

CLI::Validator positive_integer(int64_t max) {
  return CLI::Validator(
      [max](std::string& text) -> std::string {
        long long v = 0;
        if (!parse_integer(text, &v) || v < 1 || v > max)
          return "must be a whole number from 1 to " + std::to_string(max) + ", not '" + text.substr(0, 40) + "'";
        return "";
      },
      "INT>0", "positive_integer");
}

CLI::Validator non_negative_integer() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos)
          return "must be a whole number >= 0, not '" + text.substr(0, 40) + "'";
        errno = 0;
        std::strtoull(text.c_str(), nullptr, 10);
        if (errno == ERANGE) return "'" + text.substr(0, 40) + "' is larger than 2^64 - 1";
        return "";
      },
      "INT>=0", "non_negative_integer");
}

CLI::Validator finite_in_range(double lo, double hi) {
  return CLI::Validator(
      [lo, hi](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || v < lo || v > hi) {
          char range[64];
          std::snprintf(range, sizeof range, "[%g, %g]", lo, hi);
          return std::string("must be a number in ") + range + ", not '" + text.substr(0, 40) + "'";
        }
        return "";
      },
      "NUMBER", "finite_in_range");
}

}  // namespace hc::cli

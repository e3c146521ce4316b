#pragma once
// The one error family of headcal. Library code throws these; only cli/main.cpp turns them
// into messages and exit codes (0 ok, 1 validation failed, 2 bad input or usage, 3 runtime failure).
#include <stdexcept>
#include <string>
#include <utility>

namespace hc {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
  virtual int exit_code() const { return 3; }
};

// A message as one printable line: control bytes echoed from a bad file (a newline in a dtype
// string, an escape in a YAML scalar) become \xNN.
inline std::string printable_line(const std::string& text) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(text.size());
  for (unsigned char c : text) {
    if (c >= 0x20 && c != 0x7f) {
      out += static_cast<char>(c);
    } else {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

// Bad input: a file that is missing, malformed or unsupported, a bad option value. Exit 2.
// The message names the file (and the tensor or field) and what is wrong, on one line.
class InputError : public Error {
 public:
  explicit InputError(const std::string& what) : Error(printable_line(what)) {}
  InputError(const std::string& file, const std::string& what) : Error(printable_line(file + ": " + what)) {}
  int exit_code() const override { return 2; }
};

// A profile or run that falls short of the thresholds the user set. Exit 1.
class ValidationError : public Error {
 public:
  explicit ValidationError(const std::string& what) : Error(what) {}
  int exit_code() const override { return 1; }
};

// A failing CUDA / cuBLAS call, or no device when one was required. Exit 3.
class DeviceError : public Error {
 public:
  explicit DeviceError(const std::string& what) : Error(what) {}
};

}  // namespace hc

#define HC_STRINGIFY_IMPL(x) #x
#define HC_STRINGIFY(x) HC_STRINGIFY_IMPL(x)

// Internal invariant: a failure here is a headcal bug, reported with the failing condition.
#define HC_ASSERT(cond, msg)                                                                  \
  do {                                                                                        \
    if (!(cond))                                                                              \
      throw ::hc::Error(std::string("internal error: ") + #cond + " failed at " __FILE__      \
                        ":" HC_STRINGIFY(__LINE__) ": " + (msg));                             \
  } while (0)

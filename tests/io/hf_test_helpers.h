#pragma once
// Test helpers shared by the model-reader tests in tests/io (config.json, safetensors, HF directories).

#include <exception>
#include <functional>
#include <string>

#include "catch.h"
#include "common/error.h"

namespace hc::test {

// The message of the InputError that `fn` throws; fails the test when it throws nothing or something else.
inline std::string input_error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const hc::InputError& e) {
    return e.what();
  } catch (const std::exception& e) {
    FAIL("expected hc::InputError, got: " << e.what());
  }
  FAIL("expected hc::InputError, nothing was thrown");
  return "";
}

inline bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace hc::test

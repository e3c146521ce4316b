#pragma once
// Wall-clock seconds for the tools' timings (validate's attention and prefill times, the benches).
#include <chrono>

namespace hc {

using SteadyClock = std::chrono::steady_clock;

inline double seconds_since(SteadyClock::time_point t0) {
  return std::chrono::duration<double>(SteadyClock::now() - t0).count();
}

}  // namespace hc

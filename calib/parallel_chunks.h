#pragma once
// One thread-splitting helper for the CPU engine and the validator, so both share one
// exception-forwarding implementation.

#include <algorithm>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace hc {

// Runs fn(begin, end) over [0, n) split into `n_threads` contiguous chunks, each a multiple of
// `align` long (except the last). Eigen is built without OpenMP here, so threads are ours.
// The first exception thrown by any chunk is rethrown on the calling thread after all join.
template <typename Fn>
void parallel_chunks(int n_threads, int64_t n, int64_t align, Fn fn) {
  const int64_t n_chunks_max = std::max<int64_t>(1, (n + align - 1) / align);
  const int threads = static_cast<int>(std::min<int64_t>(std::max(1, n_threads), n_chunks_max));
  if (threads == 1) {
    fn(int64_t{0}, n);
    return;
  }
  const int64_t per = ((n + threads - 1) / threads + align - 1) / align * align;
  std::exception_ptr failure;
  std::mutex failure_mutex;
  auto guarded = [&](int64_t b, int64_t e) {
    try {
      fn(b, e);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) {
    const int64_t b = t * per, e = std::min(n, b + per);
    if (b < e) pool.emplace_back(guarded, b, e);
  }
  guarded(0, std::min(n, per));
  for (std::thread& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace hc

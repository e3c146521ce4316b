#pragma once
// Minimal work splitting for the CPU references: items 0..n-1 handed out through an atomic
// counter to std::threads, each with its own worker id (for per-thread scratch buffers).
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace hc::kernels::detail {

inline int resolve_threads(int n_threads, int64_t n_items) {
  int n = n_threads > 0 ? n_threads : static_cast<int>(std::thread::hardware_concurrency());
  n = std::max(1, n);
  return static_cast<int>(std::min<int64_t>(n, std::max<int64_t>(1, n_items)));
}

// fn(item, worker) for every item; rethrows the first exception a worker hit.
template <class Fn>
void parallel_for(int64_t n_items, int n_threads, Fn&& fn) {
  const int workers = resolve_threads(n_threads, n_items);
  if (workers == 1) {
    for (int64_t item = 0; item < n_items; ++item) fn(item, 0);
    return;
  }
  std::atomic<int64_t> next{0};
  std::exception_ptr error;
  std::mutex error_mutex;
  auto run = [&](int worker) {
    try {
      for (int64_t item = next++; item < n_items; item = next++) fn(item, worker);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!error) error = std::current_exception();
      next = n_items;
    }
  };
  std::vector<std::thread> threads;
  for (int w = 1; w < workers; ++w) threads.emplace_back(run, w);
  run(0);
  for (auto& t : threads) t.join();
  if (error) std::rethrow_exception(error);
}

}  // namespace hc::kernels::detail

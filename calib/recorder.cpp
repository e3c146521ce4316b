#include "calib/recorder.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <string>
#include <thread>

#include "common/error.h"
#include "kernels/sparse/ref_score.h"

namespace hc {
namespace {

void check_dims(const kernels::AttentionDims& d, int map_size) {
  if (d.n_tokens <= 0 || d.n_heads <= 0 || d.n_kv_heads <= 0 || d.head_dim <= 0)
    throw InputError("recorder", "n_tokens, n_heads, n_kv_heads and head_dim must be positive");
  if (d.n_heads % d.n_kv_heads != 0)
    throw InputError("recorder", "n_heads " + std::to_string(d.n_heads) + " is not a multiple of n_kv_heads " +
                                     std::to_string(d.n_kv_heads));
  if (map_size < 1) throw InputError("recorder", "map size must be at least 1");
}

}  // namespace

size_t cuda_recorder_device_bytes(int64_t n_heads, int64_t n_tokens, int map_size) {
  const int64_t cells = map_cells(n_tokens, map_size);
  return sizeof(float) * static_cast<size_t>(2 * n_heads * n_tokens + n_heads * cells * cells);
}

double sum_head(const std::vector<float>& values, int64_t head, int64_t per_head) {
  double s = 0.0;
  const float* p = values.data() + head * per_head;
  for (int64_t i = 0; i < per_head; ++i) s += p[i];
  return s;
}

LayerStats record_attention_cpu(const kernels::AttentionDims& dims, const float* q, const float* k,
                                const float* lse, const RecorderOptions& options) {
  check_dims(dims, options.map_size);
  const int64_t n = dims.n_tokens, n_heads = dims.n_heads, d = dims.head_dim;
  const int64_t group = n_heads / dims.n_kv_heads;
  const int64_t cells = map_cells(n, options.map_size);
  const double scale = 1.0 / std::sqrt(static_cast<double>(d));

  LayerStats out;
  out.n_heads = n_heads;
  out.n_tokens = n;
  out.map_size = cells;
  out.colmass.assign(static_cast<size_t>(n_heads * n), 0.f);
  out.diagmass.assign(static_cast<size_t>(n_heads * n), 0.f);
  out.map.assign(static_cast<size_t>(n_heads * cells * cells), 0.f);

  int n_threads = options.n_threads > 0 ? options.n_threads : static_cast<int>(std::thread::hardware_concurrency());
  n_threads = std::max(1, n_threads);

  // Work items: (head, row chunk). Rows of a chunk are interleaved (row = chunk + t * chunks) so
  // every chunk gets the same mix of short early rows and long late rows.
  const int64_t chunks = std::max<int64_t>(1, std::min<int64_t>(n, (4 * n_threads + n_heads - 1) / n_heads));
  const int64_t n_items = n_heads * chunks;
  std::atomic<int64_t> next{0};
  std::vector<std::mutex> head_locks(static_cast<size_t>(n_heads));
  // Merged totals in double, converted to float at the end.
  std::vector<double> col_total(static_cast<size_t>(n_heads * n), 0.0);   // [H, N]
  std::vector<double> diag_total(static_cast<size_t>(n_heads * n), 0.0);  // [H, N]
  std::vector<double> map_total(static_cast<size_t>(n_heads * cells * cells), 0.0);  // [H, M, M]

  std::vector<int32_t> cell_of(static_cast<size_t>(n));  // [N] token -> map cell
  for (int64_t t = 0; t < n; ++t) cell_of[static_cast<size_t>(t)] = static_cast<int32_t>(map_cell(t, n, cells));

  auto worker = [&]() {
    std::vector<double> col(static_cast<size_t>(n));                // [N]
    std::vector<double> diag(static_cast<size_t>(n));               // [N]
    std::vector<double> map(static_cast<size_t>(cells * cells));    // [M, M]
    std::vector<float> prob(static_cast<size_t>(n));                // [N] one row of P
    for (;;) {
      const int64_t item = next.fetch_add(1);
      if (item >= n_items) break;
      const int64_t h = item / chunks, chunk = item % chunks;
      const int64_t kvh = h / group;
      std::fill(col.begin(), col.end(), 0.0);
      std::fill(diag.begin(), diag.end(), 0.0);
      std::fill(map.begin(), map.end(), 0.0);
      for (int64_t i = chunk; i < n; i += chunks) {
        const float* qi = q + (i * n_heads + h) * d;  // [d]
        const float row_lse = lse[h * n + i];
        for (int64_t j = 0; j <= i; ++j) {
          const float* kj = k + (j * dims.n_kv_heads + kvh) * d;  // [d]
          const double score = kernels::detail::score_dot(qi, kj, d) * scale;
          prob[static_cast<size_t>(j)] = static_cast<float>(std::exp(score - row_lse));
        }
        double* map_row = map.data() + static_cast<size_t>(cell_of[static_cast<size_t>(i)]) * cells;
        for (int64_t j = 0; j <= i; ++j) {
          const double p = prob[static_cast<size_t>(j)];
          col[static_cast<size_t>(j)] += p;
          diag[static_cast<size_t>(i - j)] += p;
          map_row[cell_of[static_cast<size_t>(j)]] += p;
        }
      }
      std::lock_guard<std::mutex> lock(head_locks[static_cast<size_t>(h)]);
      double* ct = col_total.data() + h * n;
      double* dt = diag_total.data() + h * n;
      double* mt = map_total.data() + h * cells * cells;
      for (int64_t j = 0; j < n; ++j) {
        ct[j] += col[static_cast<size_t>(j)];
        dt[j] += diag[static_cast<size_t>(j)];
      }
      for (int64_t c = 0; c < cells * cells; ++c) mt[c] += map[static_cast<size_t>(c)];
    }
  };
  std::vector<std::thread> threads;
  const int spawn = static_cast<int>(std::min<int64_t>(n_threads, n_items));
  for (int t = 1; t < spawn; ++t) threads.emplace_back(worker);
  worker();
  for (auto& t : threads) t.join();

  for (size_t x = 0; x < col_total.size(); ++x) {
    out.colmass[x] = static_cast<float>(col_total[x]);
    out.diagmass[x] = static_cast<float>(diag_total[x]);
  }
  for (size_t x = 0; x < map_total.size(); ++x) out.map[x] = static_cast<float>(map_total[x]);
  return out;
}

}  // namespace hc

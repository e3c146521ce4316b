#include "kernels/sparse/coverage.h"

#include <algorithm>
#include <string>

#include "common/error.h"

namespace hc::kernels {
namespace {

struct Band {
  int64_t sink = 0;
  int64_t local = 0;  // 0: no band
  bool admits(int64_t i, int64_t j) const { return local <= 0 || j < sink || i - j < local; }
};

Band band_of(const SparseIndexView& index, int64_t head) {
  if (index.band_local == nullptr) return {};
  return {index.band_sink != nullptr ? index.band_sink[head] : 0, index.band_local[head]};
}

int64_t slot_of(const SparseIndexView& index, int64_t head, int64_t i) {
  return head * num_row_blocks(index.n_tokens) + i / kBlock;
}

// |[lo, hi) ∩ band of row i|, for hi <= i + 1.
int64_t band_count(const Band& band, int64_t i, int64_t lo, int64_t hi) {
  if (hi <= lo) return 0;
  if (band.local <= 0) return hi - lo;
  const int64_t sink_part = std::max<int64_t>(0, std::min(hi, band.sink) - lo);
  const int64_t window_lo = std::max(lo, std::max(band.sink, i - band.local + 1));
  return sink_part + std::max<int64_t>(0, hi - window_lo);
}

}  // namespace

bool covered(const SparseIndexView& index, int64_t head, int64_t i, int64_t j) {
  if (j < 0 || j > i || i >= index.n_tokens) return false;
  if (!band_of(index, head).admits(i, j)) return false;
  const int64_t slot = slot_of(index, head, i);
  const int32_t* rb = index.range_begin + index.range_offsets[slot];
  const int32_t* re = index.range_begin + index.range_offsets[slot + 1];
  const int32_t* after = std::upper_bound(rb, re, static_cast<int32_t>(j));  // first begin > j
  if (after != rb) {
    const int64_t r = (after - 1) - index.range_begin;
    if (j < index.range_end[r]) return true;
  }
  const int32_t* cb = index.cols + index.col_offsets[slot];
  const int32_t* ce = index.cols + index.col_offsets[slot + 1];
  return std::binary_search(cb, ce, static_cast<int32_t>(j));
}

void covered_keys(const SparseIndexView& index, int64_t head, int64_t i, std::vector<int32_t>& keys) {
  keys.clear();
  const Band band = band_of(index, head);
  const int64_t slot = slot_of(index, head, i);
  for (int32_t r = index.range_offsets[slot]; r < index.range_offsets[slot + 1]; ++r)
    for (int64_t j = index.range_begin[r]; j < std::min<int64_t>(index.range_end[r], i + 1); ++j)
      if (band.admits(i, j)) keys.push_back(static_cast<int32_t>(j));
  for (int32_t c = index.col_offsets[slot]; c < index.col_offsets[slot + 1]; ++c)
    if (index.cols[c] <= i && band.admits(i, index.cols[c])) keys.push_back(index.cols[c]);
  std::sort(keys.begin(), keys.end());
}

int64_t covered_pair_count(const SparseIndexView& index, int64_t head) {
  const Band band = band_of(index, head);
  const int64_t nb = num_row_blocks(index.n_tokens);
  int64_t total = 0;
  for (int64_t rb = 0; rb < nb; ++rb) {
    const int64_t slot = head * nb + rb;
    const int64_t r0 = rb * kBlock, r1 = std::min<int64_t>(r0 + kBlock - 1, index.n_tokens - 1);
    for (int64_t i = r0; i <= r1; ++i) {
      for (int32_t r = index.range_offsets[slot]; r < index.range_offsets[slot + 1]; ++r)
        total += band_count(band, i, index.range_begin[r], std::min<int64_t>(index.range_end[r], i + 1));
      for (int32_t c = index.col_offsets[slot]; c < index.col_offsets[slot + 1]; ++c)
        total += (index.cols[c] <= i && band.admits(i, index.cols[c])) ? 1 : 0;
    }
  }
  return total;
}

void validate_index(const SparseIndexView& index) {
  const char* what = "sparse index";
  auto fail = [&](const std::string& msg) { throw InputError(what, msg); };
  if (index.n_tokens < 1 || index.n_heads < 1) fail("needs n_tokens >= 1 and n_heads >= 1");
  if (!index.range_offsets || !index.col_offsets) fail("missing offsets");
  const int64_t nb = num_row_blocks(index.n_tokens);
  const int64_t n_slots = index.n_heads * nb;
  if (index.range_offsets[0] != 0 || index.col_offsets[0] != 0) fail("offsets must start at 0");
  for (int64_t s = 0; s < n_slots; ++s) {
    const std::string where = "slot " + std::to_string(s) + " (head " + std::to_string(s / nb) +
                              ", row block " + std::to_string(s % nb) + ")";
    const int64_t r1 = std::min<int64_t>((s % nb) * kBlock + kBlock - 1, index.n_tokens - 1);
    if (index.range_offsets[s + 1] < index.range_offsets[s]) fail(where + ": range offsets decrease");
    if (index.col_offsets[s + 1] < index.col_offsets[s]) fail(where + ": column offsets decrease");
    int64_t prev_end = -1;
    for (int32_t r = index.range_offsets[s]; r < index.range_offsets[s + 1]; ++r) {
      const int64_t b = index.range_begin[r], e = index.range_end[r];
      if (b < 0 || e <= b || e > r1 + 1)
        fail(where + ": range [" + std::to_string(b) + ", " + std::to_string(e) +
             ") empty or outside [0, " + std::to_string(r1 + 1) + ")");
      if (b <= prev_end) fail(where + ": ranges not ascending and merged");
      prev_end = e;
    }
    int64_t prev_col = -1;
    int32_t r = index.range_offsets[s];
    for (int32_t c = index.col_offsets[s]; c < index.col_offsets[s + 1]; ++c) {
      const int64_t col = index.cols[c];
      if (col <= prev_col || col > r1) fail(where + ": columns not ascending or above the block");
      while (r < index.range_offsets[s + 1] && index.range_end[r] <= col) ++r;
      if (r < index.range_offsets[s + 1] && index.range_begin[r] <= col)
        fail(where + ": column " + std::to_string(col) + " inside a range");
      prev_col = col;
    }
  }
  if (index.band_local != nullptr)
    for (int64_t h = 0; h < index.n_heads; ++h)
      if (index.band_local[h] < 0 || (index.band_sink != nullptr && index.band_sink[h] < 0))
        fail("negative band value on head " + std::to_string(h));
}

}  // namespace hc::kernels

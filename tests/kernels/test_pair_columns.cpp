// The pair-column merge of the Hopper index-driven kernel (kernels/attention/pair_columns*):
// the CPU reference on a worked example, and the GPU pass against the reference.
#include <cstdint>
#include <random>
#include <vector>

#include "catch.h"
#include "kernels/attention/pair_columns_ref.h"
#include "tests/support/test_support.h"

#if defined(HEADCAL_HAVE_CUDA)
#include "kernels/attention/pair_columns.h"
#include "tests/kernels/gpu_attention_fixture.h"
#endif

using namespace hc::kernels;

namespace {

// An index with only gathered columns: per slot, ascending random keys up to a little past the
// block's last row (those must be dropped), each key kept with probability `density`.
SparseIndex random_column_index(int64_t n_tokens, int64_t n_heads, double density, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  SparseIndex index;
  index.n_heads = n_heads;
  index.n_tokens = n_tokens;
  const int64_t blocks = num_row_blocks(n_tokens);
  index.range_offsets.assign(n_heads * blocks + 1, 0);
  index.col_offsets.push_back(0);
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t rb = 0; rb < blocks; ++rb) {
      const int64_t past_last = std::min<int64_t>(n_tokens, rb * kBlock + kBlock + 20);
      for (int64_t j = 0; j < past_last; ++j)
        if (u(rng) < density) index.cols.push_back(static_cast<int32_t>(j));
      index.col_offsets.push_back(static_cast<int32_t>(index.cols.size()));
    }
  return index;
}

}  // namespace

TEST_CASE("pair columns: merged, tagged by block, clipped at each block's last row", "[sparse]") {
  // N = 150: blocks 0 (rows 0-63), 1 (64-127), 2 (128-149); pairs (0, 1) and (2).
  SparseIndex index;
  index.n_heads = 1;
  index.n_tokens = 150;
  index.range_offsets = {0, 0, 0, 0};
  index.col_offsets = {0, 3, 7, 9};
  index.cols = {1, 5, 70,        // block 0: 70 is above row 63, dropped
                1, 6, 70, 127,   // block 1
                3, 149};         // block 2
  const PairColumnsHost got = merge_pair_columns_ref(index);
  REQUIRE(got.counts == std::vector<int32_t>{5, 2});
  const std::vector<int32_t> pair0 = {1 << 2 | 3, 5 << 2 | 1, 6 << 2 | 2, 70 << 2 | 2, 127 << 2 | 2};
  CHECK(std::vector<int32_t>(got.entries.begin(), got.entries.begin() + 5) == pair0);
  CHECK(got.entries[7] == (3 << 2 | 1));
  CHECK(got.entries[8] == (149 << 2 | 1));
}

#if defined(HEADCAL_HAVE_CUDA)
TEST_CASE("pair columns: the GPU merge equals the reference", "[gpu][sparse]") {
  HC_REQUIRE_GPU();
  struct Case {
    int64_t n, heads;
    double density;
  };
  // Odd N, N < 64, an odd number of row blocks, lists longer than a warp's window, dense lists
  // (every key in both blocks: all duplicates), sparse ones (few shared).
  for (const Case c : {Case{1, 2, 1.0}, Case{17, 3, 0.5}, Case{100, 2, 0.3}, Case{200, 4, 0.05},
                       Case{1000, 3, 0.9}, Case{2500, 2, 0.2}, Case{4097, 1, 1.0}}) {
    DYNAMIC_SECTION("N=" << c.n << " heads=" << c.heads << " density=" << c.density) {
      const SparseIndex index = random_column_index(c.n, c.heads, c.density, static_cast<uint32_t>(c.n));
      REQUIRE(!index.cols.empty());
      const PairColumnsHost want = merge_pair_columns_ref(index);
      hc::test::DeviceIndex device(index);
      const PairColumnsDevice got = merge_pair_columns_gpu(device.view(), device.total_cols, nullptr);
      std::vector<int32_t> counts(want.counts.size()), entries(want.entries.size());
      HC_CHECK_CUDA(cudaMemcpy(counts.data(), got.counts.get(), counts.size() * 4, cudaMemcpyDeviceToHost));
      HC_CHECK_CUDA(cudaMemcpy(entries.data(), got.entries.get(), entries.size() * 4, cudaMemcpyDeviceToHost));
      REQUIRE(counts == want.counts);
      const int64_t pairs = num_row_block_pairs(c.n), blocks = num_row_blocks(c.n);
      for (int64_t h = 0; h < c.heads; ++h)
        for (int64_t t = 0; t < pairs; ++t) {
          const int32_t begin = index.col_offsets[h * blocks + 2 * t];
          const int32_t n = want.counts[h * pairs + t];
          INFO("head " << h << " pair " << t);
          CHECK(std::vector<int32_t>(entries.begin() + begin, entries.begin() + begin + n) ==
                std::vector<int32_t>(want.entries.begin() + begin, want.entries.begin() + begin + n));
        }
    }
  }
}
#endif

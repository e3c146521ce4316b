// The tile-column merge of the Hopper index-driven kernel (kernels/attention/tile_columns*):
// the CPU reference on worked examples, and the GPU pass against the reference.
#include <cstdint>
#include <random>
#include <vector>

#include "catch.h"
#include "common/error.h"
#include "kernels/attention/tile_columns_ref.h"
#include "tests/support/test_support.h"

#if defined(HEADCAL_HAVE_CUDA)
#include "kernels/attention/tile_columns.h"
#include "tests/kernels/gpu_attention_fixture.h"
#endif

using namespace hc::kernels;

namespace {

#if defined(HEADCAL_HAVE_CUDA)
// An index with only gathered columns: per slot, ascending keys up to a little past the block's
// last row (those must be dropped).
//   drop < 0: each block's keys drawn on their own, each kept with probability `density`;
//   drop >= 0: columns shared by the blocks of a head, as in vertical-slash indexes: one set of
//     keys per head (kept with probability `density`), each block's list that set except that
//     each key is left out with probability `drop` (so the lists agree for long runs and then
//     shift against each other by a key or more).
SparseIndex column_index(int64_t n_tokens, int64_t n_heads, double density, double drop, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  SparseIndex index;
  index.n_heads = n_heads;
  index.n_tokens = n_tokens;
  const int64_t blocks = num_row_blocks(n_tokens);
  index.range_offsets.assign(n_heads * blocks + 1, 0);
  index.col_offsets.push_back(0);
  for (int64_t h = 0; h < n_heads; ++h) {
    std::vector<int32_t> shared;
    if (drop >= 0)
      for (int64_t j = 0; j < n_tokens; ++j)
        if (u(rng) < density) shared.push_back(static_cast<int32_t>(j));
    for (int64_t rb = 0; rb < blocks; ++rb) {
      const int64_t past_last = std::min<int64_t>(n_tokens, rb * kBlock + kBlock + 20);
      if (drop >= 0) {
        for (int32_t j : shared)
          if (j < past_last && u(rng) >= drop) index.cols.push_back(j);
      } else {
        for (int64_t j = 0; j < past_last; ++j)
          if (u(rng) < density) index.cols.push_back(static_cast<int32_t>(j));
      }
      index.col_offsets.push_back(static_cast<int32_t>(index.cols.size()));
    }
  }
  return index;
}
#endif

}  // namespace

constexpr int kBits = kTileColumnBits;

TEST_CASE("tile columns: merged, tagged by block, clipped at each block's last row", "[sparse]") {
  // N = 150: blocks 0 (rows 0-63), 1 (64-127), 2 (128-149).
  SparseIndex index;
  index.n_heads = 1;
  index.n_tokens = 150;
  index.range_offsets = {0, 0, 0, 0};
  index.col_offsets = {0, 3, 7, 10};
  index.cols = {1, 5, 70,        // block 0: 70 is above row 63, dropped
                1, 6, 70, 127,   // block 1
                3, 70, 149};     // block 2
  SECTION("two blocks per tile: tiles (0, 1) and (2)") {
    const TileColumnsHost got = merge_tile_columns_ref(index, 2);
    REQUIRE(got.counts == std::vector<int32_t>{5, 3});
    const std::vector<int32_t> tile0 = {1 << kBits | 3, 5 << kBits | 1, 6 << kBits | 2, 70 << kBits | 2,
                                        127 << kBits | 2};
    CHECK(std::vector<int32_t>(got.entries.begin(), got.entries.begin() + 5) == tile0);
    CHECK(got.entries[5] == 0);  // unused
    CHECK(got.entries[7] == (3 << kBits | 1));
    CHECK(got.entries[8] == (70 << kBits | 1));
    CHECK(got.entries[9] == (149 << kBits | 1));
  }
  SECTION("three blocks per tile: one tile") {
    const TileColumnsHost got = merge_tile_columns_ref(index, 3);
    REQUIRE(got.counts == std::vector<int32_t>{7});
    const std::vector<int32_t> tile0 = {1 << kBits | 3,  3 << kBits | 4,   5 << kBits | 1,  6 << kBits | 2,
                                        70 << kBits | 6, 127 << kBits | 2, 149 << kBits | 4};
    CHECK(std::vector<int32_t>(got.entries.begin(), got.entries.begin() + 7) == tile0);
  }
  SECTION("one block per tile: each list clipped") {
    const TileColumnsHost got = merge_tile_columns_ref(index, 1);
    REQUIRE(got.counts == std::vector<int32_t>{2, 4, 3});
    CHECK(got.entries[1] == (5 << kBits | 1));
    CHECK(got.entries[2] == 0);  // 70, dropped
  }
  CHECK_THROWS(merge_tile_columns_ref(index, 0));
  CHECK_THROWS(merge_tile_columns_ref(index, kMaxBlocksPerTile + 1));
}

#if defined(HEADCAL_HAVE_CUDA)
TEST_CASE("tile columns: the GPU merge equals the reference", "[gpu][sparse]") {
  HC_REQUIRE_GPU();
  struct Case {
    int64_t n, heads;
    double density;
    double drop = -1;  // column_index's drop: < 0 independent lists, >= 0 shared ones
  };
  // Odd N, N < 64, row blocks not a multiple of the tile, lists longer than a warp's window, dense
  // lists (every key in every block: all duplicates), sparse ones (few shared); 1, 2 and 3 blocks
  // per tile (the kernel uses 3 where the row blocks share their key tiles, else 2); both merges,
  // and the automatic choice past the bitmap merge's size.
  for (const Case c : {Case{1, 2, 1.0}, Case{17, 3, 0.5}, Case{100, 2, 0.3}, Case{200, 4, 0.05},
                       Case{1000, 3, 0.9}, Case{2500, 2, 0.2}, Case{4097, 1, 1.0},
                       // Shared lists: windows equal in every list (taken whole), then shifted
                       // against each other after a dropped key.
                       Case{3000, 2, 0.4, 0.0}, Case{3000, 2, 0.4, 0.002}, Case{5000, 3, 0.7, 0.01},
                       Case{kBitmapMaxTokens + 1000, 1, 0.002, 0.01}}) {
    const bool large = c.n > kBitmapMaxTokens;
    for (int per_tile = 1; per_tile <= kMaxBlocksPerTile; ++per_tile)
      for (const TileColumnsMethod method :
           {TileColumnsMethod::bitmap, TileColumnsMethod::warp_merge, TileColumnsMethod::automatic})
        DYNAMIC_SECTION("N=" << c.n << " heads=" << c.heads << " density=" << c.density << " drop=" << c.drop
                             << " blocks per tile=" << per_tile << " method=" << static_cast<int>(method)) {
          const SparseIndex index = column_index(c.n, c.heads, c.density, c.drop, static_cast<uint32_t>(c.n));
          REQUIRE(!index.cols.empty());
          hc::test::DeviceIndex device(index);
          if (large && method == TileColumnsMethod::bitmap) {  // past its shared memory
            CHECK_THROWS_AS(merge_tile_columns_gpu(device.view(), per_tile, device.total_cols, nullptr, method),
                            hc::InputError);
          } else {
            const TileColumnsHost want = merge_tile_columns_ref(index, per_tile);
            const TileColumnsDevice got =
                merge_tile_columns_gpu(device.view(), per_tile, device.total_cols, nullptr, method);
            std::vector<int32_t> counts(want.counts.size()), entries(want.entries.size());
            HC_CHECK_CUDA(cudaMemcpy(counts.data(), got.counts.get(), counts.size() * 4, cudaMemcpyDeviceToHost));
            HC_CHECK_CUDA(
                cudaMemcpy(entries.data(), got.entries.get(), entries.size() * 4, cudaMemcpyDeviceToHost));
            REQUIRE(counts == want.counts);
            const int64_t tiles = num_work_row_tiles(c.n, per_tile), blocks = num_row_blocks(c.n);
            for (int64_t h = 0; h < c.heads; ++h)
              for (int64_t t = 0; t < tiles; ++t) {
                const int32_t begin = index.col_offsets[h * blocks + per_tile * t];
                const int32_t n = want.counts[h * tiles + t];
                INFO("head " << h << " tile " << t);
                CHECK(std::vector<int32_t>(entries.begin() + begin, entries.begin() + begin + n) ==
                      std::vector<int32_t>(want.entries.begin() + begin, want.entries.begin() + begin + n));
              }
          }
        }
  }
}
#endif

// The Hopper kernel's stage walk counted on the host (kernels/attention/stage_walk.h): stages
// loaded and computed on the dense index (closed forms, odd N and N < 64), on hand-made indexes
// (shared and unshared tiles, gathered columns, band), and its invariants on vertical-slash
// indexes of a GQA head group at both head dims.
#include <cstdint>
#include <vector>

#include "catch.h"
#include "common/error.h"
#include "hand_index.h"
#include "kernels/attention/stage_walk.h"
#include "kernels/sparse/cost.h"
#include "kernels/sparse/index_ref.h"
#include "sparse_test_inputs.h"

using namespace hc::kernels;

TEST_CASE("dense index: every tile of a work tile's blocks is one stage", "[sparse][stage_walk]") {
  for (int64_t n : {1, 40, 63, 64, 65, 200, 1000}) {
    const int64_t heads = 2, nb = num_row_blocks(n);
    const SparseIndex index = build_dense_index(n, heads);
    for (int bpt = 1; bpt <= kMaxBlocksPerTile; ++bpt) {
      INFO("n " << n << ", blocks per tile " << bpt);
      const StageWalk w = walk_stages(index, bpt);
      // Block R computes keys [0, min(64R + 64, N)): R + 1 tiles, the last one short where N is
      // not a multiple of 64 (only in the last block).
      int64_t block_stages = 0, stage_pairs = 0, loaded = 0;
      for (int64_t r = 0; r < nb; ++r) {
        block_stages += r + 1;
        stage_pairs += std::min<int64_t>(64, n - 64 * r) * 64 * (r + 1);
      }
      // A work tile loads the tiles of its last block; the others' are among them.
      for (int64_t t = 0; t < num_work_row_tiles(n, bpt); ++t) loaded += std::min<int64_t>(bpt * t + bpt, nb);
      CHECK(w.block_stages == heads * block_stages);
      CHECK(w.loaded_stages == heads * loaded);
      CHECK(w.short_stages == (n % 64 ? heads : 0));
      CHECK(w.stage_pairs == heads * stage_pairs);
      CHECK(w.pairs == heads * dense_pair_count(n));
      CHECK(w.gathered_stages == 0);
    }
  }
}

TEST_CASE("tiles are shared only where their first keys coincide", "[sparse][stage_walk]") {
  // Block 0: [0, 64); block 1: [0, 128); block 2: [10, 150) = tiles at 10, 74 and 138 (12 keys).
  const SparseIndex index = hand_index(192, {{{0, 64}}, {{0, 128}}, {{10, 150}}}, {{}, {}, {}});
  const StageWalk three = walk_stages(index, 3);
  CHECK(three.loaded_stages == 5);  // first keys 0, 64, 10, 74, 138
  CHECK(three.block_stages == 6);
  CHECK(three.short_stages == 1);
  CHECK(three.stage_pairs == 6 * 64 * 64);
  CHECK(three.pairs == 64 * 64 + 64 * 128 + 64 * 140);
  CHECK(walk_stages(index, 2).loaded_stages == 2 + 3);
  CHECK(walk_stages(index, 1).loaded_stages == 1 + 2 + 3);
  CHECK(walk_stages(index, 1).block_stages == 6);
}

TEST_CASE("gathered columns: a stage of the merged list for every block with an entry in it",
          "[sparse][stage_walk]") {
  // Each block its diagonal tile; block 1 gathers {5, 10}, block 2 {5, 70}: one merged stage
  // for both with three blocks per work tile, one stage each with one.
  const SparseIndex few = hand_index(192, {{{0, 64}}, {{64, 128}}, {{128, 192}}}, {{}, {5, 10}, {5, 70}});
  const StageWalk three = walk_stages(few, 3);
  CHECK(three.gathered_stages == 1);
  CHECK(three.loaded_stages == 3 + 1);
  CHECK(three.block_stages == 3 + 2);
  CHECK(three.gathered_block_stages == 2);
  CHECK(three.pairs == 3 * 64 * 64 + 64 * 4);
  const StageWalk one = walk_stages(few, 1);
  CHECK(one.gathered_stages == 2);
  CHECK(one.loaded_stages == one.block_stages);
  // 70 even keys below 140 for block 2 and {5, 10} for block 1: 72 merged entries, the first
  // stage of 64 holds both blocks' keys, the second (keys 124..138) block 2's only.
  std::vector<int32_t> evens;
  for (int32_t c = 0; c < 140; c += 2) evens.push_back(c);
  const SparseIndex many = hand_index(192, {{{0, 64}}, {{64, 128}}, {{140, 192}}}, {{}, {5, 11}, evens});
  const StageWalk merged = walk_stages(many, 3);
  CHECK(merged.gathered_stages == 2);
  CHECK(merged.block_stages == 3 + 1 + 2);
  CHECK(merged.gathered_block_stages == 3);
  CHECK(merged.short_stages == 1);  // block 2's [140, 192)
  CHECK(merged.stage_pairs == (3 + 3) * 64 * 64);
  CHECK(merged.pairs == 64 * 64 * 2 + 64 * 52 + 64 * 72);
}

TEST_CASE("band tiles without an admissible pair are not stages", "[sparse][stage_walk]") {
  // The diagonal-only band over a dense index: each block computes its diagonal tile, and a
  // work tile loads three different ones.
  SparseIndex index = build_dense_index(192, 1);
  index.band_sink = {0};
  index.band_local = {1};
  StageWalk w = walk_stages(index, 3);
  CHECK(w.block_stages == 3);
  CHECK(w.loaded_stages == 3);
  CHECK(w.pairs == 3 * 64 * 64);
  // A sink of one key keeps tile [0, 64) in every block, loaded once.
  index.band_sink = {1};
  w = walk_stages(index, 3);
  CHECK(w.block_stages == 5);
  CHECK(w.loaded_stages == 3);
}

TEST_CASE("vertical-slash indexes: walk invariants at both head dims", "[sparse][stage_walk]") {
  for (int64_t d : {64, 128}) {
    for (int64_t n : {50, 333, 700}) {
      const sparse_test::Dims dims{n, 4, 2, d};
      const auto in = sparse_test::peaked_inputs(dims, 5);
      const SparseIndex index =
          build_vertical_slash_index(in.q.data(), in.k.data(), {n, 4, 2, d}, 20, 40, 64, 4, 8);
      int64_t pairs = 0, slot_stages = 0;
      const int64_t nb = num_row_blocks(n);
      for (int64_t h = 0; h < 4; ++h) pairs += kernel_pair_count(index, h);
      for (int64_t slot = 0; slot < 4 * nb; ++slot) {
        const int64_t r1 = std::min<int64_t>(64 * (slot % nb) + 63, n - 1);
        for (int32_t r = index.range_offsets[slot]; r < index.range_offsets[slot + 1]; ++r)
          slot_stages += (index.range_end[r] - index.range_begin[r] + 63) / 64;
        int64_t causal_cols = 0;
        for (int32_t c = index.col_offsets[slot]; c < index.col_offsets[slot + 1]; ++c) causal_cols += index.cols[c] <= r1;
        slot_stages += (causal_cols + 63) / 64;
      }
      INFO("d " << d << ", n " << n);
      // One block per work tile: every stage loaded is computed by its block, as the index lists it.
      const StageWalk one = walk_stages(index, 1);
      CHECK(one.pairs == pairs);
      CHECK(one.loaded_stages == one.block_stages);
      CHECK(one.block_stages == slot_stages);
      for (int bpt = 2; bpt <= kMaxBlocksPerTile; ++bpt) {
        const StageWalk w = walk_stages(index, bpt);
        CHECK(w.pairs == pairs);
        CHECK(w.loaded_stages <= w.block_stages);
        if (nb > 1) CHECK(w.loaded_stages < one.loaded_stages);  // neighbours' slash tiles coincide
        CHECK(w.gathered_stages <= w.loaded_stages);
        CHECK(w.stage_pairs >= w.pairs);
        // The consecutive-key stages each block computes do not depend on the grouping; the
        // gathered ones are merged lists, at most one per 64 of a block's columns more.
        CHECK(w.block_stages - w.gathered_block_stages == one.block_stages - one.gathered_block_stages);
        CHECK(w.gathered_block_stages >= one.gathered_block_stages);
      }
    }
  }
}

TEST_CASE("the launched walk takes the kernel's work tiles", "[sparse][stage_walk]") {
  // a_shape says its blocks share their tiles: three per work tile at both head dims; other
  // indexes two at d = 64 and three at d = 128.
  const SparseIndex a_shape = build_a_shape_index(500, 2, 4, 70);
  REQUIRE(a_shape.row_blocks_share_tiles);
  CHECK(walk_stages_as_launched(a_shape, 64).loaded_stages == walk_stages(a_shape, 3).loaded_stages);
  SparseIndex unshared = a_shape;
  unshared.row_blocks_share_tiles = false;
  CHECK(walk_stages_as_launched(unshared, 64).loaded_stages == walk_stages(unshared, 2).loaded_stages);
  CHECK(walk_stages_as_launched(unshared, 128).loaded_stages == walk_stages(unshared, 3).loaded_stages);
  CHECK(walk_stages(unshared, 2).loaded_stages > walk_stages(unshared, 3).loaded_stages);
}

TEST_CASE("walk_stages rejects a block count the kernel cannot have", "[sparse][stage_walk]") {
  const SparseIndex index = build_dense_index(100, 1);
  CHECK_THROWS_AS(walk_stages(index, 0), hc::InputError);
  CHECK_THROWS_AS(walk_stages(index, kMaxBlocksPerTile + 1), hc::InputError);
}

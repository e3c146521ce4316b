// Atlas (HDF5) writer and reader: round trips, subsets of layers, atomic writes, bad input,
// and a cross-check with h5py (scripts/check_atlas_h5py.py) when python3 + h5py are present.
#include <functional>
#include <hdf5.h>
#include <sys/wait.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "catch.h"
#include "common/error.h"
#include "io/calibration/atlas.h"
#include "search/atlas_fixture.h"

namespace fs = std::filesystem;
using namespace hc;

namespace {

void set_root_attr_int(const std::string& path, const char* name, int64_t value) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  hid_t a = H5Aopen(f, name, H5P_DEFAULT);
  REQUIRE(a >= 0);
  REQUIRE(H5Awrite(a, H5T_NATIVE_INT64, &value) >= 0);
  H5Aclose(a);
  H5Fclose(f);
}

void set_root_attr_string(const std::string& path, const char* name, const char* value) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  REQUIRE(f >= 0);
  REQUIRE(H5Adelete(f, name) >= 0);
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  hid_t s = H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(f, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
  REQUIRE(H5Awrite(a, t, &value) >= 0);
  H5Aclose(a);
  H5Sclose(s);
  H5Tclose(t);
  H5Fclose(f);
}


}  // namespace

TEST_CASE("atlas round trip keeps meta, tokens, statistics and candidates", "[atlas]") {
  std::string dir = test::make_temp_dir("atlas_rt");
  for (int64_t tokens : {1000, 40}) {      // N not a multiple of 64, and N < 64
    for (int64_t head_dim : {64, 128}) {
      test::SyntheticSpec spec;
      spec.tokens = tokens;
      spec.head_dim = head_dim;
      spec.heads = 6;
      spec.kv_heads = 2;  // GQA
      std::string path = dir + "/a_" + std::to_string(tokens) + "_" + std::to_string(head_dim) + ".h5";
      test::write_synthetic_atlas(path, spec);

      Atlas a = Atlas::open(path);
      const AtlasMeta& m = a.meta();
      CHECK(a.version() == 2);
      CHECK(m.model_fingerprint == "fp-synthetic");
      CHECK(m.model_name == "synthetic-model");
      CHECK(m.arch == "llama");
      CHECK(m.layers == 4);
      CHECK(m.heads == 6);
      CHECK(m.kv_heads == 2);
      CHECK(m.head_dim == head_dim);
      CHECK(m.tokens == tokens);
      CHECK(m.prompt_sha256 == "0123abcd");
      CHECK(m.prompt_description == "synthetic prompt");
      CHECK(m.block_size == 64);
      CHECK(m.v_sink == 30);
      CHECK(m.s_local == 100);
      CHECK(m.map_size == 16);
      CHECK(m.statistics == 1);
      REQUIRE(a.tokens().size() == static_cast<size_t>(tokens));
      CHECK(a.tokens()[5] == static_cast<int32_t>((5 * 7919) % 49152));
      REQUIRE(a.recorded_layers() == std::vector<int64_t>{0, 1, 2, 3});

      AtlasMeta meta = test::synthetic_meta(spec);
      Grid grid = default_grid(tokens, meta.defaults());
      for (int64_t l = 0; l < 4; ++l) {
        AtlasLayer expect = test::synthetic_layer(meta, l, grid);
        const auto& rows = a.candidates(l);
        REQUIRE(rows.size() == expect.candidates.size());
        for (size_t i = 0; i < rows.size(); ++i) {
          CHECK(rows[i].head == expect.candidates[i].head);
          CHECK(rows[i].pattern == expect.candidates[i].pattern);
          CHECK(rows[i].p1 == expect.candidates[i].p1);
          CHECK(rows[i].p2 == expect.candidates[i].p2);
          CHECK(rows[i].cost == expect.candidates[i].cost);
          CHECK(rows[i].recall == expect.candidates[i].recall);
          CHECK(rows[i].out_err == expect.candidates[i].out_err);
        }
        AtlasLayer got = a.read_layer(l);
        CHECK(got.colmass == expect.colmass);
        CHECK(got.diagmass == expect.diagmass);
        CHECK(got.map == expect.map);
      }
    }
  }
  fs::remove_all(dir);
}

TEST_CASE("atlas with a subset of layers records which exist", "[atlas]") {
  std::string dir = test::make_temp_dir("atlas_subset");
  test::SyntheticSpec spec;
  spec.layers = 6;
  spec.recorded = {1, 4};
  std::string path = dir + "/sub.h5";
  test::write_synthetic_atlas(path, spec);
  Atlas a = Atlas::open(path);
  CHECK(a.recorded_layers() == std::vector<int64_t>{1, 4});
  CHECK(a.has_layer(4));
  CHECK_FALSE(a.has_layer(0));
  CHECK_THROWS_AS(a.candidates(0), InputError);
  CHECK(a.read_layer(4).colmass.size() == static_cast<size_t>(spec.heads * spec.tokens));
  fs::remove_all(dir);
}

TEST_CASE("atlas recorded without statistics: candidate tables only, and the writer holds to it", "[atlas]") {
  std::string dir = test::make_temp_dir("atlas_nostats");
  test::SyntheticSpec spec;
  spec.tokens = 300;
  AtlasMeta meta = test::synthetic_meta(spec);
  meta.statistics = 0;
  const Grid grid = default_grid(spec.tokens, meta.defaults());
  std::vector<int32_t> tokens(static_cast<size_t>(spec.tokens), 7);
  const std::string path = dir + "/nostats.h5";
  {
    AtlasWriter w(path, meta, tokens);
    AtlasLayer with_stats = test::synthetic_layer(meta, 0, grid);
    CHECK_THROWS_AS(w.write_layer(with_stats), InputError);  // statistics in an atlas without them
    AtlasLayer bare = with_stats;
    bare.colmass.clear();
    bare.diagmass.clear();
    bare.map.clear();
    w.write_layer(bare);
    w.finalize();
  }
  Atlas a = Atlas::open(path);
  CHECK(a.meta().statistics == 0);
  const AtlasLayer got = a.read_layer(0);
  CHECK(got.colmass.empty());
  CHECK(got.diagmass.empty());
  CHECK(got.map.empty());
  CHECK(got.candidates.size() == test::synthetic_layer(meta, 0, grid).candidates.size());
  {  // no colmass, diagmass or map datasets in the layer's group
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
    REQUIRE(f >= 0);
    CHECK(H5Lexists(f, "/prompt_00/layer_00/candidates", H5P_DEFAULT) > 0);
    CHECK(H5Lexists(f, "/prompt_00/layer_00/colmass", H5P_DEFAULT) == 0);
    CHECK(H5Lexists(f, "/prompt_00/layer_00/map", H5P_DEFAULT) == 0);
    H5Fclose(f);
  }
  // An atlas with statistics has them in every layer: a bare layer is refused.
  {
    AtlasMeta with = test::synthetic_meta(spec);
    AtlasWriter w(dir + "/stats.h5", with, tokens);
    AtlasLayer bare = test::synthetic_layer(with, 0, grid);
    bare.map.clear();
    CHECK_THROWS_AS(w.write_layer(bare), InputError);
  }
  fs::remove_all(dir);
}

TEST_CASE("an unfinished atlas leaves nothing behind; finished one appears at once", "[atlas]") {
  std::string dir = test::make_temp_dir("atlas_atomic");
  test::SyntheticSpec spec;
  AtlasMeta meta = test::synthetic_meta(spec);
  std::vector<int32_t> tokens(static_cast<size_t>(spec.tokens), 1);
  std::string path = dir + "/x.h5";
  {
    AtlasWriter w(path, meta, tokens);
    w.write_layer(test::synthetic_layer(meta, 0, default_grid(spec.tokens)));
    CHECK_FALSE(fs::exists(path));  // only the temporary exists while recording
  }
  CHECK_FALSE(fs::exists(path));
  CHECK(fs::is_empty(dir));  // temporary removed too

  AtlasWriter w(path, meta, tokens);
  w.write_layer(test::synthetic_layer(meta, 2, default_grid(spec.tokens)));
  // Layers must ascend; shapes must match the meta.
  CHECK_THROWS_AS(w.write_layer(test::synthetic_layer(meta, 1, default_grid(spec.tokens))), InputError);
  AtlasLayer bad = test::synthetic_layer(meta, 3, default_grid(spec.tokens));
  bad.colmass.pop_back();
  CHECK_THROWS_AS(w.write_layer(bad), InputError);
  AtlasLayer bad_head = test::synthetic_layer(meta, 3, default_grid(spec.tokens));
  bad_head.candidates[0].head = static_cast<int32_t>(spec.heads);
  CHECK_THROWS_AS(w.write_layer(bad_head), InputError);
  w.finalize();
  CHECK(fs::exists(path));
  CHECK(Atlas::open(path).recorded_layers() == std::vector<int64_t>{2});
  fs::remove_all(dir);
}

TEST_CASE("atlas writer rejects meta that cannot describe an atlas", "[atlas]") {
  std::string dir = test::make_temp_dir("atlas_badmeta");
  test::SyntheticSpec spec;
  AtlasMeta meta = test::synthetic_meta(spec);
  std::vector<int32_t> tokens(static_cast<size_t>(spec.tokens), 1);
  AtlasMeta zero_heads = meta;
  zero_heads.heads = 0;
  CHECK_THROWS_AS(AtlasWriter(dir + "/a.h5", zero_heads, tokens), InputError);
  AtlasMeta gqa = meta;
  gqa.kv_heads = 4;  // 6 % 4 != 0
  CHECK_THROWS_AS(AtlasWriter(dir + "/a.h5", gqa, tokens), InputError);
  std::vector<int32_t> short_tokens(10, 1);
  CHECK_THROWS_AS(AtlasWriter(dir + "/a.h5", meta, short_tokens), InputError);
  AtlasWriter empty(dir + "/b.h5", meta, tokens);
  CHECK_THROWS_AS(empty.finalize(), InputError);  // no layer recorded
  fs::remove_all(dir);
}

TEST_CASE("atlas reader rejects wrong format, version, non-HDF5 and truncated files", "[atlas]") {
  std::string dir = test::make_temp_dir("atlas_bad");
  test::SyntheticSpec spec;
  std::string path = dir + "/good.h5";
  test::write_synthetic_atlas(path, spec);

  std::string v3 = dir + "/v3.h5";
  fs::copy_file(path, v3);
  set_root_attr_int(v3, "version", 3);
  CHECK(hc::test::throws_input_error_containing([&] { Atlas::open(v3); }, "version 3"));

  std::string other = dir + "/other.h5";
  fs::copy_file(path, other);
  set_root_attr_string(other, "format", "something-else");
  CHECK(hc::test::throws_input_error_containing([&] { Atlas::open(other); }, "format"));
  // Version 2 stores fixed-length strings; a variable-length one (HDF5's global heap, whose reader
  // can loop on a damaged file) is refused before it is read.
  std::string vlen = dir + "/vlen.h5";
  fs::copy_file(path, vlen);
  set_root_attr_string(vlen, "format", "headcal-atlas");
  CHECK(hc::test::throws_input_error_containing([&] { Atlas::open(vlen); }, "variable-length string"));

  std::string text = dir + "/text.h5";
  std::ofstream(text) << "not hdf5 at all\n";
  CHECK(hc::test::throws_input_error_containing([&] { Atlas::open(text); }, "not an HDF5 file"));

  CHECK(hc::test::throws_input_error_containing([&] { Atlas::open(dir + "/missing.h5"); }, "no such atlas"));

  std::string cut = dir + "/cut.h5";
  fs::copy_file(path, cut);
  fs::resize_file(cut, fs::file_size(cut) / 2);
  CHECK_THROWS_AS(
      [&] {
        Atlas a = Atlas::open(cut);
        for (int64_t l : a.recorded_layers()) a.read_layer(l);
      }(),
      InputError);
  fs::remove_all(dir);
}

TEST_CASE("atlas reader: version 1 files (one prompt at the root) read as one prompt", "[atlas]") {
  std::string dir = test::make_temp_dir("atlas_v1");
  test::SyntheticSpec spec;
  spec.recorded = {1, 3};
  const std::string v2 = dir + "/v2.h5", v1 = dir + "/v1.h5";
  test::write_synthetic_atlas(v2, spec);
  fs::copy_file(v2, v1);
  {  // Rebuild the version 1 layout: the first prompt's tokens and layers at the root.
    hid_t f = H5Fopen(v1.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    for (const char* name : {"tokens", "layer_01", "layer_03"})
      REQUIRE(H5Lmove(f, (std::string("prompt_00/") + name).c_str(), f, name, H5P_DEFAULT, H5P_DEFAULT) >= 0);
    REQUIRE(H5Ldelete(f, "prompt_00", H5P_DEFAULT) >= 0);
    H5Fclose(f);
  }
  set_root_attr_int(v1, "version", 1);
  set_root_attr_string(v1, "format", "headcal-atlas");  // version 1 wrote variable-length strings
  const Atlas a = Atlas::open(v1), b = Atlas::open(v2);
  CHECK(a.version() == 1);
  REQUIRE(a.prompt_count() == 1);
  CHECK(a.prompt(0).name == "prompt");
  CHECK(a.prompt(0).description == b.meta().prompt_description);
  CHECK(a.prompt(0).sha256 == b.meta().prompt_sha256);
  CHECK(a.tokens() == b.tokens());
  CHECK(a.recorded_layers() == b.recorded_layers());
  for (int64_t l : a.recorded_layers()) {
    CHECK(a.candidates(l).size() == b.candidates(l).size());
    const AtlasLayer x = a.read_layer(l), y = b.read_layer(l);
    CHECK(x.colmass == y.colmass);
    CHECK(x.map == y.map);
  }
  fs::remove_all(dir);
}

TEST_CASE("atlas fixture: two prompts recorded from tests/data/good_prompt_set", "[atlas]") {
  // headcal record --model random:tiny --prompt-set tests/data/good_prompt_set/set.yaml --device cpu --map-size 8
  const Atlas a = Atlas::open(test::data_path("good_atlas_two_prompts.h5"));
  REQUIRE(a.prompt_count() == 2);
  CHECK(a.prompt(0).name == "ids");
  CHECK(a.prompt(0).weight == 2.0);
  CHECK(a.prompt(0).tokens.size() == 24);
  CHECK(a.prompt(1).tokens.size() == 70);
  CHECK(a.meta().tokens == 70);
  CHECK(a.recorded_layers() == std::vector<int64_t>{0, 1});
  CHECK(a.read_layer(1, 1).colmass.size() == static_cast<size_t>(a.meta().heads * 70));
}

TEST_CASE("atlas reader: index datasets stored as floats are rejected", "[atlas]") {
  std::string dir = test::make_temp_dir("atlas_float");
  test::SyntheticSpec spec;
  spec.recorded = {0, 1};
  const std::string path = dir + "/f.h5";
  test::write_synthetic_atlas(path, spec);
  {  // /recorded_layers rewritten as float64 with the same values
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    REQUIRE(f >= 0);
    REQUIRE(H5Ldelete(f, "recorded_layers", H5P_DEFAULT) >= 0);
    const double values[2] = {0, 1};
    const hsize_t dims[1] = {2};
    hid_t space = H5Screate_simple(1, dims, nullptr);
    hid_t ds = H5Dcreate2(f, "recorded_layers", H5T_IEEE_F64LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    REQUIRE(H5Dwrite(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) >= 0);
    H5Dclose(ds);
    H5Sclose(space);
    H5Fclose(f);
  }
  CHECK(hc::test::throws_input_error_containing([&] { Atlas::open(path); }, "/recorded_layers: not stored as integers"));
  fs::remove_all(dir);
}

TEST_CASE("h5py reads the atlas with no headcal code", "[atlas][python]") {
  if (std::system("python3 -c 'import h5py, numpy' >/dev/null 2>&1") != 0) {
    WARN("skipped: python3 with h5py and numpy is not available");
    return;
  }
  std::string dir = test::make_temp_dir("atlas_h5py");
  test::SyntheticSpec spec;
  spec.layers = 5;
  spec.recorded = {0, 2, 3};
  std::string path = dir + "/py.h5";
  test::write_synthetic_atlas(path, spec);
  auto check = [&](const std::string& atlas) {
    const std::string cmd = std::string("python3 '") + HEADCAL_SOURCE_DIR + "/scripts/check_atlas_h5py.py' '" + atlas +
                            "' 5 6 " + std::to_string(spec.tokens) + " 16 0,2,3";
    const int status = std::system(cmd.c_str());
    REQUIRE(WIFEXITED(status));
    return WEXITSTATUS(status);
  };
  CHECK(check(path) == 0);
  // Recorded without statistics: the candidate tables, no statistics datasets.
  test::SyntheticSpec bare = spec;
  bare.statistics = false;
  test::write_synthetic_atlas(dir + "/bare.h5", bare);
  CHECK(check(dir + "/bare.h5") == 0);
  fs::remove_all(dir);
}

// What MInference and the vLLM/SGLang dual-chunk backend would run instead of a profile's heads
// (io/calibration/export_changes.h), and the table `headcal export` prints from it.
#include <string>

#include "catch.h"
#include "common/error.h"
#include "io/calibration/export_changes.h"

using namespace hc;

namespace {

// One layer of `heads` heads, every head `c`, model type `arch`, calibrated at `tokens`.
Profile uniform(const std::string& arch, int64_t heads, GridCandidate c, int64_t tokens = 65536) {
  Profile p;
  p.model = {"m", arch, 1, heads, 1, 64, "fp"};
  p.calibration = {"prompt", tokens, "sha", "global-density", 0.3, 0.3, 0.95, "0.1.0", "", 1};
  for (int64_t h = 0; h < heads; ++h) {
    ProfileHead e;
    e.head = h;
    e.pattern = c.pattern;
    e.p1 = c.p1;
    e.p2 = c.p2;
    e.recall = 0.9;
    e.density = 0.2;
    p.heads.push_back(e);
  }
  return p;
}

size_t count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos; at = haystack.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("patterns MInference runs exactly give no change", "[export]") {
  for (GridCandidate c : {GridCandidate{Pattern::vertical_slash, 1000, 800},
                          GridCandidate{Pattern::a_shape, 64, 1024},
                          GridCandidate{Pattern::block_sparse, 100, 0}}) {
    INFO(describe_candidate(c));
    CHECK(export_changes(uniform("llama", 3, c), Target::minference).empty());
  }
}

TEST_CASE("MInference: block_sparse k != 100 and dense heads are changes, per head", "[export]") {
  Profile p = uniform("llama", 3, {Pattern::block_sparse, 8, 0}, 8192);
  p.heads[1].p1 = 100;  // runs as it is
  p.heads[2] = p.heads[0];
  p.heads[2].head = 2;
  p.heads[2].pattern = Pattern::dense;
  p.heads[2].p1 = 0;
  auto ch = export_changes(p, Target::minference);
  REQUIRE(ch.size() == 2);
  CHECK(ch[0].head == 0);
  CHECK(ch[0].headcal == "block_sparse(k=8)");
  CHECK(ch[0].runtime.find("k=100") != std::string::npos);
  CHECK(ch[1].head == 2);
  CHECK(ch[1].runtime.find("vertical_and_slash(8192, 8192)") != std::string::npos);
  CHECK(ch[1].runtime.find("dense up to 8192 tokens only") != std::string::npos);
  CHECK_FALSE(ch[0].impossible);
}

TEST_CASE("MInference: clamps and forced sets against the profile's defaults", "[export]") {
  Profile p = uniform("llama", 2, {Pattern::vertical_slash, 20, 40});
  p.defaults.v_sink = 10;
  p.defaults.s_local = 10;
  p.heads[1].p1 = 500;
  p.heads[1].p2 = 800;
  auto ch = export_changes(p, Target::minference);
  REQUIRE(ch.size() == 2);
  CHECK(ch[0].kind == "v < 30 or s < 50 raised");
  CHECK(ch[0].runtime.find("vertical_and_slash(30, 50)") == 0);
  CHECK(ch[1].kind == "forced columns / diagonals / estimate differ");
  CHECK(ch[1].runtime.find("v_sink 10, s_local 10") != std::string::npos);

  Profile q = uniform("llama", 1, {Pattern::vertical_slash, 1000, 800});
  q.defaults.last_q = 128;  // MInference always estimates from 64 queries
  CHECK(export_changes(q, Target::minference).size() == 1);
  // The config block that export prints for dual-chunk sets sparse_attention_last_q: it matches.
  q.model.arch = "qwen2";
  CHECK(export_changes(q, Target::dual_chunk).empty());
}

TEST_CASE("dual-chunk: non vertical-slash heads impossible, v = 30 bumped, threshold and model type", "[export]") {
  auto ch = export_changes(uniform("qwen2", 2, {Pattern::a_shape, 64, 512}), Target::dual_chunk);
  REQUIRE(ch.size() == 2);
  CHECK(ch[0].impossible);
  CHECK(ch[1].impossible);

  ch = export_changes(uniform("qwen3", 1, {Pattern::vertical_slash, 30, 800}), Target::dual_chunk);
  REQUIRE(ch.size() == 1);
  CHECK(ch[0].runtime.find("vertical_and_slash(130, 800)") == 0);

  // A Llama model and a calibration length at the threshold: two whole-profile changes first.
  ch = export_changes(uniform("llama", 1, {Pattern::vertical_slash, 1000, 800}, 32768), Target::dual_chunk);
  REQUIRE(ch.size() == 2);
  CHECK(ch[0].layer == -1);
  CHECK(ch[0].runtime.find("qwen2, qwen2_moe, qwen3, qwen3_moe (vLLM)") != std::string::npos);
  CHECK(ch[0].runtime.find("glm4, qwen2, qwen2_moe, qwen3_moe (SGLang)") != std::string::npos);
  CHECK(ch[1].runtime.find("above sparse_attention_threshold = 32768") != std::string::npos);
  // One token more and a Qwen2 model: nothing changes.
  CHECK(export_changes(uniform("qwen2", 1, {Pattern::vertical_slash, 1000, 800}, 32769), Target::dual_chunk)
            .empty());
  // glm4 is SGLang's only: still a model type with the backend.
  CHECK(export_changes(uniform("glm4", 1, {Pattern::vertical_slash, 1000, 800}), Target::dual_chunk).empty());
}

TEST_CASE("the change table lists every head when short and summarises per kind when long", "[export]") {
  Profile p = uniform("llama", 3, {Pattern::block_sparse, 8, 0}, 4096);
  p.heads[2].pattern = Pattern::dense;
  p.heads[2].p1 = 0;
  std::string t = format_export_changes(export_changes(p, Target::minference), Target::minference);
  CHECK(t.find("block_sparse k != 100: 2 head(s)") != std::string::npos);
  CHECK(t.find("dense written as vertical_and_slash(N, N): 1 head(s)") != std::string::npos);
  CHECK(t.find("MInference runs") != std::string::npos);
  CHECK(count(t, "block_sparse(k=8)") == 2);  // one row per head
  CHECK(t.find("\n    0      1     block_sparse(k=8)") != std::string::npos);
  CHECK(t.find("more") == std::string::npos);

  Profile big = uniform("llama", 50, {Pattern::block_sparse, 8, 0});
  t = format_export_changes(export_changes(big, Target::minference), Target::minference, 40, 5);
  CHECK(t.find("block_sparse k != 100: 50 head(s)") != std::string::npos);
  CHECK(count(t, "block_sparse(k=8)") == 5);
  CHECK(t.find("... and 45 more") != std::string::npos);

  Profile whole = uniform("llama", 1, {Pattern::vertical_slash, 1000, 800}, 8192);
  t = format_export_changes(export_changes(whole, Target::dual_chunk), Target::dual_chunk);
  CHECK(t.find("the whole profile") != std::string::npos);
  CHECK(t.find("    all    all   ") != std::string::npos);
}

// ---- runtime_head: the one mapping of a head to what a runtime computes ----

namespace {

const PatternDefaults kStandard{};  // block 64, last_q 64, v_sink 30, s_local 100

GridCandidate vs(int32_t v, int32_t s) { return {Pattern::vertical_slash, v, s}; }

}  // namespace

TEST_CASE("runtime_head: headcal runs every head exactly", "[export][target]") {
  PatternDefaults odd{64, 17, 3, 5};
  for (GridCandidate c : {GridCandidate{}, GridCandidate{Pattern::a_shape, 1, 4}, vs(3, 5),
                          GridCandidate{Pattern::block_sparse, 2, 0}}) {
    INFO(describe_candidate(c));
    const RuntimeHead r = runtime_head(Target::headcal, c, odd, 1000, 100);
    CHECK(r.exact());
    CHECK(r.config == c);
    CHECK(r.defaults.last_q == 17);
    CHECK(r.defaults.v_sink == 3);
  }
  CHECK(export_changes(uniform("llama", 2, {Pattern::block_sparse, 8, 0}), Target::headcal).empty());
}

TEST_CASE("runtime_head: MInference's rules", "[export][target]") {
  const int64_t n = 8191;  // odd on purpose
  SECTION("block_sparse keeps 100 blocks whatever k") {
    for (int32_t k : {2, 8, 99, 101, 400}) {
      const RuntimeHead r = runtime_head(Target::minference, {Pattern::block_sparse, k, 0}, kStandard, n);
      CHECK(r.runs);
      CHECK_FALSE(r.exact());
      CHECK(r.config == GridCandidate{Pattern::block_sparse, 100, 0});
      CHECK(r.kind == "block_sparse k != 100");
    }
    CHECK(runtime_head(Target::minference, {Pattern::block_sparse, 100, 0}, kStandard, n).exact());
  }
  SECTION("no dense: vertical_and_slash(N, N) at the calibration length") {
    const RuntimeHead r = runtime_head(Target::minference, GridCandidate{}, kStandard, n);
    CHECK_FALSE(r.exact());
    CHECK(r.config == vs(8191, 8191));
    CHECK(r.runtime.find("dense up to 8191 tokens only") != std::string::npos);
    // Run on a longer prompt, the stand-in is still N = the calibration length.
    CHECK(runtime_head(Target::minference, GridCandidate{}, kStandard, n, 20000).config == vs(8191, 8191));
  }
  SECTION("a_shape is stream_llm: exact") {
    CHECK(runtime_head(Target::minference, {Pattern::a_shape, 1, 4}, kStandard, n).exact());
  }
  SECTION("vertical_slash: v raised to >= 30, s to >= 50, forced 30 columns / 100 diagonals / last_q 64") {
    CHECK(runtime_head(Target::minference, vs(30, 100), kStandard, n).exact());
    CHECK(runtime_head(Target::minference, vs(1000, 800), kStandard, n).exact());
    const PatternDefaults low{64, 64, 10, 10};
    RuntimeHead r = runtime_head(Target::minference, vs(20, 800), low, n);
    CHECK(r.config == vs(30, 800));
    CHECK(r.kind == "v < 30 or s < 50 raised");
    r = runtime_head(Target::minference, vs(40, 20), low, n);
    CHECK(r.config == vs(40, 50));
    // s = 50 under the runtime's 100 forced diagonals is no headcal set.
    CHECK_FALSE(candidate_problem(r.config, r.defaults).empty());
    r = runtime_head(Target::minference, vs(500, 800), low, n);
    CHECK(r.config == vs(500, 800));
    CHECK(r.kind == "forced columns / diagonals / estimate differ");
    CHECK(r.defaults.v_sink == 30);
    CHECK(r.defaults.s_local == 100);
    PatternDefaults long_estimate = kStandard;
    long_estimate.last_q = 128;
    r = runtime_head(Target::minference, vs(500, 800), long_estimate, n);
    CHECK_FALSE(r.exact());
    CHECK(r.defaults.last_q == 64);
    CHECK(candidate_problem(r.config, r.defaults).empty());
  }
  SECTION("the threshold is dual-chunk's only") {
    CHECK(runtime_head(Target::minference, vs(1000, 800), kStandard, 1000, 1000).exact());
  }
}

TEST_CASE("runtime_head: dual-chunk attention's rules", "[export][target]") {
  const int64_t n = 40001;
  SECTION("only vertical_slash runs: a_shape and block_sparse are impossible, also below the threshold") {
    for (GridCandidate c : {GridCandidate{Pattern::a_shape, 64, 512}, GridCandidate{Pattern::block_sparse, 100, 0}})
      for (int64_t run : {n, int64_t{1000}}) {
        const RuntimeHead r = runtime_head(Target::dual_chunk, c, kStandard, n, run);
        CHECK_FALSE(r.runs);
        CHECK_FALSE(r.exact());
        CHECK(r.kind == "not vertical_slash (impossible)");
      }
  }
  SECTION("v = 30 runs as 130; any other v exactly, whatever last_q") {
    RuntimeHead r = runtime_head(Target::dual_chunk, vs(30, 800), kStandard, n);
    CHECK(r.config == vs(130, 800));
    CHECK(r.kind == "v = 30 runs as 130");
    CHECK(runtime_head(Target::dual_chunk, vs(31, 800), kStandard, n).exact());
    PatternDefaults long_estimate = kStandard;
    long_estimate.last_q = 128;  // the exported config block sets sparse_attention_last_q
    r = runtime_head(Target::dual_chunk, vs(1000, 800), long_estimate, n);
    CHECK(r.exact());
    CHECK(r.defaults.last_q == 128);
    // No clamp: a v below the 30 forced columns is no headcal set.
    r = runtime_head(Target::dual_chunk, vs(20, 800), {64, 64, 10, 100}, n);
    CHECK(r.config == vs(20, 800));
    CHECK_FALSE(candidate_problem(r.config, r.defaults).empty());
  }
  SECTION("dense above the threshold is vertical_and_slash(N, N); every head dense at or below it") {
    CHECK(runtime_head(Target::dual_chunk, GridCandidate{}, kStandard, n).config == vs(40001, 40001));
    CHECK(runtime_head(Target::dual_chunk, GridCandidate{}, kStandard, n, 32768).exact());
    for (int64_t run : {int64_t{1}, int64_t{32767}, int64_t{32768}}) {
      const RuntimeHead r = runtime_head(Target::dual_chunk, vs(1000, 800), kStandard, n, run);
      CHECK(r.runs);
      CHECK(r.config == GridCandidate{});
      CHECK(r.kind == "prompt at or below the sparse threshold");
    }
    CHECK(runtime_head(Target::dual_chunk, vs(1000, 800), kStandard, n, 32769).exact());
    // One length for both: the calibration length decides.
    CHECK(runtime_head(Target::dual_chunk, vs(1000, 800), kStandard, 32768).config == GridCandidate{});
  }
  SECTION("which models and lengths run no sparse attention at all") {
    CHECK(target_runs_dense(Target::dual_chunk, "llama", 65536).find("model type 'llama'") != std::string::npos);
    CHECK(target_runs_dense(Target::dual_chunk, "qwen2", 32768).find("32768") != std::string::npos);
    CHECK(target_runs_dense(Target::dual_chunk, "qwen2", 32769).empty());
    CHECK(target_runs_dense(Target::dual_chunk, "glm4", 32769).empty());
    CHECK(target_runs_dense(Target::minference, "llama", 100).empty());
    CHECK(target_runs_dense(Target::headcal, "llama", 100).empty());
  }
}

TEST_CASE("profile_as_run: a profile's heads as the runtime runs them, or the heads it cannot", "[export][target]") {
  Profile p = uniform("qwen2", 4, {Pattern::block_sparse, 2, 0}, 8000);
  p.heads[1].pattern = Pattern::dense;
  p.heads[1].p1 = 0;
  p.heads[2].pattern = Pattern::a_shape;
  p.heads[2].p1 = 64;
  p.heads[2].p2 = 512;
  p.heads[3].pattern = Pattern::vertical_slash;
  p.heads[3].p1 = 30;
  p.heads[3].p2 = 800;
  p.defaults.last_q = 128;

  std::vector<ExportChange> changes;
  const Profile m = profile_as_run(p, Target::minference, 8000, "p.yaml", &changes);
  CHECK(m.at(0, 0).candidate() == GridCandidate{Pattern::block_sparse, 100, 0});
  CHECK(m.at(0, 1).candidate() == vs(8000, 8000));
  CHECK(m.at(0, 2).candidate() == p.at(0, 2).candidate());
  CHECK(m.at(0, 3).candidate() == vs(30, 800));
  CHECK(m.defaults.last_q == 64);
  CHECK(m.at(0, 0).recall == p.at(0, 0).recall);  // the calibrated head's measurement stays
  REQUIRE(changes.size() == 3);  // block_sparse, dense, and the estimate of the vertical_slash head
  CHECK(change_head_list(changes) == "L0H0, L0H1, L0H3");
  CHECK(format_export_changes(changes, Target::minference).find("block_sparse k != 100: 1 head(s)") != std::string::npos);

  // The identity for headcal, and nothing listed.
  const Profile same = profile_as_run(p, Target::headcal, 8000, "p.yaml", &changes);
  CHECK(changes.empty());
  for (size_t i = 0; i < p.heads.size(); ++i) CHECK(same.heads[i].candidate() == p.heads[i].candidate());

  // dual-chunk cannot run block_sparse or a_shape: an error naming the heads and the option.
  CHECK(test::throws_input_error_containing([&] { profile_as_run(p, Target::dual_chunk, 40000, "p.yaml"); },
                                            "2 head(s) cannot run in vLLM/SGLang dual-chunk attention"));
  CHECK(test::throws_input_error_containing([&] { profile_as_run(p, Target::dual_chunk, 40000, "p.yaml"); },
                                            "L0H0, L0H2"));
  // A head MInference runs as a set headcal does not compute: an error naming it.
  Profile low = uniform("llama", 2, vs(1000, 800));
  low.defaults.s_local = 20;
  low.heads[1].p2 = 40;
  CHECK(test::throws_input_error_containing([&] { profile_as_run(low, Target::minference, 8000, "low.yaml"); },
                                            "L0H1 runs vertical_and_slash(1000, 50)"));
}

TEST_CASE("export_changes and runtime_head agree head by head", "[export][target]") {
  Profile p = uniform("qwen3", 4, vs(30, 800), 50000);
  p.heads[1].pattern = Pattern::dense;
  p.heads[1].p1 = 0;
  p.heads[1].p2 = 0;
  p.heads[2].p1 = 500;
  for (Target t : {Target::minference, Target::dual_chunk}) {
    const std::vector<ExportChange> ch = export_changes(p, t);
    size_t changed = 0;
    for (const ProfileHead& h : p.heads) changed += !runtime_head(t, h.candidate(), p.defaults, 50000).exact();
    CHECK(ch.size() == changed);
  }
}

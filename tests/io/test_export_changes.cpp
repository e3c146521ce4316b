// What MInference and the vLLM/SGLang dual-chunk backend would run instead of a profile's heads
// (io/export_changes.h), and the table `headcal export` prints from it.
#include <string>

#include "catch.h"
#include "io/export_changes.h"

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
  for (GridCandidate c : {GridCandidate{PatternKind::vertical_slash, 1000, 800},
                          GridCandidate{PatternKind::a_shape, 64, 1024},
                          GridCandidate{PatternKind::block_sparse, 100, 0}}) {
    INFO(describe_candidate(c));
    CHECK(export_changes(uniform("llama", 3, c), ExportTarget::minference).empty());
  }
}

TEST_CASE("MInference: block_sparse k != 100 and dense heads are changes, per head", "[export]") {
  Profile p = uniform("llama", 3, {PatternKind::block_sparse, 8, 0}, 8192);
  p.heads[1].p1 = 100;  // runs as it is
  p.heads[2] = p.heads[0];
  p.heads[2].head = 2;
  p.heads[2].pattern = PatternKind::dense;
  p.heads[2].p1 = 0;
  auto ch = export_changes(p, ExportTarget::minference);
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
  Profile p = uniform("llama", 2, {PatternKind::vertical_slash, 20, 40});
  p.defaults.v_sink = 10;
  p.defaults.s_local = 10;
  p.heads[1].p1 = 500;
  p.heads[1].p2 = 800;
  auto ch = export_changes(p, ExportTarget::minference);
  REQUIRE(ch.size() == 2);
  CHECK(ch[0].kind == "v < 30 or s < 50 raised");
  CHECK(ch[0].runtime.find("vertical_and_slash(30, 50)") == 0);
  CHECK(ch[1].kind == "forced columns / diagonals / estimate differ");
  CHECK(ch[1].runtime.find("v_sink 10, s_local 10") != std::string::npos);

  Profile q = uniform("llama", 1, {PatternKind::vertical_slash, 1000, 800});
  q.defaults.last_q = 128;  // MInference always estimates from 64 queries
  CHECK(export_changes(q, ExportTarget::minference).size() == 1);
  // The config block that export prints for dual-chunk sets sparse_attention_last_q: it matches.
  q.model.arch = "qwen2";
  CHECK(export_changes(q, ExportTarget::dual_chunk).empty());
}

TEST_CASE("dual-chunk: non vertical-slash heads impossible, v = 30 bumped, threshold and model type", "[export]") {
  auto ch = export_changes(uniform("qwen2", 2, {PatternKind::a_shape, 64, 512}), ExportTarget::dual_chunk);
  REQUIRE(ch.size() == 2);
  CHECK(ch[0].impossible);
  CHECK(ch[1].impossible);

  ch = export_changes(uniform("qwen3", 1, {PatternKind::vertical_slash, 30, 800}), ExportTarget::dual_chunk);
  REQUIRE(ch.size() == 1);
  CHECK(ch[0].runtime.find("vertical_and_slash(130, 800)") == 0);

  // A Llama model and a calibration length at the threshold: two whole-profile changes first.
  ch = export_changes(uniform("llama", 1, {PatternKind::vertical_slash, 1000, 800}, 32768), ExportTarget::dual_chunk);
  REQUIRE(ch.size() == 2);
  CHECK(ch[0].layer == -1);
  CHECK(ch[0].runtime.find("qwen2, qwen2_moe, qwen3, qwen3_moe (vLLM)") != std::string::npos);
  CHECK(ch[0].runtime.find("glm4, qwen2, qwen2_moe, qwen3_moe (SGLang)") != std::string::npos);
  CHECK(ch[1].runtime.find("above sparse_attention_threshold = 32768") != std::string::npos);
  // One token more and a Qwen2 model: nothing changes.
  CHECK(export_changes(uniform("qwen2", 1, {PatternKind::vertical_slash, 1000, 800}, 32769), ExportTarget::dual_chunk)
            .empty());
  // glm4 is SGLang's only: still a model type with the backend.
  CHECK(export_changes(uniform("glm4", 1, {PatternKind::vertical_slash, 1000, 800}), ExportTarget::dual_chunk).empty());
}

TEST_CASE("the change table lists every head when short and summarises per kind when long", "[export]") {
  Profile p = uniform("llama", 3, {PatternKind::block_sparse, 8, 0}, 4096);
  p.heads[2].pattern = PatternKind::dense;
  p.heads[2].p1 = 0;
  std::string t = format_export_changes(export_changes(p, ExportTarget::minference), ExportTarget::minference);
  CHECK(t.find("block_sparse k != 100: 2 head(s)") != std::string::npos);
  CHECK(t.find("dense written as vertical_and_slash(N, N): 1 head(s)") != std::string::npos);
  CHECK(t.find("MInference runs") != std::string::npos);
  CHECK(count(t, "block_sparse(k=8)") == 2);  // one row per head
  CHECK(t.find("\n    0      1     block_sparse(k=8)") != std::string::npos);
  CHECK(t.find("more") == std::string::npos);

  Profile big = uniform("llama", 50, {PatternKind::block_sparse, 8, 0});
  t = format_export_changes(export_changes(big, ExportTarget::minference), ExportTarget::minference, 40, 5);
  CHECK(t.find("block_sparse k != 100: 50 head(s)") != std::string::npos);
  CHECK(count(t, "block_sparse(k=8)") == 5);
  CHECK(t.find("... and 45 more") != std::string::npos);

  Profile whole = uniform("llama", 1, {PatternKind::vertical_slash, 1000, 800}, 8192);
  t = format_export_changes(export_changes(whole, ExportTarget::dual_chunk), ExportTarget::dual_chunk);
  CHECK(t.find("the whole profile") != std::string::npos);
  CHECK(t.find("    all    all   ") != std::string::npos);
}

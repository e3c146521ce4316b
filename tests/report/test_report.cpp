// report: CSV contents, a self-contained HTML page, and the PNG/base64 encoders behind its
// thumbnails (decoded by Python's zlib when python3 is present).
#include <sys/wait.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "catch.h"
#include "common/error.h"
#include "search/atlas_fixture.h"
#include "report/png.h"
#include "report/report.h"
#include "search/search.h"

namespace fs = std::filesystem;
using namespace hc;

namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

size_t count_of(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("base64 matches RFC 4648 test vectors", "[report]") {
  CHECK(report::base64_encode("") == "");
  CHECK(report::base64_encode("f") == "Zg==");
  CHECK(report::base64_encode("fo") == "Zm8=");
  CHECK(report::base64_encode("foo") == "Zm9v");
  CHECK(report::base64_encode("foob") == "Zm9vYg==");
  CHECK(report::base64_encode("fooba") == "Zm9vYmE=");
  CHECK(report::base64_encode("foobar") == "Zm9vYmFy");
}

TEST_CASE("palette PNG is well formed and decodes to the pixels", "[report]") {
  const int w = 37, h = 5;  // odd width; rows are not aligned to anything
  std::vector<uint8_t> pixels(w * h);
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = static_cast<uint8_t>(i * 7);
  std::string png = report::encode_png_palette(pixels, w, h, report::heat_palette());
  REQUIRE(png.substr(0, 8) == std::string("\x89PNG\r\n\x1a\n", 8));
  CHECK(png.substr(12, 4) == "IHDR");
  CHECK(static_cast<uint8_t>(png[19]) == w);
  CHECK(static_cast<uint8_t>(png[23]) == h);
  CHECK(png.substr(png.size() - 8, 4) == "IEND");
  // The palette runs dark to bright.
  const auto& pal = report::heat_palette();
  CHECK(pal[0][0] + pal[0][1] + pal[0][2] < pal[255][0] + pal[255][1] + pal[255][2]);

  if (std::system("python3 -c 'import zlib' >/dev/null 2>&1") != 0) {
    WARN("skipped the zlib decode: no python3");
    return;
  }
  std::string dir = test::make_temp_dir("png");
  std::ofstream(dir + "/t.png", std::ios::binary) << png;
  // Checks every chunk's CRC, inflates IDAT with zlib and compares with the pixels we wrote.
  std::string script =
      "import struct,zlib,sys\n"
      "d=open(sys.argv[1],'rb').read(); p=8; idat=b''\n"
      "while p<len(d):\n"
      "  n,=struct.unpack('>I',d[p:p+4]); t=d[p+4:p+8]; body=d[p+8:p+8+n]\n"
      "  assert struct.unpack('>I',d[p+8+n:p+12+n])[0]==zlib.crc32(t+body), t\n"
      "  idat+=body if t==b'IDAT' else b''; p+=12+n\n"
      "raw=zlib.decompress(idat); w,h=37,5\n"
      "rows=[raw[y*(w+1):(y+1)*(w+1)] for y in range(h)]\n"
      "assert all(r[0]==0 for r in rows)\n"
      "px=b''.join(r[1:] for r in rows)\n"
      "assert px==bytes((i*7)%256 for i in range(w*h)), 'pixels differ'\n";
  std::ofstream(dir + "/check.py") << script;
  int status = std::system(("python3 '" + dir + "/check.py' '" + dir + "/t.png'").c_str());
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 0);
  fs::remove_all(dir);
}

namespace {

void write_validation(const std::string& path, const std::string& method, double density, double kl, double top1) {
  std::ofstream(path) << "{\"format\": \"headcal-validation\", \"version\": 1,"
                      << (method.empty() ? "" : " \"method\": \"" + method + "\",")
                      << " \"profile\": {\"path\": \"profiles/p-" << density << ".yaml\"},"
                      << " \"prompt\": {\"description\": \"passkey\", \"tokens\": 4000}, \"passed\": true,"
                      << " \"summary\": {\"mean_recall\": 0.97, \"density\": " << density << ", \"mean_kl\": " << kl
                      << ", \"top1_agreement\": " << top1 << "}}";
}

}  // namespace

TEST_CASE("report shows validation records and, with several, the quality frontier", "[report]") {
  std::string dir = test::make_temp_dir("report_validation");
  test::SyntheticSpec spec;
  test::write_synthetic_atlas(dir + "/a.h5", spec);
  Atlas atlas = Atlas::open(dir + "/a.h5");
  write_validation(dir + "/v1.json", "headcal", 0.2, 0.01, 0.95);
  write_validation(dir + "/v2.json", "headcal", 0.4, 0.002, 0.99);
  write_validation(dir + "/v3.json", "", 0.3, 0.05, 0.9);

  SECTION("the method is the record's own label, else the profile's file name") {
    auto records = report::read_validation_records({dir + "/v1.json", dir + "/v3.json"});
    CHECK(records[0].method == "headcal");
    CHECK(records[1].method == "p-0.3.yaml");
    CHECK(records[0].mean_kl == Approx(0.01));
    CHECK(records[1].top1_agreement == Approx(0.9));
    CHECK(records[1].tokens == 4000);
  }
  SECTION("a prompt set's record (version 2): the set's description and its prompts' length") {
    std::ofstream(dir + "/set.json")
        << "{\"format\": \"headcal-validation\", \"version\": 2, \"method\": \"set\", "
           "\"prompt_set\": {\"description\": \"prompt set held-out\", \"prompts\": 2}, "
           "\"summary\": {\"density\": 0.3, \"mean_kl\": 0.004, \"worst_kl\": 0.006, \"top1_agreement\": 0.97, "
           "\"mean_recall\": 0.97}, \"prompts\": [{\"name\": \"a\", \"prompt\": {\"tokens\": 8192}}]}";
    const auto r = report::read_validation_record(dir + "/set.json");
    CHECK(r.method == "set");
    CHECK(r.prompt == "prompt set held-out");
    CHECK(r.tokens == 8192);
    CHECK(r.mean_kl == Approx(0.004));
  }
  SECTION("one record: a table, no frontier") {
    auto records = report::read_validation_records({dir + "/v1.json"});
    std::string html = slurp(report::write_report(atlas, nullptr, dir + "/one", records).html);
    CHECK(html.find("<h2>Validation</h2>") != std::string::npos);
    CHECK(html.find("mean KL against density") == std::string::npos);
  }
  SECTION("several records: two frontier plots, one line per method") {
    auto records = report::read_validation_records({dir + "/v1.json", dir + "/v2.json", dir + "/v3.json"});
    std::string html = slurp(report::write_report(atlas, nullptr, dir + "/many", records).html);
    CHECK(html.find("mean KL against density") != std::string::npos);
    CHECK(html.find("top-1 agreement against density") != std::string::npos);
    // Pattern map, one plot per layer, density per layer, two frontier plots.
    CHECK(count_of(html, "<svg") == 1u + static_cast<size_t>(spec.layers) + 1u + 2u);
    CHECK(count_of(html, ">p-0.3.yaml</text>") == 2u);  // the unlabelled record's legend entry, once per plot
  }
  SECTION("a file that is not a validation record is refused, naming it") {
    std::ofstream(dir + "/bad.json") << "{\"format\": \"headcal-profile\"}";
    CHECK(test::throws_input_error_containing([&] { report::read_validation_record(dir + "/bad.json"); }, "bad.json"));
    std::ofstream(dir + "/broken.json") << "{ not json";
    CHECK(test::throws_input_error_containing([&] { report::read_validation_record(dir + "/broken.json"); },
                                              "broken.json"));
    write_validation(dir + "/nokl.json", "x", 0.2, 0, 0.9);
    std::string text = slurp(dir + "/nokl.json");
    text.replace(text.find("\"mean_kl\""), 9, "\"mean_kx\"");
    std::ofstream(dir + "/nokl.json") << text;
    CHECK(test::throws_input_error_containing([&] { report::read_validation_record(dir + "/nokl.json"); }, "mean_kl"));
  }
  fs::remove_all(dir);
}

TEST_CASE("report writes CSVs and one self-contained HTML page", "[report]") {
  std::string dir = test::make_temp_dir("report");
  test::SyntheticSpec spec;
  spec.layers = 3;
  spec.recorded = {0, 2};
  test::write_synthetic_atlas(dir + "/a.h5", spec);
  Atlas atlas = Atlas::open(dir + "/a.h5");

  SECTION("without a profile") {
    report::ReportFiles f = report::write_report(atlas, nullptr, dir + "/out");
    std::string cand = slurp(f.candidates_csv), heads = slurp(f.heads_csv), html = slurp(f.html);
    size_t rows = atlas.candidates(0).size() + atlas.candidates(2).size();
    CHECK(count_of(cand, "\n") == rows + 1);
    CHECK(cand.rfind("layer,head,pattern,p1,p2,cost,density,recall,out_err,prompt\n", 0) == 0);
    CHECK(count_of(heads, "\n") == static_cast<size_t>(spec.layers * spec.heads) + 1);
    CHECK(html.find("none given") != std::string::npos);
    CHECK(count_of(html, "data:image/png;base64,") == 2u * 6u + 1u);  // recorded layers x heads + colour scale
    CHECK(count_of(html, "<svg") == 1u + 2u + 1u);  // pattern map, one plot per recorded layer, density per layer
    CHECK(html.find("Budget per layer") != std::string::npos);
    CHECK(html.find("layer weights") == std::string::npos);  // none given
    CHECK(count_of(html, "class=\"chosen\"") == 2u * 6u);  // each head's choice marked in its layer's plot
    CHECK(count_of(html, "chosen, one per head (fill: its pattern)") == 2u);     // in each plot's legend
    CHECK(html.find("1 - recall") != std::string::npos);     // the plots' log-scale loss axis
    CHECK(html.find("max/10000") != std::string::npos);      // the maps' colour scale
    CHECK(html.find("<title>headcal report: synthetic-model</title>") != std::string::npos);
    CHECK(html.find("Validation") == std::string::npos);
    CHECK(count_of(html, "<rect x=") >= static_cast<size_t>(spec.layers * spec.heads));
    // Self-contained: no scripts, no external resources (the SVG namespace URI is not a fetch).
    CHECK(html.find("<script") == std::string::npos);
    CHECK(html.find("src=\"http") == std::string::npos);
    CHECK(html.find("href=") == std::string::npos);
    CHECK(html.find("@import") == std::string::npos);
    for (const auto& e : fs::directory_iterator(dir + "/out"))
      CHECK(e.path().filename().string().rfind(".", 0) != 0);  // no temporaries left
  }
  SECTION("with the profile search made") {
    search::SearchOptions o;
    o.mode = search::BudgetMode::global_density;
    o.value = 0.3;
    Profile p = search::run(atlas, o);
    report::ReportFiles f = report::write_report(atlas, &p, dir + "/out2");
    std::string heads = slurp(f.heads_csv);
    CHECK(heads.find("\n0,3,dense,0,0,1,1,0\n") != std::string::npos);  // layer 0 head 3 needs dense
    CHECK(slurp(f.html).find("budget global-density 0.3") != std::string::npos);
  }
  SECTION("with layer weights") {
    LayerWeights w;
    w.model_fingerprint = atlas.meta().model_fingerprint;
    w.model_layers = spec.layers;
    w.profile = "p.yaml";
    w.prompts = "prompt set x";
    w.layers = {{0, 0.02, 0.5, 0, false}, {1, 0, 0, 0, false}, {2, 0.01, 1.0, 0, false}};
    normalise_layer_weights(w.layers);  // ratios 0.04 and 0.01: weights 1.6 and 0.4, layer 1 unmeasured
    const std::string html = slurp(report::write_report(atlas, nullptr, dir + "/out4", {}, &w, "w.yaml").html);
    CHECK(count_of(html, "<svg") == 1u + 2u + 2u);  // and the weights' chart
    CHECK(html.find("layer weights") != std::string::npos);
    CHECK(html.find("<td>1.6</td>") != std::string::npos);
    CHECK(html.find("<td>0.4</td>") != std::string::npos);
    CHECK(html.find("p.yaml on prompt set x") != std::string::npos);
    w.model_fingerprint = "another-model";
    CHECK(test::throws_input_error_containing([&] { report::write_report(atlas, nullptr, dir + "/out5", {}, &w, "w.yaml"); },
                                              "w.yaml"));
    w.model_fingerprint = atlas.meta().model_fingerprint;
    w.model_layers = 4;
    CHECK_THROWS_AS(report::write_report(atlas, nullptr, dir + "/out5", {}, &w, "w.yaml"), InputError);
  }
  SECTION("an atlas recorded without statistics: no maps, the rest as usual") {
    test::SyntheticSpec bare = spec;
    bare.statistics = false;
    test::write_synthetic_atlas(dir + "/bare.h5", bare);
    const Atlas b = Atlas::open(dir + "/bare.h5");
    const std::string html = slurp(report::write_report(b, nullptr, dir + "/out6").html);
    CHECK(html.find("recorded without statistics") != std::string::npos);
    CHECK(count_of(html, "data:image/png;base64,") == 0u);
    CHECK(count_of(html, "<svg") == 1u + 2u + 1u);
  }
  SECTION("a profile of another model is refused") {
    search::SearchOptions o;
    o.mode = search::BudgetMode::density;
    o.value = 0.3;
    Profile p = search::run(atlas, o);
    p.model.fingerprint = "another-model";
    CHECK_THROWS_AS(report::write_report(atlas, &p, dir + "/out3"), InputError);
  }
  fs::remove_all(dir);
}

TEST_CASE("report of a prompt-set atlas: weighted-mean curves, every prompt's rows in the CSV", "[report][prompt_set]") {
  const Atlas atlas = Atlas::open(test::data_path("good_atlas_two_prompts.h5"));
  REQUIRE(atlas.prompt_count() == 2);
  const std::string dir = test::make_temp_dir("report_prompt_set");
  const report::ReportFiles f = report::write_report(atlas, nullptr, dir, {});
  const std::string cand = slurp(f.candidates_csv), html = slurp(f.html);
  size_t rows = 0;
  for (size_t p = 0; p < 2; ++p)
    for (int64_t layer : atlas.recorded_layers()) rows += atlas.candidates(layer, p).size();
  CHECK(count_of(cand, "\n") == rows + 1);
  CHECK(count_of(cand, ",ids\n") == atlas.candidates(0, 0).size() + atlas.candidates(1, 0).size());
  CHECK(count_of(cand, ",rnd\n") == atlas.candidates(0, 1).size() + atlas.candidates(1, 1).size());
  CHECK(html.find("Over this atlas's 2 prompts") != std::string::npos);
}

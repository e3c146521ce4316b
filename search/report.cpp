#include "search/report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <sstream>
#include <tuple>

#include "common/error.h"
#include "search/png.h"
#include "search/search.h"

namespace fs = std::filesystem;

namespace hc::search {

namespace {

// One colour per pattern, in PatternKind order (dense grey, then three distinguishable hues).
const char* const kPatternColor[kNumPatternKinds] = {"#9e9e9e", "#1f77b4", "#ff7f0e", "#2ca02c"};

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string fmt(double v, int digits = 4) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

std::string csv_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

std::string pattern_map_svg(const Profile& p) {
  const int cell = 16, left = 56, top = 24;
  const int width = left + static_cast<int>(p.model.heads) * cell + 8;
  const int height = top + static_cast<int>(p.model.layers) * cell + 8;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"10\">\n";
  for (int64_t h = 0; h < p.model.heads; ++h)
    if (p.model.heads <= 40 || h % 4 == 0)
      s << "<text x=\"" << left + h * cell + cell / 2 << "\" y=\"" << top - 6 << "\" text-anchor=\"middle\">" << h
        << "</text>";
  for (int64_t l = 0; l < p.model.layers; ++l) {
    s << "<text x=\"" << left - 6 << "\" y=\"" << top + l * cell + cell - 4 << "\" text-anchor=\"end\">L" << l
      << "</text>";
    for (int64_t h = 0; h < p.model.heads; ++h) {
      const ProfileHead& e = p.at(l, h);
      s << "<rect x=\"" << left + h * cell << "\" y=\"" << top + l * cell << "\" width=\"" << cell - 1
        << "\" height=\"" << cell - 1 << "\" fill=\"" << kPatternColor[static_cast<int>(e.pattern)]
        << "\" fill-opacity=\"" << fmt(0.35 + 0.65 * std::clamp(e.recall, 0.0, 1.0), 3) << "\"><title>layer " << l
        << " head " << h << ": " << html_escape(describe_candidate(e.candidate())) << ", recall " << fmt(e.recall)
        << ", density " << fmt(e.density) << ", out_err " << fmt(e.out_err) << "</title></rect>";
    }
    s << "\n";
  }
  s << "</svg>\n";
  return s.str();
}

// Per layer: for every candidate configuration, the mean density and mean recall over the
// layer's heads; per pattern, the points on the recall-vs-density frontier joined by a line.
std::string curves_svg(int64_t layer, const std::vector<CandidateRow>& rows) {
  const int W = 230, H = 170, left = 34, bottom = 24, top = 18, right = 8;
  const double pw = W - left - right, ph = H - top - bottom;
  std::map<std::tuple<int, int32_t, int32_t>, std::pair<double, double>> sums;  // -> (density, recall)
  std::map<std::tuple<int, int32_t, int32_t>, int> counts;
  for (const CandidateRow& r : rows) {
    if (r.pattern == PatternKind::dense) continue;
    auto key = std::make_tuple(static_cast<int>(r.pattern), r.p1, r.p2);
    sums[key].first += r.density;
    sums[key].second += r.recall;
    ++counts[key];
  }
  std::vector<std::vector<std::pair<double, double>>> points(kNumPatternKinds);
  for (const auto& [key, sum] : sums) {
    int n = counts[key];
    points[std::get<0>(key)].push_back({sum.first / n, sum.second / n});
  }
  auto X = [&](double d) { return left + pw * std::clamp(d, 0.0, 1.0); };
  auto Y = [&](double r) { return top + ph * (1 - std::clamp(r, 0.0, 1.0)); };
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"9\">";
  s << "<text x=\"" << left << "\" y=\"11\" font-size=\"11\">layer " << layer << "</text>";
  s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"none\" stroke=\"#999\"/>";
  for (double t : {0.0, 0.5, 1.0}) {
    s << "<text x=\"" << X(t) << "\" y=\"" << H - bottom + 11 << "\" text-anchor=\"middle\">" << t << "</text>";
    s << "<text x=\"" << left - 3 << "\" y=\"" << Y(t) + 3 << "\" text-anchor=\"end\">" << t << "</text>";
  }
  s << "<text x=\"" << left + pw / 2 << "\" y=\"" << H - 3 << "\" text-anchor=\"middle\">density</text>";
  s << "<text transform=\"translate(9," << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">recall</text>";
  for (int k = 1; k < kNumPatternKinds; ++k) {
    auto& pts = points[k];
    if (pts.empty()) continue;
    std::sort(pts.begin(), pts.end());
    std::vector<std::pair<double, double>> frontier;
    for (const auto& pt : pts)
      if (frontier.empty() || pt.second > frontier.back().second) frontier.push_back(pt);
    for (const auto& pt : pts)
      s << "<circle cx=\"" << fmt(X(pt.first), 5) << "\" cy=\"" << fmt(Y(pt.second), 5) << "\" r=\"1.6\" fill=\""
        << kPatternColor[k] << "\" fill-opacity=\"0.5\"/>";
    s << "<polyline fill=\"none\" stroke=\"" << kPatternColor[k] << "\" stroke-width=\"1.5\" points=\"";
    for (const auto& pt : frontier) s << fmt(X(pt.first), 5) << "," << fmt(Y(pt.second), 5) << " ";
    s << "\"/>";
  }
  s << "</svg>";
  return s.str();
}

// Thumbnail of one head's pooled map [M, M]: mean-pooled to at most `side` pixels, log scale
// over four decades below the maximum (attention mass spans orders of magnitude).
std::string thumbnail_uri(const float* map, int64_t M, int side) {
  int T = static_cast<int>(std::min<int64_t>(M, side));
  std::vector<double> pooled(static_cast<size_t>(T) * T, 0.0);  // [T, T]
  std::vector<int> counts(static_cast<size_t>(T) * T, 0);
  for (int64_t r = 0; r < M; ++r)
    for (int64_t c = 0; c < M; ++c) {
      size_t idx = static_cast<size_t>(r * T / M) * T + static_cast<size_t>(c * T / M);
      pooled[idx] += map[r * M + c];
      ++counts[idx];
    }
  double vmax = 0;
  for (size_t i = 0; i < pooled.size(); ++i) {
    pooled[i] /= std::max(1, counts[i]);
    vmax = std::max(vmax, pooled[i]);
  }
  std::vector<uint8_t> pixels(pooled.size(), 0);
  if (vmax > 0) {
    const double lo = std::log10(vmax) - 4;
    for (size_t i = 0; i < pooled.size(); ++i)
      if (pooled[i] > 0)
        pixels[i] = static_cast<uint8_t>(std::clamp((std::log10(pooled[i]) - lo) / 4.0, 0.0, 1.0) * 255 + 0.5);
  }
  return "data:image/png;base64," + base64_encode(encode_png_palette(pixels, T, T, heat_palette()));
}

}  // namespace

std::string candidates_csv(const Atlas& atlas) {
  std::ostringstream s;
  s << "layer,head,pattern,p1,p2,cost,density,recall,out_err\n";
  for (int64_t layer : atlas.recorded_layers())
    for (const CandidateRow& r : atlas.candidates(layer))
      s << layer << "," << r.head << "," << pattern_kind_name(r.pattern) << "," << r.p1 << "," << r.p2 << ","
        << csv_double(r.cost) << "," << csv_double(r.density) << "," << csv_double(r.recall) << ","
        << csv_double(r.out_err) << "\n";
  return s.str();
}

std::string heads_csv(const Profile& p) {
  std::ostringstream s;
  s << "layer,head,pattern,p1,p2,recall,density,out_err\n";
  for (const ProfileHead& e : p.heads)
    s << e.layer << "," << e.head << "," << pattern_kind_name(e.pattern) << "," << e.p1 << "," << e.p2 << ","
      << csv_double(e.recall) << "," << csv_double(e.density) << "," << csv_double(e.out_err) << "\n";
  return s.str();
}

std::string report_html(const Atlas& atlas, const Profile& shown, bool from_profile) {
  const AtlasMeta& m = atlas.meta();
  std::ostringstream s;
  s << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>headcal report: "
    << html_escape(m.model_name) << "</title>\n<style>\n"
    << "body{font-family:sans-serif;margin:24px;color:#222}h2{margin-top:32px}"
    << "table.meta td{padding:2px 12px 2px 0}.plots{display:flex;flex-wrap:wrap;gap:6px}"
    << "table.maps{border-collapse:collapse}table.maps td,table.maps th{padding:1px;font-size:10px}"
    << "table.maps img{image-rendering:pixelated;width:64px;height:64px;display:block}"
    << ".legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 14px;vertical-align:middle}\n"
    << "</style></head><body>\n";
  s << "<h1>headcal report</h1>\n<table class=\"meta\">"
    << "<tr><td>model</td><td>" << html_escape(m.model_name) << " (" << html_escape(m.arch) << ", " << m.layers
    << " layers, " << m.heads << " heads, " << m.kv_heads << " KV heads, head_dim " << m.head_dim << ")</td></tr>"
    << "<tr><td>fingerprint</td><td>" << html_escape(m.model_fingerprint) << "</td></tr>"
    << "<tr><td>prompt</td><td>" << html_escape(m.prompt_description) << " (" << m.tokens << " tokens, sha256 "
    << html_escape(m.prompt_sha256) << ")</td></tr>"
    << "<tr><td>recorded layers</td><td>" << atlas.recorded_layers().size() << " of " << m.layers << "</td></tr>"
    << "<tr><td>profile</td><td>"
    << (from_profile ? "budget " + html_escape(shown.calibration.budget_mode) + " " + fmt(shown.calibration.budget_value)
                     : std::string("none given: per-head best recall at density &lt;= ") + fmt(kReportDefaultDensity))
    << "; mean recall " << fmt(shown.calibration.mean_recall) << ", mean density "
    << fmt(shown.calibration.achieved_density) << "</td></tr></table>\n";

  s << "<h2>Pattern per layer and head</h2>\n<p class=\"legend\">";
  for (int k = 0; k < kNumPatternKinds; ++k)
    s << "<span style=\"background:" << kPatternColor[k] << "\"></span>" << pattern_kind_name(static_cast<PatternKind>(k));
  s << " &nbsp; (opacity: recall; hover a cell for its parameters)</p>\n" << pattern_map_svg(shown);

  s << "<h2>Recall vs density</h2>\n<p>Per layer, each point is one candidate configuration averaged "
       "over the layer's heads; lines join each pattern's best recall at increasing density.</p>\n"
    << "<div class=\"plots\">\n";
  for (int64_t layer : atlas.recorded_layers()) s << curves_svg(layer, atlas.candidates(layer)) << "\n";
  s << "</div>\n";

  // Thumbnails shrink for big models so the page stays a few MB (1024 heads x 32x32 ~ 1.5 MB).
  const int side = m.layers * m.heads > 300 ? 32 : 64;
  s << "<h2>Pooled attention maps</h2>\n<p>" << m.map_size << " x " << m.map_size
    << " pooled attention probability per head (queries down, keys across), log scale over four decades.</p>\n"
    << "<table class=\"maps\"><tr><th></th>";
  for (int64_t h = 0; h < m.heads; ++h) s << "<th>H" << h << "</th>";
  s << "</tr>\n";
  for (int64_t layer : atlas.recorded_layers()) {
    AtlasLayer data = atlas.read_layer(layer);
    s << "<tr><th>L" << layer << "</th>";
    for (int64_t h = 0; h < m.heads; ++h) {
      const ProfileHead& e = shown.at(layer, h);
      s << "<td><img alt=\"layer " << layer << " head " << h << "\" title=\"layer " << layer << " head " << h << ": "
        << html_escape(describe_candidate(e.candidate())) << "\" src=\""
        << thumbnail_uri(data.map.data() + h * m.map_size * m.map_size, m.map_size, side) << "\"></td>";
    }
    s << "</tr>\n";
  }
  s << "</table>\n</body></html>\n";
  return s.str();
}

ReportFiles write_report(const Atlas& atlas, const Profile* profile, const std::string& out_dir) {
  const AtlasMeta& m = atlas.meta();
  Profile chosen;
  if (profile) {
    ProfileModel from_atlas{m.model_name, m.arch, m.layers, m.heads, m.kv_heads, m.head_dim, m.model_fingerprint};
    std::string diff = profile_model_mismatch(profile->model, from_atlas, "profile", "atlas");
    if (!diff.empty()) throw InputError(atlas.path(), "the profile is of another model: " + diff);
  } else {
    SearchOptions o;
    o.mode = BudgetMode::density;
    o.value = kReportDefaultDensity;
    chosen = run(atlas, o);
  }
  const Profile& shown = profile ? *profile : chosen;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (!fs::is_directory(out_dir)) throw InputError(out_dir, "cannot create the report folder");
  ReportFiles files{(fs::path(out_dir) / "candidates.csv").string(), (fs::path(out_dir) / "heads.csv").string(),
                    (fs::path(out_dir) / "report.html").string()};
  write_file_atomic(files.candidates_csv, candidates_csv(atlas));
  write_file_atomic(files.heads_csv, heads_csv(shown));
  write_file_atomic(files.html, report_html(atlas, shown, profile != nullptr));
  return files;
}

}  // namespace hc::search

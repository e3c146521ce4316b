#include "report/report.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iterator>
#include <map>
#include <sstream>
#include <tuple>

#include "common/error.h"
#include "report/layer_budget.h"
#include "report/png.h"
#include "report/svg_chart.h"
#include "search/search.h"

namespace fs = std::filesystem;

namespace hc::report {

namespace {

// One colour per pattern, in Pattern order (dense grey, then three distinguishable hues).
const char* const kPatternColor[kNumPatterns] = {"#9e9e9e", "#1f77b4", "#ff7f0e", "#2ca02c"};
// Letter drawn in each pattern-map cell, so the map reads without telling colours apart.
const char* const kPatternLetter[kNumPatterns] = {"D", "A", "V", "B"};
// Lines of the validation frontier, one colour per method.
const char* const kMethodColor[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf"};

std::string csv_double(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return buf;
}

ChartSpec chart(const std::string& title, const Axis& x, const Axis& y, int width, int height) {
  ChartSpec spec;
  spec.title = title;
  spec.x = x;
  spec.y = y;
  spec.width = width;
  spec.height = height;
  return spec;
}

std::string pattern_map_svg(const Profile& p) {
  const int cell = p.model.heads <= 32 ? 24 : 14, left = 70, top = 44;
  const int width = left + static_cast<int>(p.model.heads) * cell + 12;
  const int height = top + static_cast<int>(p.model.layers) * cell + 12;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
    << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  s << "<text x=\"" << left + p.model.heads * cell / 2 << "\" y=\"13\" text-anchor=\"middle\">head</text>";
  s << "<text transform=\"translate(14," << top + p.model.layers * cell / 2
    << ") rotate(-90)\" text-anchor=\"middle\">layer</text>";
  for (int64_t h = 0; h < p.model.heads; ++h)
    if (p.model.heads <= 40 || h % 4 == 0)
      s << "<text x=\"" << left + h * cell + cell / 2 << "\" y=\"" << top - 8 << "\" text-anchor=\"middle\">" << h
        << "</text>";
  for (int64_t l = 0; l < p.model.layers; ++l) {
    s << "<text x=\"" << left - 6 << "\" y=\"" << top + l * cell + cell / 2 + 4 << "\" text-anchor=\"end\">" << l
      << "</text>";
    for (int64_t h = 0; h < p.model.heads; ++h) {
      const ProfileHead& e = p.at(l, h);
      const int k = static_cast<int>(e.pattern);
      s << "<rect x=\"" << left + h * cell << "\" y=\"" << top + l * cell << "\" width=\"" << cell - 1
        << "\" height=\"" << cell - 1 << "\" fill=\"" << kPatternColor[k] << "\" fill-opacity=\""
        << fmt(0.35 + 0.65 * std::clamp(e.recall, 0.0, 1.0), 3) << "\"><title>layer " << l << " head " << h << ": "
        << html_escape(describe_candidate(e.candidate())) << ", recall " << fmt(e.recall) << ", density "
        << fmt(e.density) << ", output error " << fmt(e.out_err) << "</title></rect>";
      if (cell >= 18)
        s << "<text x=\"" << left + h * cell + cell / 2 << "\" y=\"" << top + l * cell + cell / 2 + 4
          << "\" text-anchor=\"middle\" fill=\"#fff\" pointer-events=\"none\">" << kPatternLetter[k] << "</text>";
    }
    s << "\n";
  }
  s << "</svg>\n";
  return s.str();
}

// Per layer and pattern: each candidate configuration's (mean density, mean 1 - recall) over the
// layer's heads, and the pattern's frontier (lowest loss at increasing density).
struct LayerCurves {
  std::vector<std::pair<double, double>> points[kNumPatterns];
  std::vector<std::pair<double, double>> frontier[kNumPatterns];
};

LayerCurves layer_curves(const std::vector<CandidateRow>& rows) {
  std::map<std::tuple<int, int32_t, int32_t>, std::tuple<double, double, int>> sums;  // density, recall, count
  for (const CandidateRow& r : rows) {
    if (r.pattern == Pattern::dense) continue;
    auto& [d, rec, n] = sums[std::make_tuple(static_cast<int>(r.pattern), r.p1, r.p2)];
    d += r.density;
    rec += r.recall;
    ++n;
  }
  LayerCurves c;
  for (const auto& [key, sum] : sums) {
    const auto& [d, rec, n] = sum;
    c.points[std::get<0>(key)].push_back({d / n, 1.0 - rec / n});
  }
  for (int k = 0; k < kNumPatterns; ++k) {
    std::sort(c.points[k].begin(), c.points[k].end());
    for (const auto& pt : c.points[k])
      if (c.frontier[k].empty() || pt.second < c.frontier[k].back().second) c.frontier[k].push_back(pt);
  }
  return c;
}

// A layer's candidate rows as the plots show them: the atlas's own for one prompt; over a prompt set,
// each candidate's weighted mean cost, density, recall and output error over the prompts (what
// search weighs), dense rows included.
std::map<int64_t, std::vector<CandidateRow>> rows_by_layer(const Atlas& atlas) {
  std::map<int64_t, std::vector<CandidateRow>> out;
  if (atlas.prompt_count() == 1) {
    for (int64_t layer : atlas.recorded_layers()) out[layer] = atlas.candidates(layer);
    return out;
  }
  for (const search::HeadTable& t : search::build_tables(atlas, {}, search::parse_objective("mean-recall")))
    for (const search::Option& o : t.options)
      out[t.layer].push_back({static_cast<int32_t>(t.head), o.candidate.pattern, o.candidate.p1, o.candidate.p2, o.cost,
                              o.density, o.recall, o.out_err});
  return out;
}

std::string curves_section(const Atlas& atlas, const Profile& shown) {
  std::map<int64_t, LayerCurves> curves;
  const std::map<int64_t, std::vector<CandidateRow>> rows = rows_by_layer(atlas);
  double lo = 1, hi = 0;
  auto widen = [&](double loss) {
    if (loss > 0) lo = std::min(lo, loss);
    hi = std::max(hi, loss);
  };
  for (int64_t layer : atlas.recorded_layers()) {
    curves[layer] = layer_curves(rows.at(layer));
    for (const auto& pts : curves[layer].points)
      for (const auto& pt : pts) widen(pt.second);
    for (int64_t h = 0; h < shown.model.heads; ++h) widen(1.0 - shown.at(layer, h).recall);
  }
  // One y range for every layer, so plots compare at a glance; 1 - recall spans decades.
  const Axis y = log_axis("1 - recall (attention missed)", lo, hi, 1e-5);
  Axis density;
  density.title = "density (share of dense cost)";
  std::ostringstream s;
  s << "<h2>Recall against density</h2>\n<p>Per layer, for each pattern: every candidate configuration "
       "averaged over the layer's heads (dots) and the pattern's best trade-off (line). The y axis is the "
       "attention a pattern misses, 1 - recall, on a log scale: lower is better. Diamonds mark each head's "
       "chosen candidate, coloured by its pattern (dense heads sit on the bottom edge)."
    << (atlas.prompt_count() > 1 ? " Over this atlas's " + std::to_string(atlas.prompt_count()) +
                                       " prompts, each candidate's recall and density are their weighted means."
                                 : std::string())
    << "</p>\n<div class=\"plots\">\n";
  for (const auto& [layer, c] : curves) {
    std::vector<Series> series;
    for (int k = 1; k < kNumPatterns; ++k) {
      if (c.points[k].empty()) continue;
      series.push_back({"", kPatternColor[k], c.points[k], false, Marker::dot, 0.45});
      series.push_back({pattern_name(static_cast<Pattern>(k)), kPatternColor[k], c.frontier[k], true,
                        Marker::none, 1.0});
    }
    bool first = true;
    for (int64_t h = 0; h < shown.model.heads; ++h) {
      const ProfileHead& e = shown.at(layer, h);
      Series mark{first ? "chosen, one per head (fill: its pattern)" : "", kPatternColor[static_cast<int>(e.pattern)], {}, false,
                  Marker::diamond, 1.0};
      mark.points.emplace_back(e.density, 1.0 - e.recall);
      series.push_back(mark);
      first = false;
    }
    s << chart_svg(chart("layer " + std::to_string(layer), density, y, 300, 230), series) << "\n";
  }
  s << "</div>\n";
  return s.str();
}

std::string validation_section(const std::vector<ValidationRecord>& records) {
  if (records.empty()) return "";
  std::ostringstream s;
  s << "<h2>Validation</h2>\n<p>Prefill with each head on its sparse kernel, compared with dense attention "
       "(<code>headcal validate --json</code>). KL: mean next-token KL divergence in nats; top-1: share of "
       "positions whose most likely next token is unchanged.</p>\n"
    << "<table class=\"data\"><tr><th>method</th><th>prompt</th><th>tokens</th><th>density</th>"
       "<th>mean recall</th><th>mean KL</th><th>top-1 agreement</th><th>thresholds</th><th>file</th></tr>\n";
  for (const ValidationRecord& r : records)
    s << "<tr><td>" << html_escape(r.method) << "</td><td>" << html_escape(r.prompt) << "</td><td>" << r.tokens
      << "</td><td>" << fmt(r.density) << "</td><td>" << fmt(r.mean_recall) << "</td><td>" << fmt(r.mean_kl)
      << "</td><td>" << fmt(r.top1_agreement) << "</td><td>" << (r.passed ? "met" : "<b>not met</b>") << "</td><td>"
      << html_escape(fs::path(r.path).filename().string()) << "</td></tr>\n";
  s << "</table>\n";
  if (records.size() < 2) return s.str();

  // Quality frontier: one line per method through its records in order of density.
  std::map<std::string, std::vector<const ValidationRecord*>> by_method;
  std::vector<std::string> order;
  for (const ValidationRecord& r : records) {
    if (!by_method.count(r.method)) order.push_back(r.method);
    by_method[r.method].push_back(&r);
  }
  double kl_lo = 1, kl_hi = 0, top_lo = 1, top_hi = 0, d_lo = 1, d_hi = 0;
  for (const ValidationRecord& r : records) {
    if (r.mean_kl > 0) kl_lo = std::min(kl_lo, r.mean_kl);
    kl_hi = std::max(kl_hi, r.mean_kl);
    top_lo = std::min(top_lo, r.top1_agreement);
    top_hi = std::max(top_hi, r.top1_agreement);
    d_lo = std::min(d_lo, r.density);
    d_hi = std::max(d_hi, r.density);
  }
  std::vector<Series> kl, top1;
  for (size_t i = 0; i < order.size(); ++i) {
    auto rs = by_method[order[i]];
    std::sort(rs.begin(), rs.end(), [](auto* a, auto* b) { return a->density < b->density; });
    Series a{order[i], kMethodColor[i % std::size(kMethodColor)], {}, true, Marker::dot, 1.0};
    Series b = a;
    for (const ValidationRecord* r : rs) {
      a.points.push_back({r->density, r->mean_kl});
      b.points.push_back({r->density, r->top1_agreement});
    }
    kl.push_back(a);
    top1.push_back(b);
  }
  const Axis x = padded_axis("density (share of dense cost)", d_lo, d_hi, 0, 1);
  s << "<div class=\"plots\">\n"
    << chart_svg(chart("mean KL against density", x, log_axis("mean next-token KL (nats)", kl_lo, kl_hi, 1e-6), 420, 280),
                 kl)
    << "\n"
    << chart_svg(chart("top-1 agreement against density", x, padded_axis("top-1 agreement", top_lo, top_hi, 0, 1), 420,
                       280),
                 top1)
    << "\n</div>\n";
  return s.str();
}

// Thumbnail of one head's pooled map [M, M]: mean-pooled to at most `side` pixels, log scale
// over four decades below the head's maximum (attention mass spans orders of magnitude).
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

// The thumbnails' colour scale: the palette left to right with the four decades labelled.
std::string colour_scale_html() {
  std::vector<uint8_t> ramp(256);
  for (int i = 0; i < 256; ++i) ramp[i] = static_cast<uint8_t>(i);
  std::ostringstream s;
  s << "<div class=\"scale\"><img alt=\"colour scale\" src=\"data:image/png;base64,"
    << base64_encode(encode_png_palette(ramp, 256, 1, heat_palette())) << "\"><div class=\"ticks\">"
    << "<span>&le; max/10000</span><span>max/1000</span><span>max/100</span><span>max/10</span><span>max</span>"
    << "</div></div>\n";
  return s.str();
}

std::string maps_section(const Atlas& atlas, const Profile& shown) {
  const AtlasMeta& m = atlas.meta();
  if (m.statistics == 0)
    return "<h2>Pooled attention maps</h2>\n<p>None: the atlas was recorded without statistics "
           "(<code>--no-statistics</code>).</p>\n";
  // Thumbnails shrink for big models so the page stays a few MB (1024 heads x 32x32 ~ 1.5 MB).
  const int side = m.layers * m.heads > 300 ? 32 : 64;
  std::ostringstream s;
  s << "<h2>Pooled attention maps</h2>\n<p>" << m.map_size << " x " << m.map_size
    << " pooled attention probability per head (queries down, keys across), each relative to its head's "
       "largest cell, log scale over four decades:</p>\n"
    << colour_scale_html() << "<table class=\"maps\"><tr><th></th>";
  for (int64_t h = 0; h < m.heads; ++h) s << "<th>head " << h << "</th>";
  s << "</tr>\n";
  for (int64_t layer : atlas.recorded_layers()) {
    AtlasLayer data = atlas.read_layer(layer);
    s << "<tr><th>layer " << layer << "</th>";
    for (int64_t h = 0; h < m.heads; ++h) {
      const ProfileHead& e = shown.at(layer, h);
      s << "<td><img alt=\"layer " << layer << " head " << h << "\" title=\"layer " << layer << " head " << h << ": "
        << html_escape(describe_candidate(e.candidate())) << "\" src=\""
        << thumbnail_uri(data.map.data() + h * m.map_size * m.map_size, m.map_size, side) << "\"></td>";
    }
    s << "</tr>\n";
  }
  s << "</table>\n";
  return s.str();
}

// The model as people name it: the file it was recorded from, else the name inside the model.
std::string model_title(const AtlasMeta& m) {
  if (m.model_file.empty()) return m.model_name;
  const std::string name = fs::path(m.model_file).filename().string();
  return name.empty() ? m.model_file : name;
}

}  // namespace

std::string candidates_csv(const Atlas& atlas) {
  std::ostringstream s;
  s << "layer,head,pattern,p1,p2,cost,density,recall,out_err,prompt\n";
  for (size_t p = 0; p < atlas.prompt_count(); ++p)
    for (int64_t layer : atlas.recorded_layers())
      for (const CandidateRow& r : atlas.candidates(layer, p))
        s << layer << "," << r.head << "," << pattern_name(r.pattern) << "," << r.p1 << "," << r.p2 << ","
          << csv_double(r.cost) << "," << csv_double(r.density) << "," << csv_double(r.recall) << ","
          << csv_double(r.out_err) << "," << atlas.prompt(p).name << "\n";
  return s.str();
}

std::string heads_csv(const Profile& p) {
  std::ostringstream s;
  s << "layer,head,pattern,p1,p2,recall,density,out_err\n";
  for (const ProfileHead& e : p.heads)
    s << e.layer << "," << e.head << "," << pattern_name(e.pattern) << "," << e.p1 << "," << e.p2 << ","
      << csv_double(e.recall) << "," << csv_double(e.density) << "," << csv_double(e.out_err) << "\n";
  return s.str();
}

std::string report_html(const Atlas& atlas, const Profile& shown, bool from_profile,
                        const std::vector<ValidationRecord>& validations, const LayerWeights* weights) {
  const AtlasMeta& m = atlas.meta();
  const std::string title = model_title(m);
  // The prompt description may already say how many tokens it has; say it once.
  std::string prompt = m.prompt_description;
  if (prompt.find(std::to_string(m.tokens) + " tokens") == std::string::npos)
    prompt += (prompt.empty() ? "" : ", ") + std::to_string(m.tokens) + " tokens";
  std::ostringstream s;
  s << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>headcal report: "
    << html_escape(title) << "</title>\n<style>\n"
    << "body{font-family:sans-serif;margin:24px;color:#222;max-width:1400px}h2{margin-top:32px}"
    << "table.meta td{padding:2px 12px 2px 0}.plots{display:flex;flex-wrap:wrap;gap:10px}"
    << "table.data{border-collapse:collapse}table.data td,table.data th{padding:3px 10px;border-bottom:1px solid #ddd;"
       "text-align:left}"
    << "table.maps{border-collapse:collapse}table.maps td,table.maps th{padding:1px;font-size:10px}"
    << "table.maps th{font-weight:normal;white-space:nowrap}"
    << "table.maps img{image-rendering:pixelated;width:64px;height:64px;display:block}"
    << ".scale{margin:4px 0 12px}.scale img{image-rendering:pixelated;width:320px;height:14px;display:block;"
       "border:1px solid #999}.scale .ticks{display:flex;justify-content:space-between;width:322px;font-size:11px}"
    << ".legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 14px;vertical-align:middle}\n"
    << "</style></head><body>\n";
  s << "<h1>headcal report: " << html_escape(title) << "</h1>\n<table class=\"meta\">"
    << "<tr><td>model</td><td>" << html_escape(title);
  if (title != m.model_name) s << " (" << html_escape(m.model_name) << ")";
  s << ": " << html_escape(m.arch) << ", " << m.layers << " layers, " << m.heads << " heads, " << m.kv_heads
    << " KV heads, head_dim " << m.head_dim << "</td></tr>"
    << "<tr><td>fingerprint</td><td>" << html_escape(m.model_fingerprint) << "</td></tr>"
    << "<tr><td>prompt</td><td>" << html_escape(prompt) << "</td></tr>"
    << "<tr><td>prompt sha256</td><td>" << html_escape(m.prompt_sha256) << "</td></tr>"
    << "<tr><td>recorded layers</td><td>" << atlas.recorded_layers().size() << " of " << m.layers << "</td></tr>"
    << "<tr><td>profile</td><td>"
    << (from_profile ? "budget " + html_escape(shown.calibration.budget_mode) + " " + fmt(shown.calibration.budget_value)
                     : std::string("none given: per-head best recall at density &lt;= ") + fmt(kReportDefaultDensity))
    << "; mean recall " << fmt(shown.calibration.mean_recall) << ", mean density "
    << fmt(shown.calibration.achieved_density) << "</td></tr></table>\n";

  s << "<h2>Pattern per layer and head</h2>\n<p class=\"legend\">";
  for (int k = 0; k < kNumPatterns; ++k)
    s << "<span style=\"background:" << kPatternColor[k] << "\"></span>" << kPatternLetter[k] << " "
      << pattern_name(static_cast<Pattern>(k));
  s << " &nbsp; (opacity: recall; hover a cell for its parameters)</p>\n" << pattern_map_svg(shown);
  s << curves_section(atlas, shown) << layer_budget_section(shown, weights) << validation_section(validations)
    << maps_section(atlas, shown);
  s << "</body></html>\n";
  return s.str();
}

ReportFiles write_report(const Atlas& atlas, const Profile* profile, const std::string& out_dir,
                         const std::vector<ValidationRecord>& validations, const LayerWeights* weights,
                         const std::string& weights_source) {
  const AtlasMeta& m = atlas.meta();
  if (weights) {
    const std::string diff = layer_weights_mismatch(*weights, m.model_fingerprint, m.layers);
    if (!diff.empty()) throw InputError(weights_source, "layer weights " + diff + ": " + atlas.path());
  }
  Profile chosen;
  if (profile) {
    ProfileModel from_atlas{m.model_name, m.arch, m.layers, m.heads, m.kv_heads, m.head_dim, m.model_fingerprint};
    std::string diff = profile_model_mismatch(profile->model, from_atlas, "profile", "atlas");
    if (!diff.empty()) throw InputError(atlas.path(), "the profile is of another model: " + diff);
  } else {
    search::SearchOptions o;
    o.mode = search::BudgetMode::density;
    o.value = kReportDefaultDensity;
    chosen = search::run(atlas, o);
  }
  const Profile& shown = profile ? *profile : chosen;
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (!fs::is_directory(out_dir)) throw InputError(out_dir, "cannot create the report folder");
  ReportFiles files{(fs::path(out_dir) / "candidates.csv").string(), (fs::path(out_dir) / "heads.csv").string(),
                    (fs::path(out_dir) / "report.html").string()};
  write_file_atomic(files.candidates_csv, candidates_csv(atlas));
  write_file_atomic(files.heads_csv, heads_csv(shown));
  write_file_atomic(files.html, report_html(atlas, shown, profile != nullptr, validations, weights));
  return files;
}

}  // namespace hc::report

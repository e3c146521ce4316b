#pragma once
// Small inline-SVG charts for the report page: scatter points and lines on a linear or log10 y axis,
// with axis ticks, axis titles and a legend drawn inside the SVG (no scripts, no fonts fetched).
#include <string>
#include <utility>
#include <vector>

namespace hc::report {

enum class Marker { none, dot, diamond };

struct Series {
  std::string label;   // legend text; "" keeps the series out of the legend
  std::string color;   // CSS colour
  std::vector<std::pair<double, double>> points;  // (x, y) in data units
  bool line = false;   // join the points (in the given order)
  Marker marker = Marker::dot;
  double opacity = 1.0;
};

struct Axis {
  std::string title;
  double min = 0, max = 1;
  bool log = false;  // log10 scale; min must then be > 0. Values below min are drawn at min.
};

struct ChartSpec {
  std::string title;
  Axis x, y;
  int width = 320, height = 240;
};

std::string chart_svg(const ChartSpec& spec, const std::vector<Series>& series);

// A log axis spanning whole decades around [lo, hi] (lo > 0), at least one decade, lo not below `floor`.
Axis log_axis(const std::string& title, double lo, double hi, double floor = 1e-6);
// A linear axis over [lo, hi] padded by 5% of the span (or +-0.05 when lo == hi), clipped to [clip_lo, clip_hi].
Axis padded_axis(const std::string& title, double lo, double hi, double clip_lo, double clip_hi);

std::string html_escape(const std::string& s);
std::string fmt(double v, int digits = 4);

}  // namespace hc::report

#include "report/svg_chart.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace hc::report {

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

std::string fmt(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*g", digits, v);
  return buf;
}

Axis log_axis(const std::string& title, double lo, double hi, double floor) {
  lo = std::max(lo, floor);
  hi = std::max(hi, lo);
  double a = std::floor(std::log10(lo)), b = std::ceil(std::log10(hi));
  if (b <= a) b = a + 1;
  return {title, std::pow(10.0, a), std::pow(10.0, b), true};
}

Axis padded_axis(const std::string& title, double lo, double hi, double clip_lo, double clip_hi) {
  const double pad = hi > lo ? 0.05 * (hi - lo) : 0.05;
  return {title, std::max(clip_lo, lo - pad), std::min(clip_hi, hi + pad), false};
}

namespace {

// Maps a data value to [0, 1] along the axis, clamped.
double unit(const Axis& a, double v) {
  double t;
  if (a.log) {
    v = std::max(v, a.min);
    t = (std::log10(v) - std::log10(a.min)) / (std::log10(a.max) - std::log10(a.min));
  } else {
    t = a.max > a.min ? (v - a.min) / (a.max - a.min) : 0.5;
  }
  return std::clamp(t, 0.0, 1.0);
}

std::vector<double> ticks(const Axis& a) {
  std::vector<double> t;
  if (a.log) {
    for (double e = std::round(std::log10(a.min)); e <= std::round(std::log10(a.max)) + 1e-9; e += 1)
      t.push_back(std::pow(10.0, e));
    return t;
  }
  const double span = a.max - a.min;
  if (span <= 0) return {a.min};
  const double raw = span / 4, mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double step = raw / mag >= 5 ? 5 * mag : raw / mag >= 2 ? 2 * mag : mag;
  for (double v = std::ceil(a.min / step) * step; v <= a.max + 1e-9 * span; v += step) t.push_back(v);
  return t;
}

std::string tick_label(const Axis& a, double v) {
  if (a.log) {
    const int e = static_cast<int>(std::round(std::log10(v)));
    if (e >= -2 && e <= 0) return fmt(v, 3);
    return "1e" + std::to_string(e);
  }
  return fmt(std::abs(v) < 1e-12 ? 0.0 : v, 3);
}

}  // namespace

std::string chart_svg(const ChartSpec& spec, const std::vector<Series>& series) {
  int legend_rows = 0;
  for (const Series& s : series) legend_rows += s.label.empty() ? 0 : 1;
  const int left = 52, right = 10, top = 22, bottom = 34, legend_h = 13 * legend_rows + (legend_rows ? 6 : 0);
  const int W = spec.width, H = spec.height + legend_h;
  const double pw = W - left - right, ph = spec.height - top - bottom;
  auto X = [&](double v) { return left + pw * unit(spec.x, v); };
  auto Y = [&](double v) { return top + ph * (1 - unit(spec.y, v)); };

  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << W << "\" height=\"" << H
    << "\" font-family=\"sans-serif\" font-size=\"10\">";
  s << "<text x=\"" << left << "\" y=\"14\" font-size=\"12\" font-weight=\"bold\">" << html_escape(spec.title)
    << "</text>";
  s << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << pw << "\" height=\"" << ph
    << "\" fill=\"#fcfcfc\" stroke=\"#999\"/>";
  for (double t : ticks(spec.x)) {
    const double x = X(t);
    s << "<line x1=\"" << fmt(x, 5) << "\" x2=\"" << fmt(x, 5) << "\" y1=\"" << top << "\" y2=\"" << top + ph
      << "\" stroke=\"#e4e4e4\"/><text x=\"" << fmt(x, 5) << "\" y=\"" << top + ph + 12
      << "\" text-anchor=\"middle\">" << tick_label(spec.x, t) << "</text>";
  }
  for (double t : ticks(spec.y)) {
    const double y = Y(t);
    s << "<line x1=\"" << left << "\" x2=\"" << left + pw << "\" y1=\"" << fmt(y, 5) << "\" y2=\"" << fmt(y, 5)
      << "\" stroke=\"#e4e4e4\"/><text x=\"" << left - 4 << "\" y=\"" << fmt(y + 3, 5)
      << "\" text-anchor=\"end\">" << tick_label(spec.y, t) << "</text>";
  }
  s << "<text x=\"" << left + pw / 2 << "\" y=\"" << top + ph + 27 << "\" text-anchor=\"middle\">"
    << html_escape(spec.x.title) << "</text>";
  s << "<text transform=\"translate(11," << top + ph / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
    << html_escape(spec.y.title) << "</text>";

  for (const Series& ser : series) {
    if (ser.line && ser.points.size() > 1) {
      s << "<polyline fill=\"none\" stroke=\"" << ser.color << "\" stroke-width=\"1.8\" stroke-opacity=\""
        << fmt(ser.opacity, 3) << "\" points=\"";
      for (const auto& [x, y] : ser.points) s << fmt(X(x), 5) << "," << fmt(Y(y), 5) << " ";
      s << "\"/>";
    }
    for (const auto& [x, y] : ser.points) {
      const double cx = X(x), cy = Y(y);
      if (ser.marker == Marker::dot)
        s << "<circle cx=\"" << fmt(cx, 5) << "\" cy=\"" << fmt(cy, 5) << "\" r=\"2.2\" fill=\"" << ser.color
          << "\" fill-opacity=\"" << fmt(ser.opacity, 3) << "\"/>";
      else if (ser.marker == Marker::diamond)
        s << "<path class=\"chosen\" d=\"M" << fmt(cx, 5) << "," << fmt(cy - 5, 5) << " l5,5 l-5,5 l-5,-5 z\" fill=\""
          << ser.color << "\" stroke=\"#000\" stroke-width=\"1\"/>";
    }
  }

  int row = 0;
  for (const Series& ser : series) {
    if (ser.label.empty()) continue;
    const double y = spec.height + 4 + 13 * row++;
    const double x = left;
    if (ser.marker == Marker::diamond)
      s << "<path d=\"M" << x + 8 << "," << y << " l5,5 l-5,5 l-5,-5 z\" fill=\"#fff\" stroke=\"#000\"/>";
    else
      s << "<rect x=\"" << x << "\" y=\"" << y + 3 << "\" width=\"16\" height=\"4\" fill=\"" << ser.color << "\"/>";
    s << "<text x=\"" << x + 22 << "\" y=\"" << y + 9 << "\">" << html_escape(ser.label) << "</text>";
  }
  s << "</svg>";
  return s.str();
}

}  // namespace hc::report

#include "report/layer_budget.h"

#include <algorithm>
#include <sstream>
#include <vector>

#include "report/svg_chart.h"

namespace hc::report {

std::string layer_budget_section(const Profile& shown, const LayerWeights* weights) {
  const int64_t layers = shown.model.layers;
  std::vector<std::pair<double, double>> density;  // (layer, mean density over its heads)
  double hi = 0;
  for (int64_t l = 0; l < layers; ++l) {
    double sum = 0;
    for (int64_t h = 0; h < shown.model.heads; ++h) sum += shown.at(l, h).density;
    density.emplace_back(static_cast<double>(l), sum / static_cast<double>(shown.model.heads));
    hi = std::max(hi, density.back().second);
  }
  Axis x;
  x.title = "layer";
  x.min = 0;
  x.max = static_cast<double>(std::max<int64_t>(layers - 1, 1));
  std::ostringstream s;
  s << "<h2>Budget per layer</h2>\n<p>Each layer's density in the profile (the mean over its heads). ";
  if (weights)
    s << "Its layer weights: the next-token KL a unit of head output error costs in each layer, measured "
         "with that layer alone sparse and normalised to mean 1 (" << html_escape(weights->profile) << " on "
      << html_escape(weights->prompts) << "); search multiplies each head's output-error term by them.";
  s << "</p>\n<div class=\"plots\">\n";
  ChartSpec d{"density per layer", x, padded_axis("density (share of dense cost)", 0, hi, 0, 1), 420, 240};
  s << chart_svg(d, {{"density", "#1f77b4", density, true, Marker::dot, 1.0}}) << "\n";
  if (weights) {
    std::vector<std::pair<double, double>> measured, unmeasured;
    double lo = 1e300, top = 0;
    for (const LayerWeight& l : weights->layers) {
      (l.measured ? measured : unmeasured).emplace_back(static_cast<double>(l.layer), l.weight);
      lo = std::min(lo, l.weight);
      top = std::max(top, l.weight);
    }
    ChartSpec w{"layer weights", x, log_axis("weight (KL per unit of error, mean 1)", lo, top, 1e-4), 420, 240};
    s << chart_svg(w, {{"measured", "#d62728", measured, true, Marker::dot, 1.0},
                       {"every head dense: 1", "#9e9e9e", unmeasured, false, Marker::diamond, 1.0}})
      << "\n";
  }
  s << "</div>\n";
  if (weights) {
    s << "<table class=\"data\"><tr><th>layer</th><th>KL, nats</th><th>summed output error</th><th>weight</th></tr>\n";
    for (const LayerWeight& l : weights->layers)
      s << "<tr><td>" << l.layer << "</td><td>" << (l.measured ? fmt(l.kl) : "—") << "</td><td>"
        << (l.measured ? fmt(l.out_err) : "—") << "</td><td>" << fmt(l.weight) << "</td></tr>\n";
    s << "</table>\n";
  }
  return s.str();
}

}  // namespace hc::report

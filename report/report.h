#pragma once
// headcal report: CSV tables and one self-contained HTML page (inline SVG and PNG data URIs,
// no network, no scripts) from an atlas and, optionally, a profile of the same model:
//   candidates.csv  every (layer, head, candidate) row of the atlas
//   heads.csv       the profile's choice per head (or, without a profile, the per-head choice at
//                   density <= kReportDefaultDensity, labelled so in the page)
//   report.html     layer x head pattern map; per layer, 1 - recall against density for every
//                   pattern with each head's chosen candidate marked; the validation records given
//                   (and, with several, the quality frontier per method); each layer's density
//                   and, given layer weights, the weights; pooled attention maps
// Every file is written to a temporary name in `out_dir` and renamed.
#include <string>
#include <vector>

#include "io/calibration/atlas.h"
#include "io/calibration/layer_weights.h"
#include "io/calibration/profile.h"
#include "report/validation_record.h"

namespace hc::report {

constexpr double kReportDefaultDensity = 0.25;

std::string candidates_csv(const Atlas& atlas);
std::string heads_csv(const Profile& profile);
// `from_profile` false: the page says the map is search's per-head choice at the default density.
// `weights` may be null.
std::string report_html(const Atlas& atlas, const Profile& shown, bool from_profile,
                        const std::vector<ValidationRecord>& validations = {}, const LayerWeights* weights = nullptr);

struct ReportFiles {
  std::string candidates_csv;
  std::string heads_csv;
  std::string html;
};

// `profile` and `weights` may be null. InputError when the profile or the weights are of another
// model than the atlas.
ReportFiles write_report(const Atlas& atlas, const Profile* profile, const std::string& out_dir,
                         const std::vector<ValidationRecord>& validations = {}, const LayerWeights* weights = nullptr,
                         const std::string& weights_source = "layer weights");

}  // namespace hc::report

#pragma once
// headcal report: CSV tables and one self-contained HTML page (inline SVG and PNG data URIs,
// no network, no scripts) from an atlas and, optionally, a profile of the same model:
//   candidates.csv  every (layer, head, candidate) row of the atlas
//   heads.csv       the profile's choice per head (or, without a profile, the per-head choice at
//                   density <= kReportDefaultDensity, labelled so in the page)
//   report.html     layer x head pattern map, recall-vs-density curves per pattern and layer,
//                   pooled attention-map thumbnails per layer and head
// Every file is written to a temporary name in `out_dir` and renamed.
#include <string>

#include "io/atlas.h"
#include "io/profile.h"

namespace hc::search {

constexpr double kReportDefaultDensity = 0.25;

std::string candidates_csv(const Atlas& atlas);
std::string heads_csv(const Profile& profile);
// `from_profile` false: the page says the map is search's per-head choice at the default density.
std::string report_html(const Atlas& atlas, const Profile& shown, bool from_profile);

struct ReportFiles {
  std::string candidates_csv;
  std::string heads_csv;
  std::string html;
};

// `profile` may be null. InputError when the profile is of another model than the atlas.
ReportFiles write_report(const Atlas& atlas, const Profile* profile, const std::string& out_dir);

}  // namespace hc::search

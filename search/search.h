#pragma once
// search: atlas -> profile, on the CPU from the atlas alone (DESIGN.md "Calibration = record +
// search"). `headcal search` and `headcal calibrate` both call run().
#include <ostream>
#include <string>
#include <vector>

#include "io/calibration/atlas.h"
#include "io/calibration/profile.h"
#include "search/allocate.h"

namespace hc::search {

// Chooses one pattern per head under the budget in `options` and assembles the profile.
// Layers the atlas did not record (record --layers a-b) get `dense` on every head (recall 1,
// density 1) and stay outside the budget: a global-density budget is D x the dense cost of the
// recorded heads. Notes (heads over budget, unrecorded layers) go to `notes` when given.
// Throws InputError for options outside (0, 1] and for atlas tables search cannot use.
Profile run(const Atlas& atlas, const SearchOptions& options, std::vector<std::string>* notes = nullptr);

// Per-layer table: pattern counts, mean recall, mean density; then the totals.
void print_summary(const Profile& profile, std::ostream& out);

// Parses "a_shape,vertical_slash" (or "all") into a filter; InputError for an unknown name.
PatternFilter parse_pattern_filter(const std::string& list);

}  // namespace hc::search

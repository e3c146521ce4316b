#pragma once
// MInference's own offline search rule, applied to headcal's candidate tables, so the two search
// rules can be compared on the same recordings: per head, of MInference's six candidates
// (stream_llm(100, 800), vertical_and_slash (30, 800), (100, 750), (500, 700), (3500, 100),
// block_sparse with 8 blocks), the one that keeps the most attention (recall), with no cost term;
// then, as MInference's config conversion does, a stream_llm winner runs as
// vertical_and_slash(100, 800) and a block_sparse winner as vertical_and_slash(1000, 6096).
// The default grid holds all eight candidates from N = kMinferenceGridMinTokens on (io/calibration/grid.h).
#include <string>
#include <vector>

#include "search/tables.h"

namespace hc::search {

// The six searched candidates, in MInference's order (ties go to the earlier one).
const std::vector<GridCandidate>& minference_search_candidates();

// Per table, the index into its options of the relabelled winner. InputError(source, ...) naming
// the candidate when a table lacks one of the eight.
std::vector<size_t> minference_choice(const std::vector<HeadTable>& tables, const std::string& source);

}  // namespace hc::search

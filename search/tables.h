#pragma once
// Per-head candidate tables: what search chooses from, built from an atlas's candidate rows.
// Every table holds a `dense` option (cost = the head's dense cost, density 1, recall 1), so
// every head always has a choice.
#include <cstdint>
#include <string>
#include <vector>

#include "io/atlas.h"

namespace hc::search {

struct Option {
  GridCandidate candidate;
  double cost = 0;     // FLOPs, as recorded
  double density = 0;  // cost / dense cost
  double recall = 0;
  double out_err = 0;
};

struct HeadTable {
  int64_t layer = 0;
  int64_t head = 0;
  double dense_cost = 0;        // FLOPs of dense attention for this head
  std::vector<Option> options;  // unique candidates, dense included
};

// Which patterns search may choose (dense is always allowed).
struct PatternFilter {
  bool a_shape = true;
  bool vertical_slash = true;
  bool block_sparse = true;
  bool allows(PatternKind kind) const;
};

// One table per (recorded layer, head), in (layer, head) order. The dense cost of a head is its
// dense row's cost; without one, the median of cost / density over its rows. InputError(atlas
// path, ...) for a head with no rows, a repeated candidate, or no way to know the dense cost.
std::vector<HeadTable> build_tables(const Atlas& atlas, const PatternFilter& filter = {});

}  // namespace hc::search

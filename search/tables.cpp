#include "search/tables.h"

#include <algorithm>
#include <set>

#include "common/error.h"

namespace hc::search {

bool PatternFilter::allows(PatternKind kind) const {
  switch (kind) {
    case PatternKind::dense: return true;
    case PatternKind::a_shape: return a_shape;
    case PatternKind::vertical_slash: return vertical_slash;
    case PatternKind::block_sparse: return block_sparse;
  }
  return false;
}

std::vector<HeadTable> build_tables(const Atlas& atlas, const PatternFilter& filter) {
  const int64_t H = atlas.meta().heads;
  std::vector<HeadTable> tables;
  tables.reserve(atlas.recorded_layers().size() * static_cast<size_t>(H));
  for (int64_t layer : atlas.recorded_layers()) {
    const std::vector<CandidateRow>& rows = atlas.candidates(layer);
    std::vector<std::vector<const CandidateRow*>> by_head(static_cast<size_t>(H));
    for (const CandidateRow& r : rows) by_head[static_cast<size_t>(r.head)].push_back(&r);
    for (int64_t head = 0; head < H; ++head) {
      const auto& head_rows = by_head[static_cast<size_t>(head)];
      std::string where = "layer " + std::to_string(layer) + " head " + std::to_string(head);
      if (head_rows.empty()) throw InputError(atlas.path(), where + ": no candidate rows");
      HeadTable t;
      t.layer = layer;
      t.head = head;
      std::set<GridCandidate> seen;
      const CandidateRow* dense_row = nullptr;
      std::vector<double> implied_dense;  // cost / density of each sparse row
      for (const CandidateRow* r : head_rows) {
        if (!seen.insert(r->candidate()).second)
          throw InputError(atlas.path(), where + ": candidate " + describe_candidate(r->candidate()) +
                                             " appears twice");
        if (r->pattern == PatternKind::dense) {
          dense_row = r;
        } else if (r->density > 0) {
          implied_dense.push_back(r->cost / r->density);
        }
      }
      if (dense_row) {
        t.dense_cost = dense_row->cost;
      } else if (!implied_dense.empty()) {
        std::nth_element(implied_dense.begin(), implied_dense.begin() + implied_dense.size() / 2, implied_dense.end());
        t.dense_cost = implied_dense[implied_dense.size() / 2];
      }
      if (!(t.dense_cost > 0))
        throw InputError(atlas.path(), where + ": cannot tell the dense cost (no dense row, no density)");
      // Dense first; its recall is 1 by definition even if the probe summed to 0.99999.
      t.options.push_back({GridCandidate{}, t.dense_cost, 1.0, 1.0, 0.0});
      for (const CandidateRow* r : head_rows)
        if (r->pattern != PatternKind::dense && filter.allows(r->pattern))
          t.options.push_back({r->candidate(), r->cost, r->density, r->recall, r->out_err});
      tables.push_back(std::move(t));
    }
  }
  return tables;
}

}  // namespace hc::search

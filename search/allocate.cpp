#include "search/allocate.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <sstream>

#include "common/error.h"

namespace hc::search {

namespace {

// Relative slack for "fits the budget": costs are FLOP counts near 1e9..1e14, summed over
// thousands of heads; 1e-9 relative absorbs the rounding of those sums and nothing else.
constexpr double kBudgetSlack = 1e-9;

// Upper convex hull of a head's options in (cost, score), as option indices by increasing
// cost: starts at the cheapest option (best recall among equally cheap ones); every later
// point has strictly more recall and strictly smaller slope than the previous segment.
std::vector<size_t> upper_hull(const HeadTable& t) {
  std::vector<size_t> order(t.options.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    const Option& x = t.options[a];
    const Option& y = t.options[b];
    if (x.cost != y.cost) return x.cost < y.cost;
    return x.score > y.score;
  });
  std::vector<size_t> hull;
  for (size_t idx : order) {
    const Option& p = t.options[idx];
    if (!hull.empty() && p.score <= t.options[hull.back()].score) continue;  // dominated
    if (!hull.empty() && p.cost == t.options[hull.back()].cost) continue;      // same cost, less recall
    while (hull.size() >= 2) {
      const Option& a = t.options[hull[hull.size() - 2]];
      const Option& b = t.options[hull.back()];
      // Drop b when it lies on or below the segment a -> p.
      double cross = (b.cost - a.cost) * (p.score - a.score) - (b.score - a.score) * (p.cost - a.cost);
      if (cross >= 0) hull.pop_back();
      else break;
    }
    hull.push_back(idx);
  }
  return hull;
}

size_t cheapest(const HeadTable& t) {
  size_t best = 0;
  for (size_t i = 1; i < t.options.size(); ++i) {
    const Option& o = t.options[i];
    const Option& b = t.options[best];
    if (o.cost < b.cost || (o.cost == b.cost && o.score > b.score)) best = i;
  }
  return best;
}

std::string head_list(const std::vector<HeadTable>& tables, const std::vector<size_t>& which) {
  std::ostringstream s;
  for (size_t i = 0; i < which.size() && i < 6; ++i)
    s << (i ? ", " : "") << "L" << tables[which[i]].layer << "H" << tables[which[i]].head;
  if (which.size() > 6) s << ", ... (" << which.size() << " heads)";
  return s.str();
}

void allocate_per_head_density(const std::vector<HeadTable>& tables, double D, Allocation& a) {
  std::vector<size_t> over;
  for (size_t h = 0; h < tables.size(); ++h) {
    const HeadTable& t = tables[h];
    long best = -1;
    for (size_t i = 0; i < t.options.size(); ++i) {
      const Option& o = t.options[i];
      if (o.density > D * (1 + kBudgetSlack)) continue;
      if (best < 0) {
        best = static_cast<long>(i);
        continue;
      }
      const Option& b = t.options[static_cast<size_t>(best)];
      if (o.score > b.score || (o.score == b.score && o.cost < b.cost)) best = static_cast<long>(i);
    }
    if (best < 0) {
      best = static_cast<long>(cheapest(t));
      over.push_back(h);
    }
    a.choice[h] = static_cast<size_t>(best);
  }
  if (!over.empty())
    a.notes.push_back("no candidate within density " + std::to_string(D) + " for " + head_list(tables, over) +
                      ": took the cheapest one");
}

void allocate_min_recall(const std::vector<HeadTable>& tables, double R, Allocation& a) {
  std::vector<size_t> short_of;
  for (size_t h = 0; h < tables.size(); ++h) {
    const HeadTable& t = tables[h];
    long best = -1;
    for (size_t i = 0; i < t.options.size(); ++i) {
      const Option& o = t.options[i];
      if (o.recall < R) continue;  // the threshold is on recall, the tie-break on score
      if (best < 0) {
        best = static_cast<long>(i);
        continue;
      }
      const Option& b = t.options[static_cast<size_t>(best)];
      if (o.cost < b.cost || (o.cost == b.cost && o.score > b.score)) best = static_cast<long>(i);
    }
    if (best < 0) {  // no option reaches R (a table without dense): the most recall, then the cheaper
      best = 0;
      for (size_t i = 1; i < t.options.size(); ++i) {
        const Option& o = t.options[i];
        const Option& b = t.options[static_cast<size_t>(best)];
        if (o.recall > b.recall || (o.recall == b.recall && o.cost < b.cost)) best = static_cast<long>(i);
      }
      short_of.push_back(h);
    }
    a.choice[h] = static_cast<size_t>(best);
  }
  if (!short_of.empty())
    a.notes.push_back("no candidate reaches recall " + std::to_string(R) + " for " + head_list(tables, short_of) +
                      ": took the one with the most recall");
}

struct Segment {
  size_t table;
  size_t step;  // hull[step] -> hull[step + 1]
  double slope;
  double dcost;
};

void allocate_global(const std::vector<HeadTable>& tables, double D, Allocation& a) {
  const size_t n = tables.size();
  std::vector<std::vector<size_t>> hulls(n);
  std::vector<Segment> segments;
  double used = 0;
  for (size_t h = 0; h < n; ++h) {
    hulls[h] = upper_hull(tables[h]);
    a.choice[h] = hulls[h][0];
    used += tables[h].options[hulls[h][0]].cost;
    for (size_t k = 0; k + 1 < hulls[h].size(); ++k) {
      const Option& x = tables[h].options[hulls[h][k]];
      const Option& y = tables[h].options[hulls[h][k + 1]];
      segments.push_back({h, k, (y.score - x.score) / (y.cost - x.cost), y.cost - x.cost});
    }
  }
  const double budget = D * a.dense_cost;
  const double slack = kBudgetSlack * a.dense_cost;
  if (used > budget + slack) {
    std::ostringstream s;
    s << "global density " << D << " is below the cheapest choice for every head (density "
      << used / a.dense_cost << "): took the cheapest candidate everywhere";
    a.notes.push_back(s.str());
    return;
  }
  // Steepest segments first; among equal slopes the cheaper step first, so more of them fit.
  std::stable_sort(segments.begin(), segments.end(), [](const Segment& x, const Segment& y) {
    if (x.slope != y.slope) return x.slope > y.slope;
    return x.dcost < y.dcost;
  });
  std::vector<size_t> position(n, 0);  // how far along its hull each head is
  std::vector<char> blocked(n, 0);     // a skipped segment blocks the later ones of that head
  bool binding = false;
  for (const Segment& s : segments) {
    if (blocked[s.table] || position[s.table] != s.step) continue;
    if (used + s.dcost <= budget + slack) {
      used += s.dcost;
      position[s.table] = s.step + 1;
      a.choice[s.table] = hulls[s.table][s.step + 1];
      if (!binding) a.lambda = s.slope;
    } else {
      blocked[s.table] = 1;
      binding = true;
    }
  }
  // Fill what the hull walk left: the upgrade with the best recall gain per extra FLOP that still
  // fits, repeatedly. Each round raises one head's recall, so rounds <= total options.
  size_t total_options = 0;
  for (const HeadTable& t : tables) total_options += t.options.size();
  for (size_t round = 0; round < total_options; ++round) {
    double best_ratio = 0;
    size_t best_h = n, best_i = 0;
    for (size_t h = 0; h < n; ++h) {
      const Option& cur = tables[h].options[a.choice[h]];
      for (size_t i = 0; i < tables[h].options.size(); ++i) {
        const Option& o = tables[h].options[i];
        double dr = o.score - cur.score, dc = o.cost - cur.cost;
        if (dr <= 0 || used + dc > budget + slack) continue;
        double ratio = dc > 0 ? dr / dc : std::numeric_limits<double>::infinity();
        if (ratio > best_ratio) {
          best_ratio = ratio;
          best_h = h;
          best_i = i;
        }
      }
    }
    if (best_h == n) break;
    used += tables[best_h].options[best_i].cost - tables[best_h].options[a.choice[best_h]].cost;
    a.choice[best_h] = best_i;
  }
}

}  // namespace

const char* budget_mode_name(BudgetMode mode) {
  switch (mode) {
    case BudgetMode::density: return "density";
    case BudgetMode::global_density: return "global-density";
    case BudgetMode::min_recall: return "min-recall";
  }
  return "unknown";
}

void validate_options(const SearchOptions& options) {
  if (!(options.value > 0 && options.value <= 1)) {
    std::ostringstream s;
    s << "--" << budget_mode_name(options.mode) << " " << options.value << " is outside (0, 1]";
    throw InputError("search options", s.str());
  }
}

Allocation allocate(const std::vector<HeadTable>& tables, const SearchOptions& options) {
  validate_options(options);
  Allocation a;
  a.choice.assign(tables.size(), 0);
  for (const HeadTable& t : tables) {
    HC_ASSERT(!t.options.empty(), "a head table without options");
    a.dense_cost += t.dense_cost;
  }
  switch (options.mode) {
    case BudgetMode::density: allocate_per_head_density(tables, options.value, a); break;
    case BudgetMode::global_density: allocate_global(tables, options.value, a); break;
    case BudgetMode::min_recall: allocate_min_recall(tables, options.value, a); break;
  }
  a.total_cost = 0;
  for (size_t h = 0; h < tables.size(); ++h) a.total_cost += tables[h].options[a.choice[h]].cost;
  return a;
}

}  // namespace hc::search

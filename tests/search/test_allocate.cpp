// Budgeted choice on hand-made tables whose optimum is known, plus a brute-force cross-check.
#include <cmath>
#include <functional>
#include <random>

#include "catch.h"
#include "common/error.h"
#include "search/allocate.h"

using namespace hc;
using namespace hc::search;

namespace {

const GridCandidate kA{Pattern::a_shape, 64, 256};
const GridCandidate kV{Pattern::vertical_slash, 30, 800};
const GridCandidate kB{Pattern::block_sparse, 4, 0};

// A head table with dense (cost 1, recall 1) plus the given (candidate, density, recall) options.
HeadTable table(int64_t head, std::vector<std::tuple<GridCandidate, double, double>> opts) {
  HeadTable t;
  t.layer = 0;
  t.head = head;
  t.dense_cost = 1.0;
  t.options.push_back({GridCandidate{}, 1.0, 1.0, 1.0, 0.0, 1.0});
  for (auto& [c, d, r] : opts) t.options.push_back({c, d, d, r, 1 - r, r});
  return t;
}

SearchOptions opts(BudgetMode mode, double value) {
  SearchOptions o;
  o.mode = mode;
  o.value = value;
  return o;
}

const GridCandidate& chosen(const std::vector<HeadTable>& t, const Allocation& a, size_t h) {
  return t[h].options[a.choice[h]].candidate;
}

}  // namespace

TEST_CASE("--density: best recall within D per head, cheapest when nothing fits", "[search]") {
  std::vector<HeadTable> t = {
      table(0, {{kA, 0.1, 0.80}, {kV, 0.2, 0.95}, {kB, 0.4, 0.99}}),
      table(1, {{kA, 0.3, 0.70}, {kV, 0.3, 0.70}}),  // tie in recall and cost: first kept
      table(2, {{kA, 0.5, 0.90}}),                   // nothing within 0.25
  };
  Allocation a = allocate(t, opts(BudgetMode::density, 0.25));
  CHECK(chosen(t, a, 0) == kV);
  CHECK(chosen(t, a, 1) == kA);
  CHECK(chosen(t, a, 2) == kA);  // cheapest, with a note
  REQUIRE(a.notes.size() == 1);
  CHECK(a.notes[0].find("L0H2") != std::string::npos);
  // D = 1: dense fits everywhere and has the best recall.
  Allocation all = allocate(t, opts(BudgetMode::density, 1.0));
  for (size_t h = 0; h < t.size(); ++h) CHECK(chosen(t, all, h).pattern == Pattern::dense);
  CHECK(all.achieved_density() == Approx(1.0));
}

TEST_CASE("--min-recall: cheapest reaching R, else dense", "[search]") {
  std::vector<HeadTable> t = {
      table(0, {{kA, 0.1, 0.80}, {kV, 0.2, 0.95}, {kB, 0.4, 0.99}}),
      table(1, {{kA, 0.1, 0.50}}),
  };
  Allocation a = allocate(t, opts(BudgetMode::min_recall, 0.9));
  CHECK(chosen(t, a, 0) == kV);
  CHECK(chosen(t, a, 1).pattern == Pattern::dense);
  CHECK(a.total_cost == Approx(0.2 + 1.0));
  Allocation b = allocate(t, opts(BudgetMode::min_recall, 0.5));
  CHECK(chosen(t, b, 1) == kA);  // recall exactly R qualifies
}

TEST_CASE("--global-density gives dense to the head that needs it, cheap patterns to others", "[search]") {
  // Head 0 fits no pattern (its only sparse option loses 70% of its attention); heads 1..3 are
  // near-perfect with a cheap pattern. Budget 0.35 x 4 = 1.4: dense on head 0 (1.0) + 3 x 0.1,
  // and the 0.1 left buys no further upgrade (head 3's next step costs 0.2).
  std::vector<HeadTable> t = {
      table(0, {{kA, 0.5, 0.30}}),
      table(1, {{kV, 0.1, 0.99}, {kB, 0.5, 0.995}}),
      table(2, {{kV, 0.1, 0.99}}),
      table(3, {{kA, 0.1, 0.98}, {kV, 0.3, 0.985}}),
  };
  Allocation a = allocate(t, opts(BudgetMode::global_density, 0.35));
  CHECK(chosen(t, a, 0).pattern == Pattern::dense);
  CHECK(chosen(t, a, 1) == kV);
  CHECK(chosen(t, a, 2) == kV);
  CHECK(chosen(t, a, 3) == kA);
  CHECK(a.total_cost == Approx(1.3));
  CHECK(a.achieved_density() == Approx(1.3 / 4));
  CHECK(a.lambda == Approx(0.7 / 0.5));  // head 0's upgrade binds the relaxation
  // Per-head density at the same D cannot do this: head 0 gets its cheap pattern.
  Allocation per_head = allocate(t, opts(BudgetMode::density, 0.35));
  CHECK(chosen(t, per_head, 0).pattern == Pattern::a_shape);  // over budget: the cheapest
  // A larger budget lets head 3 move up its hull too (0.1 -> 0.3 for +0.005 recall).
  Allocation more = allocate(t, opts(BudgetMode::global_density, 0.4));
  CHECK(chosen(t, more, 0).pattern == Pattern::dense);
  CHECK(chosen(t, more, 3) == kV);
  CHECK(more.total_cost == Approx(1.5));
}

TEST_CASE("--global-density fills leftover budget with off-hull upgrades", "[search]") {
  // Head 0: hull is cheap(0.1, 0.5) -> dense(1, 1); the mid option (0.6, 0.7) is under the hull.
  // Budget 0.35 x 2 = 0.7: dense (1.0) never fits with head 1's 0.1, but the mid option does.
  std::vector<HeadTable> t = {
      table(0, {{kA, 0.1, 0.5}, {kV, 0.6, 0.7}}),
      table(1, {{kV, 0.1, 0.99}}),
  };
  Allocation a = allocate(t, opts(BudgetMode::global_density, 0.35));
  CHECK(chosen(t, a, 0) == kV);
  CHECK(chosen(t, a, 1) == kV);
  CHECK(a.total_cost <= 0.7 + 1e-12);
}

TEST_CASE("--global-density below the cheapest total takes the cheapest everywhere", "[search]") {
  std::vector<HeadTable> t = {table(0, {{kA, 0.3, 0.9}}), table(1, {{kV, 0.3, 0.9}})};
  Allocation a = allocate(t, opts(BudgetMode::global_density, 0.1));
  CHECK(chosen(t, a, 0) == kA);
  CHECK(chosen(t, a, 1) == kV);
  REQUIRE(a.notes.size() == 1);
  CHECK(a.notes[0].find("cheapest") != std::string::npos);
}

TEST_CASE("--global-density is feasible and near the brute-force optimum", "[search]") {
  std::mt19937 rng(1234);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (int trial = 0; trial < 200; ++trial) {
    const int heads = 4, per_head = 3;
    std::vector<HeadTable> t;
    double max_gain = 0;
    for (int h = 0; h < heads; ++h) {
      std::vector<std::tuple<GridCandidate, double, double>> o;
      for (int k = 0; k < per_head; ++k) {
        double d = 0.02 + 0.9 * u(rng);
        double r = std::pow(d, 0.1 + 2 * u(rng));
        o.emplace_back(GridCandidate{Pattern::block_sparse, 2 + k, 0}, d, r);
      }
      t.push_back(table(h, o));
      for (auto& opt : t.back().options) max_gain = std::max(max_gain, 1.0 - opt.recall);
    }
    double D = 0.1 + 0.8 * u(rng);
    Allocation a = allocate(t, opts(BudgetMode::global_density, D));
    // Brute force over all (1 + per_head)^heads assignments.
    double best = -1;
    int n_opt = per_head + 1;
    int combos = 1;
    for (int h = 0; h < heads; ++h) combos *= n_opt;
    double cheapest_total = 0;
    for (const auto& ht : t) {
      double c = 1e9;
      for (const auto& o : ht.options) c = std::min(c, o.cost);
      cheapest_total += c;
    }
    for (int code = 0; code < combos; ++code) {
      double cost = 0, recall = 0;
      for (int h = 0, x = code; h < heads; ++h, x /= n_opt) {
        cost += t[h].options[x % n_opt].cost;
        recall += t[h].options[x % n_opt].recall;
      }
      if (cost <= D * heads + 1e-12) best = std::max(best, recall);
    }
    double got = 0;
    for (size_t h = 0; h < t.size(); ++h) got += t[h].options[a.choice[h]].recall;
    INFO("trial " << trial << " D " << D);
    if (best < 0) {  // infeasible budget: cheapest everywhere
      CHECK(a.total_cost == Approx(cheapest_total));
      continue;
    }
    CHECK(a.total_cost <= D * heads + 1e-9);
    CHECK(got <= best + 1e-9);
    // Greedy on convex hulls loses at most one head's recall gap to the optimum.
    CHECK(got >= best - max_gain - 1e-9);
  }
}

TEST_CASE("budgets outside (0, 1] are bad input", "[search]") {
  std::vector<HeadTable> t = {table(0, {{kA, 0.3, 0.9}})};
  for (BudgetMode m : {BudgetMode::density, BudgetMode::global_density, BudgetMode::min_recall}) {
    CHECK_THROWS_AS(allocate(t, opts(m, 0.0)), InputError);
    CHECK_THROWS_AS(allocate(t, opts(m, -0.1)), InputError);
    CHECK_THROWS_AS(allocate(t, opts(m, 1.0001)), InputError);
    CHECK_THROWS_AS(allocate(t, opts(m, std::nan(""))), InputError);
    CHECK_NOTHROW(allocate(t, opts(m, 1.0)));
  }
}

#include "search/minference_rule.h"

#include "common/error.h"

namespace hc::search {

namespace {

const GridCandidate kStreamRelabel{Pattern::vertical_slash, 100, 800};
const GridCandidate kBlockRelabel{Pattern::vertical_slash, 1000, 6096};

long find_option(const HeadTable& t, const GridCandidate& c) {
  for (size_t i = 0; i < t.options.size(); ++i)
    if (t.options[i].candidate == c) return static_cast<long>(i);
  return -1;
}

}  // namespace

const std::vector<GridCandidate>& minference_search_candidates() {
  static const std::vector<GridCandidate> six = {
      {Pattern::vertical_slash, 30, 800},  {Pattern::vertical_slash, 100, 750},
      {Pattern::vertical_slash, 500, 700}, {Pattern::vertical_slash, 3500, 100},
      {Pattern::a_shape, 100, 800},        {Pattern::block_sparse, 8, 0},
  };
  return six;
}

std::vector<size_t> minference_choice(const std::vector<HeadTable>& tables, const std::string& source) {
  std::vector<size_t> choice;
  choice.reserve(tables.size());
  for (const HeadTable& t : tables) {
    auto need = [&](const GridCandidate& c) {
      const long i = find_option(t, c);
      if (i < 0)
        throw InputError(source, "layer " + std::to_string(t.layer) + " head " + std::to_string(t.head) +
                                     " has no candidate " + describe_candidate(c) +
                                     ": MInference's rule needs its eight candidates (record with the default grid "
                                     "at N >= 4096, or a grid that lists them, with every pattern allowed)");
      return static_cast<size_t>(i);
    };
    size_t best = need(minference_search_candidates().front());
    for (const GridCandidate& c : minference_search_candidates()) {
      const size_t i = need(c);
      if (t.options[i].recall > t.options[best].recall) best = i;
    }
    const Pattern won = t.options[best].candidate.pattern;
    if (won == Pattern::a_shape) best = need(kStreamRelabel);
    if (won == Pattern::block_sparse) best = need(kBlockRelabel);
    choice.push_back(best);
  }
  return choice;
}

}  // namespace hc::search

#pragma once
// Deterministic mutations of byte strings for the fuzz driver: bit flips, interesting bytes and
// integers, cuts, repeats, splices with another input, and, for text formats, numbers replaced by
// extreme ones (the values that break counts and sizes).
#include <random>
#include <string>
#include <vector>

namespace hc::fuzz {

// One to four stacked mutations of `input`; `corpus` supplies splice partners.
std::string mutate(const std::string& input, const std::vector<std::string>& corpus, std::mt19937_64& rng);

}  // namespace hc::fuzz

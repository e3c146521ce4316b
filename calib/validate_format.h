#pragma once
// Pieces of the validation summaries and JSON records shared by the single-prompt report
// (validate.cpp) and the prompt-set report (validate_set.cpp).
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "calib/validate.h"

namespace hc {

// "%.*f" and "%.3e" of a number.
std::string format_fixed(double value, int digits);
std::string format_scientific(double value);

// The thresholds line of a summary ("  LABEL: min recall 0.9000 max KL 1.000e-02: PASS") and one
// line per failure; empty when no threshold was set. The thresholds are those recorded in `r`.
std::string thresholds_lines(const ValidationReport& r, const std::vector<std::string>& failures,
                             const std::string& label);

// The JSON body of one prompt's validation (prompt, backend, summary, timings, thresholds,
// outcome, heads), shared by the single-prompt record and each prompt of a set's record.
nlohmann::ordered_json validation_json_body(const ValidationReport& report, const std::string& prompt_description,
                                            const std::string& prompt_sha256);

}  // namespace hc

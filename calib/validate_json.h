#pragma once
// The JSON body of one prompt's validation (prompt, backend, summary, timings, thresholds,
// outcome, heads), shared by the single-prompt record and each prompt of a set's record.
#include <nlohmann/json.hpp>

#include <string>

#include "calib/validate.h"

namespace hc {

nlohmann::ordered_json validation_json_body(const ValidationReport& report, const std::string& prompt_description,
                                            const std::string& prompt_sha256);

}  // namespace hc

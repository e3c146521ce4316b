#pragma once
// JSON parsing that rejects what nlohmann::json would accept silently: a key given twice in one
// object (the parser keeps the last).
#include <nlohmann/json.hpp>

#include <string>

namespace hc {

// Parses `text`; a syntax error or a duplicate key becomes an InputError naming `source`.
nlohmann::json parse_json_unique_keys(const std::string& text, const std::string& source);

}  // namespace hc

#include "io/util/json_strict.h"

#include <set>
#include <vector>

#include "common/error.h"

namespace hc {

nlohmann::json parse_json_unique_keys(const std::string& text, const std::string& source) {
  using json = nlohmann::json;
  std::vector<std::set<std::string>> open_objects;  // the keys seen so far, per enclosing object
  std::string duplicate;
  json::parser_callback_t track = [&](int, json::parse_event_t event, json& parsed) {
    if (event == json::parse_event_t::object_start) {
      open_objects.emplace_back();
    } else if (event == json::parse_event_t::object_end) {
      if (!open_objects.empty()) open_objects.pop_back();
    } else if (event == json::parse_event_t::key && !open_objects.empty()) {
      const std::string key = parsed.get<std::string>();
      if (!open_objects.back().insert(key).second && duplicate.empty()) duplicate = key;
    }
    return true;
  };
  json root;
  try {
    root = json::parse(text, track);
  } catch (const json::exception& e) {
    throw InputError(source, std::string("not valid JSON: ") + e.what());
  }
  if (!duplicate.empty())
    throw InputError(source, "key '" + duplicate.substr(0, 60) + "' appears twice in the same object");
  return root;
}

}  // namespace hc

#pragma once
// The parts of a validation record (JSON written by `headcal validate --json`) the report shows.
#include <cstdint>
#include <string>
#include <vector>

namespace hc::report {

struct ValidationRecord {
  std::string path;
  std::string method;  // the record's top-level "method" if present, else the profile file's name
  std::string prompt;  // prompt description
  int64_t tokens = 0;
  double density = 0, mean_recall = 0, mean_kl = 0, top1_agreement = 0;
  bool passed = true;
};

// InputError naming `path` when the file is missing, not JSON, not a headcal-validation record or
// lacks a summary value.
ValidationRecord read_validation_record(const std::string& path);
std::vector<ValidationRecord> read_validation_records(const std::vector<std::string>& paths);

}  // namespace hc::report

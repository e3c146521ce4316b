#pragma once
// The fuzz targets: one per reader of files a user hands to headcal. A target names the file the
// mutated bytes are written to (its extension picks the reader), an optional folder of good files
// it sits among (a Hugging Face model is config.json + safetensors), its seed files, and the
// function that reads it the way the CLI does. Adding a reader is one more entry in targets.cpp.
#include <string>
#include <vector>

namespace hc::fuzz {

struct Target {
  std::string name;
  std::string file_name;           // the input's name inside the work folder
  std::string base_dir;            // tests/data folder copied into the work folder first ("" = none)
  std::vector<std::string> seeds;  // files (relative to the source tree) of the starting corpus
  // Reads `path` (inside `dir`) as headcal would. Returning or throwing hc::InputError is correct
  // behaviour; anything else is a finding.
  void (*read)(const std::string& path, const std::string& dir);
  // Left out of `all` (run by name): its findings are in a library headcal cannot fix, so a
  // bounded campaign would fail on them every time (docs/RELIABILITY.md says which).
  bool named_only = false;
};

const std::vector<Target>& all_targets();

}  // namespace hc::fuzz

#pragma once
// The short summaries `headcal inspect` prints for an atlas and a profile (a model's is
// io/model/model_describe.h).
#include <string>

namespace hc::cli {

// True when the file starts with the HDF5 signature (atlases are HDF5).
bool looks_like_hdf5(const std::string& path);
// True when the name ends in .yaml or .yml (profiles).
bool looks_like_yaml(const std::string& path);

// Opens the atlas (validating it) and summarises meta, recorded layers and candidate rows.
std::string describe_atlas(const std::string& path);
// Reads the profile (validating it) and summarises model, calibration and the patterns chosen.
std::string describe_profile(const std::string& path);

}  // namespace hc::cli

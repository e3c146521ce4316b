#pragma once
// The short summaries `headcal inspect` prints for an atlas, a profile and layer weights (a
// model's is io/model/model_describe.h).
#include <string>

namespace hc::cli {

// True when the file starts with the HDF5 signature (atlases are HDF5).
bool looks_like_hdf5(const std::string& path);
// True when the name ends in .yaml or .yml (profiles, layer weights).
bool looks_like_yaml(const std::string& path);

// Opens the atlas (validating it) and summarises meta, recorded layers and candidate rows.
std::string describe_atlas(const std::string& path);
// Reads the profile (validating it) and summarises model, calibration and the patterns chosen.
std::string describe_profile(const std::string& path);
// Reads layer weights (validating them) and lists each layer's KL, output error and weight.
std::string describe_layer_weights(const std::string& path);
// A YAML file by its format key: layer weights, else a profile (whose reader names what is wrong).
std::string describe_yaml(const std::string& path);

}  // namespace hc::cli
